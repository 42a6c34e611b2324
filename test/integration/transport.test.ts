import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  type Connection,
  type PeerDiscovery,
  type PeerDiscoveryEvents,
  peerDiscoverySymbol,
} from '@libp2p/interface'
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFrameStream, type FrameStream, SYNC_PROTOCOL } from '../../src/node/sync-protocol.js'
import {
  createTransport,
  setTopicValidator,
  type TransportNode,
  waitForSubscribers,
} from '../../src/node/transport.js'
import {
  connectNodes,
  createTestNodes,
  randomGroupTopic,
  recordMessages,
  type TestNodes,
  testTransportInit,
  waitFor,
  waitForMutualSubscriptions,
} from '../fixtures/index.js'

/** A discovery mechanism the test drives by hand, standing in for mDNS. */
class FakeDiscovery extends TypedEventEmitter<PeerDiscoveryEvents> implements PeerDiscovery {
  readonly [peerDiscoverySymbol] = this
  readonly [Symbol.toStringTag] = 'p2pchat-test-discovery'

  announce(peer: TransportNode): void {
    this.safeDispatchEvent('peer', { detail: { id: peer.peerId, multiaddrs: peer.getMultiaddrs() } })
  }
}

const text = new TextEncoder()
const utf8 = new TextDecoder()

function at<T>(list: readonly T[], index: number): T {
  const item = list[index]
  if (item === undefined) throw new Error(`no item ${index}`)
  return item
}

