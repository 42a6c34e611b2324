/**
 * Errors raised by the libp2p layer (`src/node`). Each is identified by its `.name`, which is what callers
 * and tests should match on; extra fields carry the numbers a log line needs.
 *
 * @packageDocumentation
 */

import { namedError } from '../named-error.js'

/**
 * The options passed to `createTransport` are unusable (wrong key type, unparsable multiaddr, a bootstrap
 * address without a `/p2p/<peer-id>` part, ...). This is a user/config error, not a bug.
 */
export class InvalidTransportInitError extends namedError(
  'InvalidTransportInitError',
  'Invalid transport options',
) {}

/**
 * The installed `@libp2p/gossipsub` no longer has the internals we rely on to filter topics by predicate.
 * Raised at node construction so an upgrade fails loudly instead of silently accepting every topic.
 */
export class IncompatibleGossipsubError extends namedError(
  'IncompatibleGossipsubError',
  'The installed @libp2p/gossipsub does not support topic filtering as expected',
) {}

/**
 * A topic validator is already registered for this topic. Gossipsub keeps one validator per topic, so a
 * second registration would silently replace the first.
 */
export class DuplicateTopicValidatorError extends namedError('DuplicateTopicValidatorError') {
  readonly topic: string
  constructor(topic: string, message = `A validator is already registered for topic ${topic}`) {
    super(message)
    this.topic = topic
  }
}

/**
 * A frame's declared length is above the maximum frame length. On read this is raised as soon as the
 * length prefix is decoded, before the body is buffered.
 */
export class FrameTooLargeError extends namedError('FrameTooLargeError') {
  /** Declared (or actual, on write) length in bytes; `undefined` when the length prefix itself is too long. */
  readonly length: number | undefined
  /** The configured maximum frame length in bytes. */
  readonly maxLength: number
  constructor(length: number | undefined, maxLength: number, message?: string) {
    super(
      message ??
        (length === undefined
          ? `Frame length prefix too long for a frame of at most ${maxLength} bytes`
          : `Frame of ${length} bytes exceeds the maximum of ${maxLength} bytes`),
    )
    this.length = length
    this.maxLength = maxLength
  }
}

/**
 * More frames were read from (or written to) one stream than the per-stream maximum allows.
 */
export class TooManyFramesError extends namedError('TooManyFramesError') {
  /** The configured maximum number of frames per stream and direction. */
  readonly maxFrames: number
  constructor(maxFrames: number, message = `More than ${maxFrames} frames on one stream`) {
    super(message)
    this.maxFrames = maxFrames
  }
}

/**
 * The remote closed its end of the stream in the middle of a frame.
 */
export class TruncatedFrameError extends namedError('TruncatedFrameError') {
  /** Bytes of the partial frame (prefix included) that were received before the stream ended. */
  readonly receivedBytes: number
  constructor(receivedBytes: number, message = `Stream ended inside a frame after ${receivedBytes} bytes`) {
    super(message)
    this.receivedBytes = receivedBytes
  }
}

/** A gossip or sync frame that does not decode to what p2pchat sends. */
export class MalformedFrameError extends namedError('MalformedFrameError', 'malformed frame') {}

/**
 * A sync stream was refused because the node already serves as many sync streams as it may: to that
 * peer, to peers that are in none of its groups, or in all. The message says which.
 */
export class SyncStreamLimitError extends namedError('SyncStreamLimitError', 'too many sync streams open') {}

/** A peer opened more sync streams in a minute than one peer may; the stream was refused. */
export class SyncRateLimitError extends namedError(
  'SyncRateLimitError',
  'too many new sync streams from one peer',
) {}

/**
 * A sync stream waited longer than allowed for the peer to read what was written (backpressure) or to
 * send the next frame, so it was aborted: a reader that never reads holds nothing for long.
 */
export class SyncStalledError extends namedError('SyncStalledError', 'the sync stream stalled') {}

/** An invite token that cannot be used; the message says what to do. */
export class InvalidInviteError extends namedError('InvalidInviteError', 'the invite is not valid') {}

/**
 * The group's genesis has not arrived yet, so what it fixes (its founder) is not known: e.g. an invite
 * asked of a peer that joined and was not added yet (members send the log only to members).
 */
export class GroupNotReadyError extends namedError('GroupNotReadyError') {
  constructor(
    message = "the group's founding event has not arrived yet: it comes once a member has added you",
  ) {
    super(message)
  }
}

/** A peer `connect` was asked to dial could not be reached; the message says why. */
export class DialFailedError extends namedError('DialFailedError') {
  /** The address that was dialled, as given. */
  readonly addr: string
  constructor(addr: string, reason: string, message = `could not connect to ${addr}: ${reason}`) {
    super(message)
    this.addr = addr
  }
}

