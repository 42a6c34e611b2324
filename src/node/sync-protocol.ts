/**
 * Framing for the p2pchat sync protocol: a libp2p stream carries a sequence of frames in each direction,
 * each an unsigned-varint length followed by that many bytes. What is inside a frame (dag-cbor requests,
 * responses) is the chat node's business; this module only bounds frame size and count and makes reads
 * abortable.
 *
 * libp2p 3 streams are event based (`message`, `remoteCloseWrite`, `close`, `send()` returning false until
 * `drain`), so a {@link FrameStream} keeps the bytes that arrived after a frame for the next read; create
 * exactly one per stream.
 *
 * @example
 * ```ts
 * await node.handle(SYNC_PROTOCOL, async (stream) => {
 *   const frames = createFrameStream(stream)
 *   try {
 *     for (let req = await frames.readFrame(); req !== null; req = await frames.readFrame()) {
 *       await frames.writeFrame(answer(req))
 *     }
 *     await frames.close()
 *   } catch (err) {
 *     frames.abort(err as Error) // e.g. FrameTooLargeError: the stream is reset, the node carries on
 *   }
 * })
 *
 * const frames = createFrameStream(await node.dialProtocol(peer, SYNC_PROTOCOL))
 * await frames.writeFrame(request)
 * await frames.close()
 * const reply = await frames.readFrame({ signal: AbortSignal.timeout(5_000) })
 * ```
 *
 * @packageDocumentation
 */

import type { AbortOptions, Stream } from '@libp2p/interface'
import { StreamAbortedError, StreamResetError } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameTooLargeError, TooManyFramesError, TruncatedFrameError } from './errors.js'

const log = logger('p2pchat:node:sync')

/** Protocol id of the p2pchat request/response sync protocol. */
export const SYNC_PROTOCOL = '/p2pchat/sync/1.0.0'

/** Default largest frame body, in bytes (1 MiB). */
export const DEFAULT_MAX_FRAME_LENGTH = 1024 * 1024

/** Default most frames per stream, counted separately for each direction. */
export const DEFAULT_MAX_FRAMES_PER_STREAM = 1024

/** Options of {@link createFrameStream}. */
export interface FrameStreamInit {
  /** Largest frame body in bytes, for reads and writes. Default {@link DEFAULT_MAX_FRAME_LENGTH}. */
  maxFrameLength?: number
  /** Most frames read, and most frames written, on this stream. Default {@link DEFAULT_MAX_FRAMES_PER_STREAM}. */
  maxFrames?: number
}

/** A libp2p stream read and written as length-prefixed frames. */
export interface FrameStream {
  /** The wrapped stream. */
  readonly stream: Stream
  /** Frames returned by {@link FrameStream.readFrame} so far. */
  readonly framesRead: number
  /** Frames passed to the stream by {@link FrameStream.writeFrame} so far. */
  readonly framesWritten: number
  /**
   * The next frame, or `null` once the remote closed its end cleanly between frames. Concurrent calls are
   * served in order.
   *
   * A protocol violation by the remote (a frame longer than allowed, more frames than allowed, the stream
   * ending inside a frame) resets the stream and rejects with {@link FrameTooLargeError},
   * {@link TooManyFramesError} or {@link TruncatedFrameError}; every later read rejects the same way.
   * An abort through `options.signal` rejects with the signal's reason and leaves the stream usable.
   */
  readFrame(options?: AbortOptions): Promise<Uint8Array | null>
  /**
   * Send one frame; resolves once the stream can take more data. Rejects without sending anything with
   * {@link FrameTooLargeError} or {@link TooManyFramesError} if this frame would break our own limits (a
   * bug on our side, so the stream is left as it is), or with the stream's error if it was closed or reset.
   */
  writeFrame(frame: Uint8Array, options?: AbortOptions): Promise<void>
  /** Close our end for writing (the remote's next read returns `null`) once queued frames are sent. */
  close(options?: AbortOptions): Promise<void>
  /** Reset the stream in both directions. */
  abort(err: Error): void
}