describe('transport (3 nodes, full mesh)', () => {
  let net: TestNodes
  // a and c accept any topic from the network (as if misconfigured/old); b keeps the default group filter
  let a: TransportNode
  let b: TransportNode
  let c: TransportNode

  beforeAll(async () => {
    net = await createTestNodes(3, {
      connect: true,
      init: (i) => (i === 1 ? {} : { gossip: { allowedTopics: () => true } }),
    })
    ;[a, b, c] = [at(net.nodes, 0), at(net.nodes, 1), at(net.nodes, 2)]
  })
  afterAll(async () => {
    await net?.teardown()
  })

  it('delivers a publish exactly once to each other subscriber and not to the publisher', async () => {
    const topic = randomGroupTopic()
    const logs = net.nodes.map((node) => recordMessages(node, topic))
    for (const node of net.nodes) node.services.pubsub.subscribe(topic)
    await waitForMutualSubscriptions(net.nodes, topic)

    const { recipients } = await a.services.pubsub.publish(topic, text.encode('hello'))
    expect(recipients.map(String).sort()).toEqual([b.peerId, c.peerId].map(String).sort())
    await Promise.all([at(logs, 1).waitFor('hello'), at(logs, 2).waitFor('hello')])

    // b and c forward 'hello' to each other (full mesh). Flush those links with a message each way: once
    // it arrives, any duplicate sent before it on the same stream has been processed too.
    await b.services.pubsub.publish(topic, text.encode('barrier from b'))
    await c.services.pubsub.publish(topic, text.encode('barrier from c'))
    await Promise.all([at(logs, 2).waitFor('barrier from b'), at(logs, 1).waitFor('barrier from c')])

    expect(at(logs, 1).count('hello')).toBe(1)
    expect(at(logs, 2).count('hello')).toBe(1)
    expect(at(logs, 0).count('hello')).toBe(0)
    for (const log of logs) log.stop()
  })

  it('publishing with nobody subscribed succeeds with no recipients', async () => {
    const topic = randomGroupTopic()
    const result = await a.services.pubsub.publish(topic, text.encode('anyone?'))
    expect(result.recipients).toEqual([])
  })

  it('refuses to publish the same bytes twice: message ids are content addresses', async () => {
    const topic = randomGroupTopic()
    const data = text.encode(`once ${topic}`)
    await a.services.pubsub.publish(topic, data)
    await expect(a.services.pubsub.publish(topic, data)).rejects.toThrow('PublishError.Duplicate')
  })

  it('drops a message its topic validator rejects, and still delivers accepted ones', async () => {
    const topic = randomGroupTopic()
    const logs = net.nodes.map((node) => recordMessages(node, topic))
    const verdicts: string[] = []
    const remove = setTopicValidator(b.services.pubsub, topic, ({ data }) => {
      const verdict = utf8.decode(data).startsWith('bad') ? 'reject' : 'accept'
      verdicts.push(verdict)
      return verdict
    })
    expect(() => setTopicValidator(b.services.pubsub, topic, () => 'accept')).toThrow(
      expect.objectContaining({ name: 'DuplicateTopicValidatorError' }),
    )
    try {
      for (const node of net.nodes) node.services.pubsub.subscribe(topic)
      await waitForMutualSubscriptions(net.nodes, topic)

      const { recipients } = await a.services.pubsub.publish(topic, text.encode('bad message'))
      expect(recipients.map(String)).toContain(b.peerId.toString())
      await at(logs, 2).waitFor('bad message') // c has no validator: the message really went out
      await a.services.pubsub.publish(topic, text.encode('good message'))
      await at(logs, 1).waitFor('good message')

      expect(verdicts).toContain('reject')
      expect(at(logs, 1).count('bad message')).toBe(0)
    } finally {
      remove()
      for (const log of logs) log.stop()
    }
    expect(b.services.pubsub.topicValidators.has(topic)).toBe(false)
  })

  it('ignores subscriptions and messages on topics outside the allowed ones', async () => {
    const offTopic = `/someone-else/${randomGroupTopic()}`
    const groupTopic = randomGroupTopic()
    const offLogs = net.nodes.map((node) => recordMessages(node, offTopic))
    const groupLog = recordMessages(b, groupTopic)
    for (const node of net.nodes) {
      node.services.pubsub.subscribe(offTopic)
      node.services.pubsub.subscribe(groupTopic)
    }
    await waitForMutualSubscriptions(net.nodes, groupTopic)
    await waitForSubscribers(a.services.pubsub, offTopic, { minPeers: 2, signal: AbortSignal.timeout(5000) })
    // b drops a's and c's subscriptions to the off-prefix topic...
    expect(b.services.pubsub.getSubscribers(offTopic)).toEqual([])

    // ...and messages on it, although a believes b is subscribed and sends to it
    const { recipients } = await a.services.pubsub.publish(offTopic, text.encode('off topic'))
    expect(recipients.map(String)).toContain(b.peerId.toString())
    await at(offLogs, 2).waitFor('off topic')
    await a.services.pubsub.publish(groupTopic, text.encode('barrier'))
    await groupLog.waitFor('barrier')

    expect(at(offLogs, 1).count('off topic')).toBe(0)
    for (const log of [...offLogs, groupLog]) log.stop()
  })

  describe('sync protocol framing', () => {
    const serverErrors: Error[] = []
    const maxFrames = 8

    beforeAll(async () => {
      await b.handle(SYNC_PROTOCOL, async (stream) => {
        const frames = createFrameStream(stream, { maxFrames })
        try {
          const signal = AbortSignal.timeout(5000)
          while (true) {
            const req = await frames.readFrame({ signal })
            if (req === null) break
            await frames.writeFrame(new Uint8Array([...text.encode('echo:'), ...req]), { signal })
          }
          await frames.close({ signal })
        } catch (err) {
          serverErrors.push(err as Error)
          frames.abort(err as Error)
        }
      })
    })
    afterAll(async () => {
      await b.unhandle(SYNC_PROTOCOL)
    })

    async function open(init?: Parameters<typeof createFrameStream>[1]): Promise<FrameStream> {
      const stream = await a.dialProtocol(b.peerId, SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      return createFrameStream(stream, init)
    }

    async function waitForServerError(name: string): Promise<void> {
      await waitFor(() => serverErrors.some((e) => e.name === name), {
        message: `the sync handler to fail with ${name}`,
      })
    }

    async function exchangeSeveralFrames(): Promise<void> {
      const frames = await open()
      const signal = AbortSignal.timeout(5000)
      // request/response turns
      for (const word of ['one', 'two', '']) {
        await frames.writeFrame(text.encode(word), { signal })
        expect(utf8.decode((await frames.readFrame({ signal })) ?? new Uint8Array())).toBe(`echo:${word}`)
      }
      // then a burst, including a frame larger than one TCP/yamux chunk, and a half-close
      const big = new Uint8Array(200_000).fill(7)
      await frames.writeFrame(text.encode('four'), { signal })
      await frames.writeFrame(big, { signal })
      await frames.close({ signal })
      expect(utf8.decode((await frames.readFrame({ signal })) ?? new Uint8Array())).toBe('echo:four')
      const bigEcho = await frames.readFrame({ signal })
      expect(bigEcho?.byteLength).toBe(big.byteLength + 5)
      expect(bigEcho?.subarray(5).every((byte) => byte === 7)).toBe(true)
      expect(await frames.readFrame({ signal })).toBeNull() // the server closed its end after our close
      expect(frames.framesWritten).toBe(5)
      expect(frames.framesRead).toBe(5)
    }

    it('exchanges several frames both ways over dialProtocol/handle', async () => {
      await exchangeSeveralFrames()
    })

    it('rejects an oversized frame by resetting only that stream', async () => {
      const frames = await open({ maxFrameLength: 2 * 1024 * 1024 }) // the client lets it out, the server must not
      const tooBig = new Uint8Array(1024 * 1024 + 1)
      await frames.writeFrame(tooBig).catch(() => {}) // may or may not finish before the reset
      await waitForServerError('FrameTooLargeError')
      await expect(frames.readFrame({ signal: AbortSignal.timeout(5000) })).rejects.toThrow()

      expect(b.status).toBe('started')
      expect(a.getConnections(b.peerId).length).toBeGreaterThan(0)
      await exchangeSeveralFrames() // the node and the connection carry on
    })

    it('refuses to write a frame above its own limit without sending it', async () => {
      const frames = await open({ maxFrameLength: 16 }) // applies to what we read too: 'echo:ok' fits
      await expect(frames.writeFrame(new Uint8Array(17))).rejects.toThrow(
        expect.objectContaining({ name: 'FrameTooLargeError', length: 17, maxLength: 16 }),
      )
      await frames.writeFrame(text.encode('ok'))
      expect(utf8.decode((await frames.readFrame()) ?? new Uint8Array())).toBe('echo:ok')
      await frames.close()
    })

    it('rejects more frames per stream than allowed', async () => {
      const frames = await open()
      for (let i = 0; i <= maxFrames; i++) await frames.writeFrame(text.encode(`frame ${i}`)).catch(() => {})
      await waitForServerError('TooManyFramesError')
      const readAll = async (): Promise<void> => {
        while ((await frames.readFrame({ signal: AbortSignal.timeout(5000) })) !== null) {
          // the server may answer some frames before it resets the stream
        }
      }
      await expect(readAll()).rejects.toThrow()
    })

    it('pauses a fast sender while frames are unread, then resumes without losing data', async () => {
      const protocol = '/p2pchat/test/slow-reader/1.0.0'
      const frameCount = 6
      let sawPause = false
      const handlerError: Error[] = []
      await b.handle(protocol, async (stream) => {
        const frames = createFrameStream(stream)
        try {
          const signal = AbortSignal.timeout(10_000)
          // read nothing until the frame stream has paused the sender (> one max frame buffered)
          await waitFor(() => stream.readStatus === 'paused', {
            message: 'the frame stream to pause the stream',
          })
          sawPause = true
          let total = 0
          for (let i = 0; i < frameCount; i++) total += (await frames.readFrame({ signal }))?.byteLength ?? 0
          await frames.writeFrame(text.encode(String(total)), { signal })
          await frames.close({ signal })
        } catch (err) {
          handlerError.push(err as Error)
          frames.abort(err as Error)
        }
      })
      try {
        const frames = createFrameStream(await a.dialProtocol(b.peerId, protocol))
        const signal = AbortSignal.timeout(10_000)
        const frame = new Uint8Array(1024 * 1024)
        for (let i = 0; i < frameCount; i++) await frames.writeFrame(frame, { signal })
        await frames.close({ signal })
        expect(utf8.decode((await frames.readFrame({ signal })) ?? new Uint8Array())).toBe(
          String(frameCount * frame.byteLength),
        )
        expect(handlerError).toEqual([])
        expect(sawPause).toBe(true)
      } finally {
        await b.unhandle(protocol)
      }
    })

    it('queues no further frame for a reader that reads nothing, however often the connection drains', async () => {
      const stalled = '/p2pchat/test/no-reader/1.0.0'
      const sink = '/p2pchat/test/sink/1.0.0'
      const held: Array<{ abort(err: Error): void }> = []
      // the reader takes its stream and never reads: yamux grants the writer its first window only
      await b.handle(stalled, (stream) => {
        stream.pause()
        held.push(stream)
      })
      // another stream on the same connection reads all it gets: writing a lot to it makes the
      // connection saturate and drain, which wakes every writer on the connection
      await b.handle(sink, (stream) => {
        stream.addEventListener('message', () => {})
        stream.addEventListener('remoteCloseWrite', () => {
          stream.close().catch(() => {})
        })
      })
      try {
        const frames = createFrameStream(await a.dialProtocol(b.peerId, stalled))
        const frame = new Uint8Array(300 * 1024) // more than the first yamux window (256 KiB)
        const writer = (async () => {
          for (let i = 0; i < 8; i++) await frames.writeFrame(frame, { signal: AbortSignal.timeout(20_000) })
        })().catch((err: Error) => err)
        await waitFor(() => frames.framesWritten === 1 && frames.stream.writeBufferLength > 0, {
          message: 'the first frame to fill the window of the stream nobody reads',
        })

        const busy = createFrameStream(await a.dialProtocol(b.peerId, sink))
        const chunk = new Uint8Array(1024 * 1024)
        for (let i = 0; i < 8; i++) await busy.writeFrame(chunk, { signal: AbortSignal.timeout(10_000) })
        await busy.close({ signal: AbortSignal.timeout(10_000) })

        // the connection drained many times meanwhile; the stalled stream still holds only the rest of
        // its first frame
        expect(frames.framesWritten).toBe(1)
        expect(frames.stream.writeBufferLength).toBeLessThan(frame.byteLength)
        frames.abort(new Error('done'))
        expect(await writer).toBeInstanceOf(Error)
      } finally {
        for (const stream of held) stream.abort(new Error('done'))
        await b.unhandle(stalled)
        await b.unhandle(sink)
      }
    })

    it('reports a stream that ends inside a frame', async () => {
      const frames = await open()
      frames.stream.send(new Uint8Array([10, 1, 2, 3])) // announces 10 bytes, sends 3
      await frames.close()
      await waitForServerError('TruncatedFrameError')
    })

    it('abandons a read when its signal aborts, leaving the stream usable', async () => {
      const frames = await open()
      await expect(frames.readFrame({ signal: AbortSignal.timeout(50) })).rejects.toThrow(
        expect.objectContaining({ name: 'TimeoutError' }),
      )
      await frames.writeFrame(text.encode('after abort'))
      expect(utf8.decode((await frames.readFrame()) ?? new Uint8Array())).toBe('echo:after abort')
      await frames.close()
    })
  })

  it('dials a peer as soon as it is discovered (here: added to the peer store, as mDNS would)', async () => {
    const { nodes, teardown } = await createTestNodes(1)
    try {
      const node = at(nodes, 0)
      expect(node.getConnections(a.peerId)).toEqual([])
      await node.peerStore.merge(a.peerId, { multiaddrs: a.getMultiaddrs() })
      await waitFor(() => node.getConnections(a.peerId).length > 0, {
        message: 'the node to dial the peer it just discovered',
      })
    } finally {
      await teardown()
    }
  })

  it('dials a known peer again when discovery re-announces it after a disconnect', async () => {
    const discovery = new FakeDiscovery()
    const { nodes, teardown } = await createTestNodes(1, { init: { peerDiscovery: [() => discovery] } })
    try {
      const node = at(nodes, 0)
      discovery.announce(a)
      await waitFor(() => node.getConnections(a.peerId).length > 0, {
        message: 'the node to dial the announced peer',
      })
      await node.hangUp(a.peerId)
      expect(node.getConnections(a.peerId)).toEqual([])
      // a is in the peer store now, so libp2p will not emit 'peer:discovery' for it again
      discovery.announce(a)
      await waitFor(() => node.getConnections(a.peerId).length > 0, {
        message: 'the node to dial the re-announced peer',
      })
    } finally {
      await teardown()
    }
  })

  it('a node started with only a bootstrap address connects to that peer', async () => {
    const bootstrapAddr = at(a.getMultiaddrs(), 0).toString()
    const { nodes, teardown } = await createTestNodes(1, { init: { bootstrap: [bootstrapAddr] } })
    try {
      const node = at(nodes, 0)
      await waitFor(() => node.getConnections(a.peerId).length > 0, {
        message: 'the new node to connect to its bootstrap peer',
      })
      await waitFor(() => a.getConnections(node.peerId).length > 0, {
        message: 'the bootstrap peer to see the inbound connection',
      })
    } finally {
      await teardown()
    }
  })
})

describe('createTransport options', () => {
  it('refuses a bootstrap address without a peer id, and a non-Ed25519 key', async () => {
    await expect(
      createTransport(await testTransportInit({ bootstrap: ['/ip4/127.0.0.1/tcp/1'] })),
    ).rejects.toThrow(expect.objectContaining({ name: 'InvalidTransportInitError' }))
    const init = await testTransportInit()
    await expect(
      createTransport({ ...init, privateKey: await generateKeyPair('secp256k1') }),
    ).rejects.toThrow(expect.objectContaining({ name: 'InvalidTransportInitError' }))
  })

  it('fails to start, with the listen error, when its listen address is taken', async () => {
    const { nodes, teardown } = await createTestNodes(1)
    try {
      const taken = at(at(nodes, 0).getMultiaddrs(), 0).decapsulateCode(CODE_P2P).toString()
      await expect(createTransport(await testTransportInit({ listen: [taken] }))).rejects.toThrow(
        expect.objectContaining({ name: 'UnsupportedListenAddressesError' }),
      )
    } finally {
      await teardown()
    }
  })
})

describe('circuit relay', () => {
  it('a peer listening via a relay can be dialled through it and gossips over the relayed connection', async () => {
    const { nodes, teardown } = await createTestNodes(3, {
      init: (i) => (i === 0 ? { relayServer: true } : i === 1 ? { listenViaRelay: true } : {}),
    })
    try {
      const [relay, behindNat, other] = [at(nodes, 0), at(nodes, 1), at(nodes, 2)]
      await connectNodes(behindNat, relay)
      await waitFor(() => behindNat.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit')), {
        message: 'the peer to get a relay reservation and a /p2p-circuit address',
      })
      const circuitAddr = behindNat.getMultiaddrs().find((ma) => ma.toString().includes('/p2p-circuit'))
      const connection: Connection = await other.dial(multiaddr(String(circuitAddr)), {
        signal: AbortSignal.timeout(5000),
      })
      expect(connection.remotePeer.equals(behindNat.peerId)).toBe(true)
      expect(connection.remoteAddr.toString()).toContain('/p2p-circuit')
      expect(connection.limits).toBeDefined()

      const topic = randomGroupTopic()
      const received = recordMessages(behindNat, topic)
      behindNat.services.pubsub.subscribe(topic)
      other.services.pubsub.subscribe(topic)
      await waitForMutualSubscriptions([behindNat, other], topic)
      await other.services.pubsub.publish(topic, text.encode('via relay'))
      await received.waitFor('via relay')
      received.stop()
    } finally {
      await teardown()
    }
  })
})
