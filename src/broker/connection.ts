/**
 * The only module that touches a client's byte stream: decodes input into the Channel, executes the Channel's
 * actions in order (waiting on a promise where one appears), batches output into one write per event-loop turn,
 * applies backpressure, and enforces the connect, keep-alive and close-grace deadlines.
 *
 * An idle connection is the common case (thousands per broker), so per-connection state is kept small: socket
 * events go to shared handlers (no closure set per socket), all deadlines of a core are checked by one sweep
 * timer instead of a timer per connection, and buffers and promises are created on first use.
 */
import type { Duplex } from 'node:stream';
import { Decoder, MqttProtocolError, encode } from '../protocol/index.js';
import type { Packet, ProtocolVersion, PublishPacket } from '../protocol/index.js';
import type { Clock, TimerHandle } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { AuthResult, AuthStepResult } from './auth/auth.js';
import { Channel, type Action, type ChannelInfo } from './channel.js';
import type { BrokerCore } from './core.js';
import type { StoredMessage } from './persistence/store.js';

/** Above this many bytes waiting in the socket, stop reading from the client until it drains. */
const HIGH_WATER_MARK = 1 << 20;
/** Actions held behind pending store commits before input stops being decoded. */
const MAX_QUEUED_ACTIONS = 4096;
/** Above this many bytes waiting, QoS 0 messages to the client are dropped (MQTT 5.0 4.3.1 allows it). */
const QOS0_DROP_MARK = 16 << 20;
/** How long a closing connection may take to read our last packet before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** Granularity of deadlines: a timeout fires at most this much late (never early). */
const SLOT_MS = 100;

/**
 * Which deadline a connection waits for: CONNECT (and its authentication) to complete by #deadlineAt; a packet
 * within #keepAliveMs of the last one; or the peer to read our last packet and close by #deadlineAt.
 */
type Deadline = 'none' | 'connect' | 'keepAlive' | 'grace';

/** What the wheel keeps per connection: where its entry is, so it can be taken out in O(1). */
interface WheelEntry {
  /** Slot of the bucket holding this entry; 0 when in none. */
  wheelSlot: number;
  /** Index in that bucket. */
  wheelIndex: number;
  onDeadline(now: number): void;
}

/**
 * All deadlines of a core on one timer: connections sit in buckets of SLOT_MS by deadline. A Node timer per
 * connection costs a Timeout object and a closure (~200 bytes) each; here it is one array slot. A tick visits only
 * the connections whose bucket is due; a keep-alive deadline that moved (packets arrived) is re-bucketed then, so
 * a packet costs one number store, not a timer reset. A closed connection is taken out at once (swap with the
 * bucket's last entry), so nothing keeps it alive.
 */
