/**
 * The only module that touches a client's byte stream: decodes input into the Channel, executes the Channel's
 * actions in order (waiting on a promise where one appears), batches output into one write per event-loop turn,
 * applies backpressure, and runs the connect and keep-alive timers.
 */
import type { Duplex } from 'node:stream';
import { Decoder, MqttProtocolError, encode } from '../protocol/index.js';
import type { Packet, ProtocolVersion, PublishPacket } from '../protocol/index.js';
import type { TimerHandle } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { AuthResult, AuthStepResult } from './auth/auth.js';
import { Channel, type Action, type ChannelInfo } from './channel.js';
import type { BrokerCore } from './core.js';
import type { StoredMessage } from './persistence/store.js';

/** Above this many bytes waiting in the socket, stop reading from the client until it drains. */
const HIGH_WATER_MARK = 1 << 20;
/** Above this many bytes waiting, QoS 0 messages to the client are dropped (MQTT 5.0 4.3.1 allows it). */
const QOS0_DROP_MARK = 16 << 20;
/** How long a closing connection may take to read our last packet before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

// Per protocol level, the last encoded PUBLISH: a fan-out encodes each message once per variant and shares the
// bytes among subscribers (QoS 1/2 copies get their own packet id patched in). Indexed by protocol level 3..5.
interface EncodeCacheSlot {
  message: StoredMessage | undefined;
  key: number;
  bytes: Buffer;
  idOffset: number;
}
const encodeCache: EncodeCacheSlot[] = [3, 4, 5, 6].map(() => ({ message: undefined, key: -1, bytes: Buffer.alloc(0), idOffset: 0 }));

function encodePublish(packet: PublishPacket, message: StoredMessage, version: ProtocolVersion): Buffer {
  // Per-subscriber properties or topic alias: nothing to share. v3 packets carry no properties at all.
  if (packet.topic !== message.topic || (version === 5 && packet.properties !== message.properties)) {
    return encode(packet, version);
  }
  const slot = encodeCache[version - 3] as EncodeCacheSlot;
  const key = packet.qos * 4 + (packet.retain ? 2 : 0) + (packet.dup ? 1 : 0);
  if (slot.message === message && slot.key === key) {
    if (packet.qos === 0) return slot.bytes;
    const copy = Buffer.allocUnsafe(slot.bytes.length);
    slot.bytes.copy(copy);
    copy.writeUInt16BE(packet.packetId ?? 0, slot.idOffset);
    return copy;
  }
  const bytes = encode(packet, version);
  slot.message = message;
  slot.key = key;
  slot.bytes = bytes;
  if (packet.qos > 0) {
    // Fixed header (1 byte + Remaining Length), then the topic (2-byte length + bytes), then the packet id.
    let i = 1;
    while ((bytes[i] as number) & 0x80) i++;
    i++;
    slot.idOffset = i + 2 + bytes.readUInt16BE(i);
  }
  return bytes;
}

export interface ConnectionOptions {
  core: BrokerCore;
  socket: Duplex;
  info: ChannelInfo;
  logger: Logger;
  onClose: (connection: Connection) => void;
}

export class Connection {
  readonly channel: Channel;
  readonly #core: BrokerCore;
  readonly #socket: Duplex;
  readonly #decoder: Decoder;
  readonly #logger: Logger;
  readonly #onCloseCb: (connection: Connection) => void;

  /** Actions waiting behind a pending promise, in order. */
  readonly #queue: Action[] = [];
  #blocked = false;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #pausedForBackpressure = false;
  #closing = false;
  /** Our side is half-closed: nothing more may be written. */
  #ended = false;
  #closed = false;
  #closeReason: string | undefined;
  #lastRx: number;
  #keepAliveMs = 0;
  #keepAliveTimer: TimerHandle | undefined;
  #connectTimer: TimerHandle | undefined;
  #graceTimer: TimerHandle | undefined;
  #resolveClosed: () => void = () => {};
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;

  constructor(options: ConnectionOptions) {
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const core = (this.#core = options.core);
    this.#socket = options.socket;
    this.#logger = options.logger;
    this.#onCloseCb = options.onClose;
    // [MQTT-3.2.2-?] the Maximum Packet Size we announce is enforced before a packet is buffered.
    this.#decoder = new Decoder({ maximumPacketSize: core.limits.maximumPacketSize });
    this.channel = new Channel(core, options.info, this.#sink);
    this.#lastRx = core.clock.now();
    this.#connectTimer = core.clock.setTimeout(this.#onConnectTimeout, core.limits.connectTimeout);
    this.#connectTimer.unref?.();
    const s = this.#socket;
    s.on('data', this.#onData);
    s.on('error', this.#onError);
    s.on('close', this.#onSocketClose);
    s.on('end', this.#onEnd);
    s.on('drain', this.#onDrain);
  }

  /** Server-initiated DISCONNECT (v5) and close; used at shutdown. */
  disconnect(reasonCode: number): void {
    this.channel.disconnect(reasonCode, this.#core.clock.now());
    if (this.channel.session === undefined && !this.#closing) this.#startClose('server disconnect');
  }


  // --- input -------------------------------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closing) return;
    this.#core.stats.bytesReceived += chunk.length;
    this.#lastRx = this.#core.clock.now();
    this.#decoder.push(chunk);
    this.#pump();
  };

  /** Decodes and handles packets until the decoder needs bytes or a pending promise blocks. */
  #pump(): void {
    const decoder = this.#decoder;
    const channel = this.channel;
    const clock = this.#core.clock;
    while (!this.#blocked && !this.#closing) {
      const r = decoder.read();
      if (r === undefined) break;
      if (r instanceof MqttProtocolError) {
        this.#run(channel.handleDecodeError(r, clock.now()));
        break;
      }
      this.#run(channel.handleIn(r, clock.now()));
    }
    // While blocked the decoder keeps the bytes; stop reading when they pile up.
    if (this.#blocked && decoder.bufferedBytes > HIGH_WATER_MARK) this.#pauseReading();
    this.#scheduleFlush();
  }

  readonly #onError = (err: Error): void => {
    this.#closeReason ??= `socket error: ${err.message}`;
  };

  readonly #onEnd = (): void => {
    // The client half-closed: finish our side too.
    if (!this.#closing) this.#startClose('client closed the connection');
  };

  readonly #onSocketClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    this.#ended = true;
    const clock = this.#core.clock;
    for (const t of [this.#keepAliveTimer, this.#connectTimer, this.#graceTimer]) if (t !== undefined) clock.clearTimeout(t);
    const wasConnected = this.channel.session !== undefined;
    this.channel.handleClosed(clock.now());
    if (wasConnected) {
      this.#logger.info(
        { clientId: this.channel.clientId, reason: this.#closeReason ?? 'connection lost' },
        'client disconnected',
      );
    }
    this.#onCloseCb(this);
    this.#resolveClosed();
  };

  readonly #onConnectTimeout = (): void => {
    this.#connectTimer = undefined;
    const state = this.channel.state;
    // Runs even while a hook or store write is pending: a hook that never answers must not hold the socket.
    if (state === 'awaitingConnect' || state === 'authenticating') {
      this.#runNow(this.channel.handleKeepAliveTimeout(this.#core.clock.now()));
    }
  };

  readonly #onKeepAlive = (): void => {
    this.#keepAliveTimer = undefined;
    if (this.#closing || this.#keepAliveMs === 0) return;
    const clock = this.#core.clock;
    const idle = clock.now() - this.#lastRx;
    if (idle >= this.#keepAliveMs) {
      this.#runNow(this.channel.handleKeepAliveTimeout(clock.now()));
      return;
    }
    // Re-arm for the rest of the interval: cheaper than resetting a timer on every packet.
    this.#keepAliveTimer = clock.setTimeout(this.#onKeepAlive, this.#keepAliveMs - idle);
    this.#keepAliveTimer.unref?.();
  };

  // --- actions -----------------------------------------------------------------------------------------------

  /** Output from the channel that is not a reply (deliveries, takeover). */
  readonly #sink = (action: Action): void => {
    if (this.#blocked) this.#queue.push(action);
    else {
      this.#exec(action);
      this.#scheduleFlush();
    }
  };

  #run(actions: readonly Action[]): void {
    for (let i = 0; i < actions.length; i++) {
      if (this.#blocked) {
        for (; i < actions.length; i++) this.#queue.push(actions[i] as Action);
        return;
      }
      this.#exec(actions[i] as Action);
    }
  }

  /** Runs `actions` at once, past a pending promise (timeouts: the connection is being closed anyway). */
  #runNow(actions: readonly Action[]): void {
    for (const a of actions) this.#exec(a);
    this.#scheduleFlush();
  }

  /** Runs `actions` ahead of anything queued (the answer of a hook or store the queue waited for). */
  #resume(actions: readonly Action[]): void {
    this.#blocked = false;
    const rest = this.#queue.splice(0);
    this.#run(actions);
    this.#run(rest);
    if (!this.#blocked) {
      this.#resumeReading();
      this.#pump();
    }
    this.#scheduleFlush();
  }

  #block<T>(promise: Promise<T>, then: (value: T) => readonly Action[], fail: (err: unknown) => readonly Action[]): void {
    this.#blocked = true;
    promise.then(
      (v) => {
        if (!this.#closed) this.#resume(then(v));
      },
      (err: unknown) => {
        if (!this.#closed) this.#resume(fail(err));
      },
    );
  }

  #exec(action: Action): void {
    switch (action.type) {
      case 'send':
        this.#send(action.packet, action.message);
        break;
      case 'await':
        this.#block(
          action.promise,
          () => [],
          (err) => {
            this.#logger.error({ err, clientId: this.channel.clientId }, 'store write failed; closing the connection');
            return [{ type: 'close', reason: 'store write failed', error: true }];
          },
        );
        break;
      case 'authenticate': {
        const now = () => this.#core.clock.now();
        const onThrow = (err: unknown): AuthResult => {
          this.#logger.error({ err, clientId: action.request.clientId }, 'authenticator threw; connection refused');
          return { ok: false, reasonCode: 0x88, reason: 'authentication unavailable' };
        };
        let result: AuthResult | Promise<AuthResult>;
        try {
          result = this.#core.authenticator.authenticate(action.request);
        } catch (err) {
          result = onThrow(err);
        }
        if (result instanceof Promise) {
          this.#block(result, (r) => this.channel.handleAuthResult(r, now()), (err) => this.channel.handleAuthResult(onThrow(err), now()));
        } else {
          this.#run(this.channel.handleAuthResult(result, now()));
        }
        break;
      }
      case 'authStep': {
        const hook = this.#core.enhancedAuthenticator;
        const now = () => this.#core.clock.now();
        const onThrow = (err: unknown): AuthStepResult => {
          this.#logger.error({ err, clientId: action.step.clientId }, 'enhanced authenticator threw; refused');
          return { result: 'failure', reasonCode: 0x80, reason: 'authentication failed' };
        };
        let result: AuthStepResult | Promise<AuthStepResult>;
        try {
          result = hook === undefined ? onThrow(new Error('no enhanced authenticator')) : hook.step(action.step);
        } catch (err) {
          result = onThrow(err);
        }
        if (result instanceof Promise) {
          this.#block(result, (r) => this.channel.handleAuthStepResult(r, now()), (err) => this.channel.handleAuthStepResult(onThrow(err), now()));
        } else {
          this.#run(this.channel.handleAuthStepResult(result, now()));
        }
        break;
      }
      case 'keepAlive':
        this.#armKeepAlive(action.ms);
        break;
      case 'close':
        if (action.error) {
          this.#logger.warn(
            { clientId: this.channel.clientId || undefined, rule: action.rule, reason: action.reason, remoteAddress: this.channel.info.remoteAddress },
            'protocol error: closing connection',
          );
        } else if (this.channel.session === undefined) {
          // Never connected (refused CONNECT, timeout): no 'client disconnected' line will follow.
          this.#logger.info(
            { clientId: this.channel.clientId || undefined, reason: action.reason, remoteAddress: this.channel.info.remoteAddress },
            'connection closed before CONNECT completed',
          );
        }
        this.#startClose(action.reason);
        break;
      default: {
        const _exhaustive: never = action;
        return _exhaustive;
      }
    }
  }

  #armKeepAlive(ms: number): void {
    const clock = this.#core.clock;
    if (this.#connectTimer !== undefined) {
      clock.clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    if (this.#keepAliveTimer !== undefined) clock.clearTimeout(this.#keepAliveTimer);
    this.#keepAliveTimer = undefined;
    this.#keepAliveMs = ms;
    if (ms === 0) return;
    this.#lastRx = clock.now();
    this.#keepAliveTimer = clock.setTimeout(this.#onKeepAlive, ms);
    this.#keepAliveTimer.unref?.();
  }

  // --- output ------------------------------------------------------------------------------------------------

  #send(packet: Packet, message: StoredMessage | undefined): void {
    if (this.#ended) return;
    const version = this.channel.protocolVersion;
    if (packet.type === 'publish' && packet.qos === 0) {
      const waiting = this.#outBytes + this.#socket.writableLength;
      if (waiting > QOS0_DROP_MARK) {
        // A client that does not read: QoS 0 messages may be dropped rather than buffered without bound.
        this.#core.stats.messagesDropped++;
        return;
      }
    }
    let bytes: Buffer;
    try {
      bytes = message !== undefined && packet.type === 'publish' ? encodePublish(packet, message, version) : encode(packet, version);
    } catch (err) {
      // The channel only builds valid packets; if one still cannot be encoded, lose this connection, not the process.
      this.#logger.error({ err, clientId: this.channel.clientId, packet: packet.type }, 'cannot encode packet');
      this.#startClose('internal error');
      return;
    }
    if (packet.type === 'connack') this.#logConnack(packet.reasonCode, packet.sessionPresent);
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
  }

  #logConnack(reasonCode: number, sessionPresent: boolean): void {
    const c = this.channel;
    if (reasonCode === 0) {
      this.#logger.info(
        {
          clientId: c.clientId,
          protocolVersion: c.protocolVersion,
          sessionPresent,
          keepAlive: c.keepAlive,
          username: c.username,
          remoteAddress: c.info.remoteAddress,
          listener: c.info.listener,
        },
        'client connected',
      );
    } else {
      this.#logger.info({ clientId: c.clientId, reasonCode, remoteAddress: c.info.remoteAddress }, 'CONNACK refusal sent');
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#out.length === 0) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  /** One write per event-loop turn: everything encoded since the last flush, concatenated. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#ended) return;
    const bytes = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    this.#core.stats.bytesSent += bytes.length;
    const ok = this.#socket.write(bytes);
    if (!ok && this.#socket.writableLength > HIGH_WATER_MARK) this.#pauseReading();
  };

  readonly #onDrain = (): void => {
    if (this.#pausedForBackpressure && !this.#blocked) this.#resumeReading();
  };

  #pauseReading(): void {
    if (this.#pausedForBackpressure) return;
    this.#pausedForBackpressure = true;
    this.#socket.pause();
  }

  #resumeReading(): void {
    if (!this.#pausedForBackpressure) return;
    if (this.#socket.writableLength > HIGH_WATER_MARK) return;
    this.#pausedForBackpressure = false;
    this.#socket.resume();
  }

  /** Writes what is pending, half-closes, and destroys after a grace period so the peer can read our last packet. */
  #startClose(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeReason ??= reason;
    this.#flush();
    this.#ended = true;
    this.#queue.length = 0;
    const s = this.#socket;
    s.end();
    // Keep reading (and discarding) so the peer's FIN is seen and 'close' fires.
    s.resume();
    const clock = this.#core.clock;
    this.#graceTimer = clock.setTimeout(() => s.destroy(), CLOSE_GRACE_MS);
    this.#graceTimer.unref?.();
  }

  /** Immediately destroys the socket (broker close after the grace period). */
  destroy(): void {
    this.#flush();
    this.#ended = true;
    this.#socket.destroy();
  }

  get closing(): boolean {
    return this.#closing;
  }
}