/**
 * Wrap a libp2p stream (from `dialProtocol` or a `handle` handler) for frame-by-frame reading and writing.
 * Create it as soon as the stream is available: bytes that arrive before are kept by the stream, up to
 * its `maxReadBufferLength`.
 */
export function createFrameStream(stream: Stream, init: FrameStreamInit = {}): FrameStream {
  const maxFrameLength = init.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH
  const maxFrames = init.maxFrames ?? DEFAULT_MAX_FRAMES_PER_STREAM
  if (!Number.isSafeInteger(maxFrameLength) || maxFrameLength < 0) {
    throw new RangeError('maxFrameLength must be a non-negative safe integer')
  }
  if (!Number.isSafeInteger(maxFrames) || maxFrames < 0) {
    throw new RangeError('maxFrames must be a non-negative safe integer')
  }
  const maxPrefixLength = varintLength(maxFrameLength)
  // Buffer at most one complete maximal frame before asking the remote to pause.
  const highWaterMark = maxFrameLength + maxPrefixLength

  const buffer = new Uint8ArrayList()
  let framesRead = 0
  let framesWritten = 0
  let pausedByUs = false
  let remoteEnded = stream.remoteWriteStatus !== 'writable' || stream.status === 'closed'
  let failure: Error | undefined = initialFailure(stream)
  let wake: (() => void) | undefined
  let readQueue: Promise<unknown> = Promise.resolve()

  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    buffer.append(evt.data)
    if (!pausedByUs && buffer.byteLength > highWaterMark && stream.readStatus === 'readable') {
      pausedByUs = true
      stream.pause()
    }
    notify()
  }
  const onRemoteCloseWrite = (): void => {
    remoteEnded = true
    notify()
  }
  const onClose = (evt: { error?: Error }): void => {
    if (evt.error !== undefined) {
      failure ??= evt.error
    } else {
      remoteEnded = true
    }
    // Listeners stay: a stream we paused can close with bytes still queued, and they arrive on resume.
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.addEventListener('close', onClose)

  /** The remote broke the framing rules: remember why, reset the stream, hand the error to the caller. */
  const violation = (err: Error): Error => {
    log('protocol violation on stream %s (%s) - %s', stream.id, stream.protocol, err.message)
    failure ??= err
    stream.abort(err)
    return err
  }

  const resumeIfDrained = (): void => {
    if (pausedByUs && buffer.byteLength <= highWaterMark) {
      pausedByUs = false
      if (stream.readStatus === 'paused') stream.resume()
    }
  }

  /** A complete frame from the buffer, `undefined` if more bytes are needed. */
  const takeFrame = (): Uint8Array | undefined => {
    if (buffer.byteLength === 0) return undefined
    const prefix = decodeVarint(buffer, maxPrefixLength)
    if (prefix === 'incomplete') return undefined
    if (prefix === 'too-long') throw violation(new FrameTooLargeError(undefined, maxFrameLength))
    if (prefix.value > maxFrameLength) throw violation(new FrameTooLargeError(prefix.value, maxFrameLength))
    if (framesRead >= maxFrames) throw violation(new TooManyFramesError(maxFrames))
    const end = prefix.length + prefix.value
    if (buffer.byteLength < end) return undefined
    const frame = buffer.slice(prefix.length, end)
    buffer.consume(end)
    framesRead++
    resumeIfDrained()
    return frame
  }

  const waitForBytes = async (signal: AbortSignal | undefined): Promise<void> => {
    signal?.throwIfAborted()
    let onAbort: (() => void) | undefined
    try {
      await new Promise<void>((resolve, reject) => {
        wake = resolve
        if (signal !== undefined) {
          onAbort = () => {
            reject(signal.reason)
          }
          signal.addEventListener('abort', onAbort, { once: true })
        }
      })
    } finally {
      wake = undefined
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
    }
  }

  const readOne = async (options: AbortOptions): Promise<Uint8Array | null> => {
    options.signal?.throwIfAborted() // it may have fired while this read was queued behind another
    while (true) {
      if (failure !== undefined) throw failure
      const frame = takeFrame()
      if (frame !== undefined) return frame
      if (stream.readBufferLength > 0 && stream.readStatus === 'paused') {
        // cannot happen while we only pause with a full frame buffered, but never wait on ourselves
        pausedByUs = false
        stream.resume()
        continue
      }
      if (remoteEnded && stream.readBufferLength === 0) {
        if (buffer.byteLength === 0) return null
        throw violation(new TruncatedFrameError(buffer.byteLength))
      }
      await waitForBytes(options.signal)
    }
  }

  return {
    stream,
    get framesRead() {
      return framesRead
    },
    get framesWritten() {
      return framesWritten
    },
    readFrame(options = {}) {
      const result = readQueue.then(() => readOne(options))
      readQueue = result.catch(() => undefined)
      return result
    },
    async writeFrame(frame, options = {}) {
      options.signal?.throwIfAborted()
      if (frame.byteLength > maxFrameLength) {
        throw new FrameTooLargeError(frame.byteLength, maxFrameLength)
      }
      if (framesWritten >= maxFrames) {
        throw new TooManyFramesError(maxFrames)
      }
      // A drain of the connection wakes every stream on it, also one whose own flow-control window is
      // still shut (its reader reads nothing). So wait until the previous frame has left this stream's
      // buffer: otherwise that buffer would grow by a frame at every drain of the connection.
      if (stream.writeBufferLength > 0) await writeBufferEmptied(stream, options.signal)
      const sent = stream.send(new Uint8ArrayList(encodeVarint(frame.byteLength), frame))
      framesWritten++
      if (!sent) {
        await stream.onDrain(options)
      }
    },
    async close(options = {}) {
      await stream.close(options)
    },
    abort(err) {
      stream.abort(err)
    },
  }
}