class DeadlineWheel {
  readonly #clock: Clock;
  readonly #buckets = new Map<number, WheelEntry[]>();
  /** Last slot processed. */
  #done: number;
  #timer: TimerHandle | undefined = undefined;
  /** Slot the timer is set for; Infinity when it is not set. */
  #armedSlot = Infinity;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#done = Math.floor(clock.now() / SLOT_MS);
  }

  /** Puts `e` in the bucket for time `at`, rounded up (never early), taking it out of any earlier one. */
  schedule(e: WheelEntry, at: number): void {
    const slot = Math.max(Math.ceil(at / SLOT_MS), this.#done + 1);
    if (e.wheelSlot === slot) return;
    if (e.wheelSlot !== 0) this.cancel(e);
    let bucket = this.#buckets.get(slot);
    if (bucket === undefined) this.#buckets.set(slot, (bucket = []));
    e.wheelSlot = slot;
    e.wheelIndex = bucket.length;
    bucket.push(e);
    if (slot < this.#armedSlot) this.#arm(slot);
  }

  cancel(e: WheelEntry): void {
    const slot = e.wheelSlot;
    if (slot === 0) return;
    e.wheelSlot = 0;
    const bucket = this.#buckets.get(slot);
    if (bucket === undefined) return;
    const last = bucket.pop() as WheelEntry;
    if (last !== e) {
      bucket[e.wheelIndex] = last;
      last.wheelIndex = e.wheelIndex;
    } else if (bucket.length === 0) {
      this.#buckets.delete(slot);
    }
  }

  /** Sets the one timer for the end of `slot` (an idle broker wakes only when a deadline is due). */
  #arm(slot: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#armedSlot = slot;
    this.#timer = this.#clock.setTimeout(this.#tick, Math.max(0, slot * SLOT_MS - this.#clock.now()));
    this.#timer.unref?.();
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    this.#armedSlot = Infinity;
    const now = this.#clock.now();
    const last = Math.floor(now / SLOT_MS);
    const buckets = this.#buckets;
    // Slots missed while the loop was busy are caught up; after a long gap (clock jump) only the due keys are visited.
    if (last - this.#done > 1024) {
      const due = [...buckets.keys()].filter((k) => k <= last).sort((x, y) => x - y);
      this.#done = last;
      for (const slot of due) this.#fire(slot, now);
    } else {
      for (let slot = this.#done + 1; slot <= last; slot++) {
        this.#done = slot;
        this.#fire(slot, now);
      }
    }
    // Next due bucket; a deadline scheduled meanwhile (by the callbacks above) may already have set the timer.
    let next = Infinity;
    for (const slot of buckets.keys()) if (slot < next) next = slot;
    if (next < this.#armedSlot) this.#arm(next);
  };

  #fire(slot: number, now: number): void {
    const bucket = this.#buckets.get(slot);
    if (bucket === undefined) return;
    this.#buckets.delete(slot);
    for (let i = 0; i < bucket.length; i++) (bucket[i] as WheelEntry).wheelSlot = 0;
    for (let i = 0; i < bucket.length; i++) (bucket[i] as WheelEntry).onDeadline(now);
  }
}

const wheels = new WeakMap<BrokerCore, DeadlineWheel>();

function wheelOf(core: BrokerCore): DeadlineWheel {
  let w = wheels.get(core);
  if (w === undefined) {
    w = new DeadlineWheel(core.clock);
    wheels.set(core, w);
  }
  return w;
}

/** Connections with output waiting for the end of this event-loop turn; one setImmediate flushes them all. */
let flushQueue: Connection[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const q = flushQueue;
  flushQueue = [];
  for (let i = 0; i < q.length; i++) (q[i] as Connection).flush();
}

/** The socket's Connection, for the shared event handlers (which are called with the socket as `this`). */
const kConnection = Symbol('telemq.connection');
type OwnedSocket = Duplex & { [kConnection]: Connection };

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

export class Connection implements WheelEntry {
  readonly channel: Channel;
  readonly #core: BrokerCore;
  readonly #socket: OwnedSocket;
  readonly #decoder: Decoder;
  readonly #logger: Logger;
  readonly #onCloseCb: (connection: Connection) => void;
  readonly #wheel: DeadlineWheel;

  /** Actions waiting behind a pending promise, in order; created when something first waits. */
  #queue: Action[] | undefined = undefined;
  /** Output waits for a promise (a store commit or a hook). */
  #blocked = false;
  /**
   * Input waits too: a hook's answer decides what the next packet means. A store commit only holds output back, so
   * a publisher's pipelined packets keep being handled and their acks are released batch by batch, in order.
   */
  #inputBlocked = false;
  /** Encoded packets waiting for the end of this event-loop turn. */
  #out: Buffer[] | undefined = undefined;
  #outBytes = 0;
  #flushScheduled = false;
  #pausedForBackpressure = false;
  #drainListened = false;
  #closing = false;
  /** Our side is half-closed: nothing more may be written. */
  #ended = false;
  #closed = false;
  #closeReason: string | undefined = undefined;
  #lastRx: number;
  #keepAliveMs = 0;
  #deadline: Deadline = 'connect';
  #deadlineAt: number;
  /** @internal position in the deadline wheel. */
  wheelSlot = 0;
  /** @internal */
  wheelIndex = 0;
  #closedPromise: Promise<void> | undefined = undefined;
  #resolveClosed: (() => void) | undefined = undefined;

