/**
 * Framing for the p2pchat sync protocol: a libp2p stream carries a sequence of frames in each direction,
 * each an unsigned-varint length followed by that many bytes. What is inside a frame (dag-cbor requests,
 * responses) is the chat node's business; this module only bounds frame size and count and makes reads
 * abortable.
 *
 * The framing itself is `lpStream` from `@libp2p/utils`; a {@link FrameStream} adds the limits (checked on
 * the length prefix, before a body is buffered), the frame counts, a clean end between frames told from
 * one inside a frame, and backpressure: a reader that falls a maximal frame behind pauses the stream, so
 * yamux stops the sender. Create exactly one per stream, as soon as it is available.
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
import { lpStream, UnexpectedEOFError } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
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
   * An abort through `options.signal` rejects with the signal's reason; one that lands between frames
   * leaves the stream usable, one that lands inside a frame (part of it was read) makes every later read
   * reject with that reason too, since the rest of the frame cannot be told from a next one.
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

  let framesRead = 0
  let framesWritten = 0
  /** Bytes that arrived, and bytes of the frames read (prefixes included): the difference is buffered. */
  let received = 0
  let consumed = 0
  /** Bytes of the length prefix seen by the read in progress (0: it has not started a frame yet). */
  let prefixSeen = 0
  let pausedByUs = false
  let failure: Error | undefined = initialFailure(stream)
  let readQueue: Promise<unknown> = Promise.resolve()

  /** The remote broke the framing rules: remember why, reset the stream, hand the error to the caller. */
  const violation = (err: Error): Error => {
    log('protocol violation on stream %s (%s) - %s', stream.id, stream.protocol, err.message)
    failure ??= err
    stream.abort(err)
    return err
  }

  /** The length of the next frame, checked against the limits as soon as its prefix is complete. */
  const lengthDecoder = (prefix: Uint8ArrayList): number => {
    prefixSeen = prefix.byteLength
    // a longer prefix can only encode a length above the maximum: no need to wait for its end
    if (prefix.byteLength > maxPrefixLength)
      throw violation(new FrameTooLargeError(undefined, maxFrameLength))
    const length = decodeVarint(prefix)
    if (length > maxFrameLength) throw violation(new FrameTooLargeError(length, maxFrameLength))
    if (framesRead >= maxFrames) throw violation(new TooManyFramesError(maxFrames))
    return length
  }
  // before lpStream's own listener, so no byte reaches it uncounted
  stream.addEventListener('message', (evt) => {
    received += evt.data.byteLength
    if (!pausedByUs && received - consumed > highWaterMark && stream.readStatus === 'readable') {
      pausedByUs = true
      stream.pause()
    }
  })
  stream.addEventListener('close', (evt) => {
    if (evt.error !== undefined) failure ??= evt.error
  })

  const lp = lpStream(stream, {
    lengthDecoder,
    // what this stream holds while paused, on top of the high-water mark it pauses at
    maxBufferSize: highWaterMark + stream.maxReadBufferLength,
  })

  const readOne = async (options: AbortOptions): Promise<Uint8Array | null> => {
    options.signal?.throwIfAborted() // it may have fired while this read was queued behind another
    if (failure !== undefined) throw failure
    prefixSeen = 0
    let frame: Uint8ArrayList
    try {
      frame = await lp.read(options)
    } catch (err) {
      if (failure !== undefined) throw failure
      const partial = received - consumed
      if ((err as Error).name === UnexpectedEOFError.name) {
        if (partial === 0) return null
        throw violation(new TruncatedFrameError(partial))
      }
      // an abort inside a frame: what was read of it is gone, so the stream cannot go on
      if (prefixSeen > 0) failure = err as Error
      throw err
    }
    framesRead++
    consumed += prefixSeen + frame.byteLength
    if (pausedByUs && received - consumed <= highWaterMark) {
      pausedByUs = false
      if (stream.readStatus === 'paused') stream.resume()
    }
    return frame.subarray()
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
      // counted once handed to the stream, which lp.write does before it waits for a drain
      framesWritten++
      try {
        await lp.write(frame, options)
      } catch (err) {
        // waiting for a drain rejects with the stream's close event, not an error
        throw err instanceof Error ? err : closeError(err as { error?: Error })
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

/** The error of a stream's `close` event: its own, or one saying data was left unsent. */
function closeError(evt: { error?: Error }): Error {
  return evt.error ?? new StreamAbortedError('the stream closed with data still to send')
}

/** Resolves once `stream` sent all it buffered ('idle'); rejects if it closes first or `signal` aborts. */
async function writeBufferEmptied(stream: Stream, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted()
  let cleanup = (): void => {}
  try {
    await new Promise<void>((resolve, reject) => {
      const onIdle = (): void => resolve()
      const onClose = (evt: { error?: Error }): void => reject(closeError(evt))
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

/**
 * The unsigned LEB128 varint `prefix` (libp2p's length prefix). Throws a `RangeError` while it is
 * incomplete, which tells `lpStream` to read another byte.
 */
function decodeVarint(prefix: Uint8ArrayList): number {
  let value = 0
  let scale = 1
  for (let i = 0; i < prefix.byteLength; i++) {
    const byte = prefix.get(i)
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return value
    scale *= 0x80
  }
  throw new RangeError('incomplete varint')
}