/** Resolves once `stream` sent all it buffered ('idle'); rejects if it closes first or `signal` aborts. */
async function writeBufferEmptied(stream: Stream, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted()
  let cleanup = (): void => {}
  try {
    await new Promise<void>((resolve, reject) => {
      const onIdle = (): void => resolve()
      const onClose = (evt: { error?: Error }): void =>
        reject(evt.error ?? new StreamAbortedError('the stream closed with data still to send'))
      const onAbort = (): void => reject(signal?.reason)
      stream.addEventListener('idle', onIdle)
      stream.addEventListener('close', onClose)
      signal?.addEventListener('abort', onAbort)
      cleanup = () => {
        stream.removeEventListener('idle', onIdle)
        stream.removeEventListener('close', onClose)
        signal?.removeEventListener('abort', onAbort)
      }
      // it may have emptied between the caller's check and now
      if (stream.writeBufferLength === 0) resolve()
    })
  } finally {
    cleanup()
  }
}

function initialFailure(stream: Stream): Error | undefined {
  if (stream.status === 'reset') return new StreamResetError('Stream was reset before framing started')
  if (stream.status === 'aborted') return new StreamAbortedError('Stream was aborted before framing started')
  return undefined
}

/** Bytes needed to encode `value` as an unsigned LEB128 varint. */
function varintLength(value: number): number {
  let length = 1
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) length++
  return length
}

/** Unsigned LEB128, as used by libp2p's own length-prefixed protocols. */
function encodeVarint(value: number): Uint8Array {
  const out = new Uint8Array(varintLength(value))
  let v = value
  for (let i = 0; i < out.length - 1; i++) {
    out[i] = (v % 0x80) | 0x80
    v = Math.floor(v / 0x80)
  }
  out[out.length - 1] = v
  return out
}

/**
 * Decode the varint at the start of `buf`, reading at most `maxLength` bytes of it: a longer prefix can
 * only encode a length above the maximum, so there is no need to wait for its end.
 */
function decodeVarint(
  buf: Uint8ArrayList,
  maxLength: number,
): { value: number; length: number } | 'incomplete' | 'too-long' {
  let value = 0
  let scale = 1
  for (let i = 0; i < buf.byteLength; i++) {
    if (i >= maxLength) return 'too-long'
    const byte = buf.get(i)
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return { value, length: i + 1 }
    scale *= 0x80
  }
  return 'incomplete'
}