  constructor(options: ConnectionOptions) {
    const core = (this.#core = options.core);
    const s = (this.#socket = options.socket as OwnedSocket);
    this.#logger = options.logger;
    this.#onCloseCb = options.onClose;
    // [MQTT-3.2.2-?] the Maximum Packet Size we announce is enforced before a packet is buffered.
    this.#decoder = new Decoder({ maximumPacketSize: core.limits.maximumPacketSize });
    this.channel = new Channel(core, options.info, this);
    const now = core.clock.now();
    this.#lastRx = now;
    this.#deadlineAt = now + core.limits.connectTimeout;
    this.#wheel = wheelOf(core);
    this.#wheel.schedule(this, this.#deadlineAt);
    s[kConnection] = this;
    s.on('data', Connection.#onData);
    s.on('error', Connection.#onError);
    s.on('close', Connection.#onSocketClose);
    s.on('end', Connection.#onEnd);
    // 'drain' is listened to from the first pause on (one listener slot less per idle socket).
  }

  /** Resolves once the socket has closed. */
  get closed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return (this.#closedPromise ??= new Promise((resolve) => {
      this.#resolveClosed = resolve;
    }));
  }

  /** Server-initiated DISCONNECT (v5) and close; used at shutdown. */
  disconnect(reasonCode: number): void {
    this.channel.disconnect(reasonCode, this.#core.clock.now());
    if (this.channel.session === undefined && !this.#closing) this.#startClose('server disconnect');
  }

  // --- socket events (shared handlers: `this` is the socket) ----------------------------------------------------

  static #onData(this: OwnedSocket, chunk: Buffer): void {
    this[kConnection].#data(chunk);
  }

  static #onError(this: OwnedSocket, err: Error): void {
    this[kConnection].#closeReason ??= `socket error: ${err.message}`;
  }

  static #onEnd(this: OwnedSocket): void {
    const c = this[kConnection];
    // The client half-closed: finish our side too.
    if (!c.#closing) c.#startClose('client closed the connection');
  }

  static #onSocketClose(this: OwnedSocket): void {
    this[kConnection].#socketClosed();
  }

  static #onDrain(this: OwnedSocket): void {
    const c = this[kConnection];
    if (c.#pausedForBackpressure && !c.#inputBlocked) c.#resumeReading();
  }

  // --- input -------------------------------------------------------------------------------------------------

  #data(chunk: Buffer): void {
    if (this.#closing) return;
    const core = this.#core;
    core.stats.bytesReceived += chunk.length;
    // One clock read per chunk: the packets of one read arrived at the same time.
    const now = core.clock.now();
    this.#lastRx = now;
    this.#decoder.push(chunk);
    this.#pump(now);
  }

  /** Decodes and handles packets until the decoder needs bytes or a pending promise blocks. */
  #pump(now: number): void {
    const decoder = this.#decoder;
    const channel = this.channel;
    while (!this.#inputBlocked && !this.#closing && (this.#queue === undefined || this.#queue.length < MAX_QUEUED_ACTIONS)) {
      const r = decoder.read();
      if (r === undefined) break;
      if (r instanceof MqttProtocolError) {
        this.#run(channel.handleDecodeError(r, now));
        break;
      }
      this.#run(channel.handleIn(r, now));
    }
    // While blocked the decoder keeps the bytes; stop reading when they pile up.
    if (this.#blocked && decoder.bufferedBytes > HIGH_WATER_MARK) this.#pauseReading();
    this.#scheduleFlush();
  }

  #socketClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    this.#ended = true;
    this.#deadline = 'none';
    this.#wheel.cancel(this);
    const clock = this.#core.clock;
    const wasConnected = this.channel.session !== undefined;
    this.channel.handleClosed(clock.now());
    if (wasConnected) {
      this.#logger.info(
        { clientId: this.channel.clientId, reason: this.#closeReason ?? 'connection lost' },
        'client disconnected',
      );
    }
    this.#onCloseCb(this);
    this.#resolveClosed?.();
  }

  /** @internal Called by the wheel when this connection's bucket is due. */
  onDeadline(now: number): void {
    const due = this.#due();
    if (due === undefined) return;
    if (now < due) {
      // Not yet (a keep-alive deadline moved with traffic): wait in a later bucket.
      this.#wheel.schedule(this, due);
      return;
    }
    const kind = this.#deadline;
    this.#deadline = 'none';
    switch (kind) {
      case 'keepAlive':
        // [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]) no packet within 1.5 x Keep Alive.
        this.#runNow(this.channel.handleKeepAliveTimeout(now));
        return;
      case 'connect': {
        const state = this.channel.state;
        // Runs even while a hook or store write is pending: a hook that never answers must not hold the socket.
        if (state === 'awaitingConnect' || state === 'authenticating') {
          this.#runNow(this.channel.handleKeepAliveTimeout(now));
        }
        return;
      }
      case 'grace':
        this.#socket.destroy();
        return;
      case 'none':
        return;
      default: {
        const _exhaustive: never = kind;
        return _exhaustive;
      }
    }
  }

  /** When the current deadline passes; undefined when there is none. */
  #due(): number | undefined {
    switch (this.#deadline) {
      case 'none':
        return undefined;
      case 'keepAlive':
        return this.#closing ? undefined : this.#lastRx + this.#keepAliveMs;
      default:
        return this.#deadlineAt;
    }
  }