/** The node has no group selected (none created or joined yet, or `--group` matched none). */
export class NotInGroupError extends namedError(
  'NotInGroupError',
  'You are not in a group yet: start with --create <name> or --join <invite>',
) {}

/** A member reference (name or peer id) matches no known peer. */
export class UnknownMemberError extends namedError('UnknownMemberError') {}

/** A peer a name may refer to: its id and the name it is known by. */
export interface NameCandidate {
  peerId: string
  name: string
}

/** A display name matches more than one known peer; the peer id must be used. */
export class AmbiguousMemberError extends namedError('AmbiguousMemberError') {
  /** The peers that carry the name. */
  readonly candidates: NameCandidate[]
  constructor(message: string, candidates: NameCandidate[]) {
    super(message)
    this.candidates = candidates
  }
}

/**
 * A display name is known only from what peers said about themselves (their join requests, and the
 * peers table those fill), not from the group's signed membership events. Anyone can ask to join under
 * any name, so such a name adds nobody: the caller shows the candidates and adds one by peer id, after
 * checking it with the person.
 *
 * @example
 * ```ts
 * try {
 *   await node.add('carol')
 * } catch (err) {
 *   if ((err as Error).name !== UnverifiedNameError.name) throw err
 *   const [only] = (err as UnverifiedNameError).candidates
 *   if (only !== undefined && (await confirm(only))) await node.add(only.peerId)
 * }
 * ```
 */
export class UnverifiedNameError extends namedError('UnverifiedNameError') {
  /** The name that was asked for. */
  readonly displayName: string
  /** The peers that claimed the name, at least one. */
  readonly candidates: NameCandidate[]
  constructor(
    displayName: string,
    candidates: NameCandidate[],
    message = unverifiedMessage(displayName, candidates),
  ) {
    super(message)
    this.displayName = displayName
    this.candidates = candidates
  }
}

function unverifiedMessage(name: string, candidates: NameCandidate[]): string {
  const ids = candidates.map((c) => c.peerId).join(', ')
  return candidates.length === 1
    ? `${name} is only the name a peer asked to join with, and anyone can claim a name: check its peer id with them and add it by peer id: ${ids}`
    : `${candidates.length} peers asked to join as ${name}, and anyone can claim a name: check with them which peer id is theirs and add it by peer id: ${ids}`
}

/**
 * Another running p2pchat process holds the data directory. Two processes on one directory would share
 * one identity and reuse its message sequence numbers, so the second one refuses to open it.
 */
export class DataDirLockedError extends namedError('DataDirLockedError') {
  /** The data directory. */
  readonly dataDir: string
  /** Process id of the holder. */
  readonly pid: number
  constructor(
    dataDir: string,
    pid: number,
    message = `${dataDir} is in use by another p2pchat process (pid ${pid})`,
  ) {
    super(message)
    this.dataDir = dataDir
    this.pid = pid
  }
}

/** `start()` was called on a node that was stopped; open a new one on the data directory instead. */
export class NodeStoppedError extends namedError(
  'NodeStoppedError',
  'this node was stopped and cannot be started again',
) {}

/**
 * `identity.key` can be read or written by users other than its owner. Whoever reads it can act as this
 * member; whoever writes it can swap in a key of their own. So the node refuses to start, as ssh refuses
 * such a private key, and the message says how to fix it.
 *
 * @example
 * ```ts
 * new InsecureIdentityKeyError('/home/a/.local/share/p2pchat/alice/identity.key', 0o644).message
 * // → '/home/a/.local/share/p2pchat/alice/identity.key is readable by other users; run: chmod 600 /home/a/.local/share/p2pchat/alice/identity.key'
 * ```
 */
export class InsecureIdentityKeyError extends namedError('InsecureIdentityKeyError') {
  /** Path of the key file. */
  readonly path: string
  /** Its permission bits, e.g. `0o644`. */
  readonly mode: number
  constructor(path: string, mode: number, message?: string) {
    const access = [(mode & 0o044) !== 0 ? 'readable' : '', (mode & 0o022) !== 0 ? 'writable' : '']
      .filter((word) => word !== '')
      .join(' and ')
    // a caller may pass other bits (execute, say): still say something true
    const what = access === '' ? 'accessible' : access
    super(message ?? `${path} is ${what} by other users; run: chmod 600 ${shellWord(path)}`)
    this.path = path
    this.mode = mode
  }
}

/** `text` as one word for a POSIX shell: as is when that is safe, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`
}