  #setDeadline(d: Deadline): void {
    this.#deadline = d;
    const due = this.#due();
    if (due === undefined) {
      this.#wheel.cancel(this);
      return;
    }
    // An earlier deadline needs an earlier bucket; a later one is found when the current bucket comes up.
    if (this.wheelSlot === 0 || Math.ceil(due / SLOT_MS) < this.wheelSlot) this.#wheel.schedule(this, due);
  }

  // --- actions -----------------------------------------------------------------------------------------------

  /** Output waits behind a pending store commit or hook: what is pushed now is not sent at once. */
  get outputHeld(): boolean {
    return this.#blocked;
  }

  /** Output from the channel that is not a reply (deliveries, takeover): the Channel's sink. */
  push(action: Action): void {
    if (this.#blocked) (this.#queue ??= []).push(action);
    else {
      this.#exec(action);
      this.#scheduleFlush();
    }
  }

  #run(actions: readonly Action[]): void {
    for (let i = 0; i < actions.length; i++) {
      if (this.#blocked) {
        const queue = (this.#queue ??= []);
        for (; i < actions.length; i++) queue.push(actions[i] as Action);
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
    this.#inputBlocked = false;
    const rest = this.#queue;
    this.#queue = undefined;
    this.#run(actions);
    if (rest !== undefined) this.#run(rest);
    if (!this.#inputBlocked) {
      this.#resumeReading();
      this.#pump(this.#core.clock.now());
    }
    this.#scheduleFlush();
  }

  #block<T>(
    promise: Promise<T>,
    stopsInput: boolean,
    then: (value: T) => readonly Action[],
    fail: (err: unknown) => readonly Action[],
  ): void {
    this.#blocked = true;
    if (stopsInput) this.#inputBlocked = true;
    promise
      .then(
        (v) => {
          if (!this.#closed) this.#resume(then(v));
        },
        (err: unknown) => {
          if (!this.#closed) this.#resume(fail(err));
        },
      )
      .catch((err: unknown) => {
        // A throw while resuming would be an unhandled rejection, which ends the process: lose this connection only.
        this.#logger.error({ err, clientId: this.channel.clientId }, 'internal error after a pending write or hook; closing the connection');
        this.#socket.destroy();
      });
  }

  #exec(action: Action): void {
    switch (action.type) {
      case 'send':
        this.#send(action.packet, action.message);
        break;
      case 'await':
        this.#block(
          action.promise,
          false,
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
          this.#block(result, true, (r) => this.channel.handleAuthResult(r, now()), (err) => this.channel.handleAuthResult(onThrow(err), now()));
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
          this.#block(result, true, (r) => this.channel.handleAuthStepResult(r, now()), (err) => this.channel.handleAuthStepResult(onThrow(err), now()));
        } else {
          this.#run(this.channel.handleAuthStepResult(result, now()));
        }
        break;
      }
      case 'keepAlive':
        this.#armKeepAlive(action.ms);
        break;
      case 'close':
        // Already closing (e.g. shutdown reaching a connection refused a moment ago): counted and logged once.
        if (this.#closing) break;
        if (action.error) {
          this.#core.stats.protocolErrors++;
          if (this.#core.connectionLog.allow('protocolError')) {
            this.#logger.warn(
              { clientId: this.channel.clientId || undefined, rule: action.rule, reason: action.reason, remoteAddress: this.channel.info.remoteAddress },
              'protocol error: closing connection',
            );
          }
        } else if (this.channel.session === undefined) {
          this.#core.stats.closedBeforeConnect++;
          // Never connected (refused CONNECT): no 'client disconnected' line will follow.
          if (this.#core.connectionLog.allow('closedBeforeConnect')) {
            this.#logger.info(
              { clientId: this.channel.clientId || undefined, reason: action.reason, remoteAddress: this.channel.info.remoteAddress },
              'connection closed before CONNECT completed',
            );
          }
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
    if (this.#closing) return;
    this.#keepAliveMs = ms;
    this.#lastRx = this.#core.clock.now();
    // Replaces the connect deadline; 0 disables the keep-alive check.
    this.#setDeadline(ms === 0 ? 'none' : 'keepAlive');
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
    (this.#out ??= []).push(bytes);
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
    } else if (this.#core.connectionLog.allow('connectRefused')) {
      this.#logger.info({ clientId: c.clientId, reasonCode, remoteAddress: c.info.remoteAddress }, 'CONNACK refusal sent');
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#out === undefined) return;
    this.#flushScheduled = true;
    flushQueue.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  /** One write per event-loop turn: everything encoded since the last flush, concatenated. */
  flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out === undefined) return;
    this.#out = undefined;
    const total = this.#outBytes;
    this.#outBytes = 0;
    if (this.#ended) return;
    const bytes = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, total);
    this.#core.stats.bytesSent += bytes.length;
    const ok = this.#socket.write(bytes);
    if (!ok && this.#socket.writableLength > HIGH_WATER_MARK) this.#pauseReading();
  }

  #pauseReading(): void {
    if (this.#pausedForBackpressure) return;
    if (!this.#drainListened) {
      this.#drainListened = true;
      this.#socket.on('drain', Connection.#onDrain);
    }
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
    this.flush();
    this.#ended = true;
    this.#queue = undefined;
    const s = this.#socket;
    s.end();
    // Keep reading (and discarding) so the peer's FIN is seen and 'close' fires.
    s.resume();
    if (this.#closed) return;
    this.#deadlineAt = this.#core.clock.now() + CLOSE_GRACE_MS;
    this.#setDeadline('grace');
  }

  /** Immediately destroys the socket (broker close after the grace period). */
  destroy(): void {
    this.flush();
    this.#ended = true;
    this.#socket.destroy();
  }

  get closing(): boolean {
    return this.#closing;
  }
}
