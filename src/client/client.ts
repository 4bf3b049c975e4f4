import { MAX_PACKET_SIZE, ReasonCode, type QoS } from '../protocol/constants.js';
import { MqttError, MqttProtocolError, PacketTooLargeError, TopicNameInvalidError } from '../protocol/errors.js';
import { Decoder, encode } from '../protocol/index.js';
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
} from '../protocol/packets.js';
import { isValidTopicFilter, isValidTopicName } from '../protocol/topic.js';
import { systemClock, type Clock, type TimerHandle } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { ensureBufferCompat } from './buffer-compat.js';
import { Emitter } from './emitter.js';
import {
  AuthHandlerError,
  ClientUsageError,
  ConnectionClosedError,
  ConnectionRefusedError,
  ReasonCodeError,
  ServerDisconnectError,
} from './errors.js';
import { MessageStream } from './message-stream.js';
import { PacketIdAllocator } from './packet-id.js';
import type { OutgoingStore, StoredMessage } from './store.js';
import { openTransport, type Transport } from './transport.js';
import type {
  ConnectOptions,
  DeliveredEvent,
  Message,
  PublishOptions,
  PublishResult,
  SubscribeOptions,
  SubscriptionRequest,
} from './types.js';

export interface ClientEvents {
  /** CONNACK accepted (first connect and every reconnect). */
  connect: (connack: ConnackPacket) => void;
  /** A reconnect attempt starts; `attempt` counts from 1. */
  reconnect: (attempt: number) => void;
  /** The connection is gone; the client reconnects unless ended or reconnect is off. */
  offline: (error: Error | undefined) => void;
  message: (message: Message) => void;
  delivered: (event: DeliveredEvent) => void;
  /** The broker sent DISCONNECT (v5). */
  disconnect: (packet: DisconnectPacket) => void;
  /** Failures not tied to a call: protocol violations, refused reconnects, failed resubscribes. */
  error: (error: Error) => void;
  /** end() finished or the client gave up; nothing more happens. */
  close: () => void;
}

interface Flow {
  kind: 'flow';
  packetId: number;
  packet: PublishPacket;
  state: 'publish' | 'pubrel';
  /** Sent on some connection before: a resend carries DUP=1 [MQTT-3.3.1-1]. */
  sent: boolean;
  /** Sent on the current connection and counted against the send quota. */
  onWire: boolean;
  /** PUBREC received, the 'pubrel' state is being persisted. */
  releasing: boolean;
  restored: boolean;
  pubrecCode?: number;
  resolve: ((result: PublishResult) => void) | undefined;
  reject: ((error: Error) => void) | undefined;
}

interface Qos0Item {
  kind: 'qos0';
  packet: PublishPacket;
  resolve: (result: PublishResult) => void;
  reject: (error: Error) => void;
}

interface Request {
  packet: SubscribePacket | UnsubscribePacket;
  resolve: (codes: number[]) => void;
  reject: (error: Error) => void;
}

/** One network connection; callbacks of a stale connection are ignored by comparing with #conn. */
interface Conn {
  transport: Transport | undefined;
  decoder: Decoder;
  out: Buffer[];
  outBytes: number;
  callbacks: Array<(error?: Error | null) => void>;
  flushScheduled: boolean;
  closed: boolean;
  connack: { resolve: (p: ConnackPacket) => void; reject: (e: Error) => void } | undefined;
  lastReceived: number;
  closeWaiters: Array<() => void>;
  /** The onAuth call whose answer this connection waits for; a stale answer is dropped. */
  authStep: object | undefined;
}

/** A reauthenticate() call waiting for the broker's AUTH 0x00 on `conn`. */
interface Reauth {
  conn: Conn;
  resolve: (properties: Properties | undefined) => void;
  reject: (error: Error) => void;
}

interface ServerLimits {
  receiveMaximum: number;
  maximumPacketSize: number;
  topicAliasMaximum: number;
  maximumQoS: number;
  retainAvailable: boolean;
}

type State = 'connecting' | 'connected' | 'reconnecting' | 'ending' | 'closed';

const FIRST_CONNECT = Symbol('first connect');
const QOS0_RESULT: PublishResult = Object.freeze({ reasonCode: 0 });

function toBuffer(data: string | Uint8Array): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function generateClientId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  // 23 characters: the length every 3.1.1 server must accept [MQTT-3.1.3-5].
  return 'telemq-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * An MQTT client connection. Create it with {@link connect}. Publish, subscribe and unsubscribe
 * return promises; messages arrive as 'message' events and through {@link MqttClient.messages}.
 */
export class MqttClient extends Emitter<ClientEvents> {
  readonly url: URL;
  readonly protocolVersion: 3 | 4 | 5;
  readonly #options: ConnectOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #backoff: BackoffOptions | undefined;
  readonly #store: OutgoingStore | undefined;
  #clientId: string;
  #state: State = 'connecting';
  #conn: Conn | undefined;
  #ids = new PacketIdAllocator();
  /** Outgoing QoS 1/2 flows in publish order (Map keeps insertion order). */
  #flows = new Map<number, Flow>();
  /** Messages not yet on the current connection, in order; #head marks the first unsent. */
  #waiting: Array<Flow | Qos0Item> = [];
  #head = 0;
  #inflight = 0;
  #requests = new Map<number, Request>();
  /** Acknowledged subscriptions, replayed when the broker kept no session. */
  #subscriptions = new Map<string, { subscription: Subscription; properties: Properties | undefined }>();
  /** QoS 2 packet ids received and not yet released by PUBREL. */
  #incomingQos2 = new Set<number>();
  #streams = new Set<MessageStream>();
  #validTopics = new Set<string>();
  #backlog: Message[] = [];
  #server: ServerLimits = {
    receiveMaximum: 65_535,
    maximumPacketSize: MAX_PACKET_SIZE,
    topicAliasMaximum: 0,
    maximumQoS: 2,
    retainAvailable: true,
  };
  #aliasesOut = new Map<string, number>();
  #aliasesIn = new Map<number, string>();
  #keepAlive: number;
  #lastSend = 0;
  #keepAliveTimer: TimerHandle | undefined;
  #pingTimer: TimerHandle | undefined;
  #reconnectTimer: TimerHandle | undefined;
  #attempt = 0;
  #storeChain: Promise<void> = Promise.resolve();
  #endPromise: Promise<void> | undefined;
  #everConnected = false;
  #takenOver: Error | undefined;
  /** The connection attempt in progress, if any. */
  #opening: Conn | undefined;
  /** v5 enhanced authentication: method and initial data of every CONNECT. */
  readonly #authMethod: string | undefined;
  readonly #authData: Buffer | undefined;
  #reauth: Reauth | undefined;

  /** Use {@link connect}; the constructor does not open a connection. */
  constructor(url: string | URL, options: ConnectOptions = {}, token?: symbol) {
    super();
    if (token !== FIRST_CONNECT) throw new TypeError('use connect(url, options) to create an MqttClient');
    this.url = typeof url === 'string' ? new URL(url) : url;
    this.protocolVersion = options.protocolVersion ?? 5;
    if (![3, 4, 5].includes(this.protocolVersion)) throw new RangeError('protocolVersion must be 3, 4 or 5');
    const userFromUrl = this.url.username === '' ? undefined : decodeURIComponent(this.url.username);
    const passFromUrl = this.url.password === '' ? undefined : decodeURIComponent(this.url.password);
    this.#options = {
      ...options,
      ...(options.username === undefined && userFromUrl !== undefined ? { username: userFromUrl } : {}),
      ...(options.password === undefined && passFromUrl !== undefined ? { password: passFromUrl } : {}),
    };
    if (this.protocolVersion !== 5 && this.#options.password !== undefined && this.#options.username === undefined) {
      // [MQTT-3.1.2-22] (3.1.1) a password needs a user name.
      throw new ClientUsageError('MQTT_ERR_INVALID_OPTIONS', ReasonCode.ProtocolError, 'MQTT 3.x needs a username with a password', 'MQTT-3.1.2-22');
    }
    // The method may come as an option or, passed through, among the CONNECT properties: one source of truth.
    const propsMethod = options.properties?.authenticationMethod;
    if (options.authenticationMethod !== undefined && propsMethod !== undefined && propsMethod !== options.authenticationMethod) {
      throw new ClientUsageError('MQTT_ERR_INVALID_OPTIONS', ReasonCode.ProtocolError, 'authenticationMethod and properties.authenticationMethod differ');
    }
    this.#authMethod = options.authenticationMethod ?? propsMethod;
    const authData = options.authenticationData ?? options.properties?.authenticationData;
    this.#authData = authData === undefined ? undefined : toBuffer(authData);
    if (this.#authMethod !== undefined && this.protocolVersion !== 5) {
      throw new ClientUsageError('MQTT_ERR_INVALID_OPTIONS', ReasonCode.ProtocolError, 'enhanced authentication needs MQTT 5');
    }
    if (this.#authData !== undefined && this.#authMethod === undefined) {
      // Section 3.1.2.11.10: Authentication Data without Authentication Method is a Protocol Error.
      throw new ClientUsageError('MQTT_ERR_INVALID_OPTIONS', ReasonCode.ProtocolError, 'authenticationData needs an authenticationMethod');
    }
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#backoff = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect;
    this.#store = options.store;
    this.#clientId = options.clientId === undefined || options.clientId === '' ? generateClientId() : options.clientId;
    this.#keepAlive = options.keepAlive ?? 60;
    if (this.protocolVersion !== 5) this.#server.receiveMaximum = options.maxInflight ?? 65_535;
  }

  /** @internal */
  static async open(url: string | URL, options: ConnectOptions): Promise<MqttClient> {
    ensureBufferCompat();
    const client = new MqttClient(url, options, FIRST_CONNECT);
    await client.#start();
    return client;
  }

  get clientId(): string {
    return this.#clientId;
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  /** QoS 1/2 messages accepted by publish() and not yet completed (including ones restored from the store). */
  pending(): Array<{ packetId: number; topic: string; qos: 1 | 2; state: 'publish' | 'pubrel' }> {
    return [...this.#flows.values()].map((f) => ({
      packetId: f.packetId,
      topic: f.packet.topic,
      qos: f.packet.qos as 1 | 2,
      state: f.state,
    }));
  }

  /** Emits an error from a promise callback: a listener that throws is logged, since nothing up the stack could catch it. */
  #reportError(err: unknown): void {
    try {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    } catch (listenerErr) {
      this.#log.error({ err: listenerErr }, "an 'error' listener threw");
    }
  }

  /** Appends a step to the store chain; a step that throws (an 'error' listener, say) is logged, and later steps still run. */
  #chainStore(step: () => unknown): void {
    this.#storeChain = this.#storeChain.then(step).then(undefined, (err: unknown) => {
      this.#log.error({ err }, 'store step failed');
    });
  }

  /** Resolves once every message accepted so far is in the store (immediately without a store). */
  persisted(): Promise<void> {
    return this.#storeChain;
  }

  // ---------------------------------------------------------------- public operations

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    const qos = options.qos ?? 0;
    const retain = options.retain ?? false;
    if (this.#state === 'ending' || this.#state === 'closed') return Promise.reject(new ConnectionClosedError('client ended'));
    if (qos !== 0 && qos !== 1 && qos !== 2) {
      return Promise.reject(new ClientUsageError('MQTT_ERR_INVALID_QOS', ReasonCode.ProtocolError, `QoS must be 0, 1 or 2, not ${String(qos)}`, 'MQTT-3.3.1-4'));
    }
    // [MQTT-3.3.2-2] no wildcards in a Topic Name; [MQTT-4.7.3-1] not empty. Devices publish to few
    // topics over and over: remember the ones already checked.
    if (!this.#validTopics.has(topic)) {
      if (!isValidTopicName(topic)) {
        return Promise.reject(new TopicNameInvalidError(`invalid topic name ${JSON.stringify(topic)}`, 'MQTT-3.3.2-2'));
      }
      if (this.#validTopics.size >= 1024) this.#validTopics.clear();
      this.#validTopics.add(topic);
    }
    if (qos > this.#server.maximumQoS) {
      // [MQTT-3.2.2-11] never send a QoS above the broker's Maximum QoS.
      return Promise.reject(new ClientUsageError('MQTT_ERR_QOS_NOT_SUPPORTED', ReasonCode.QoSNotSupported, `the broker accepts QoS <= ${this.#server.maximumQoS}`, 'MQTT-3.2.2-11'));
    }
    if (retain && !this.#server.retainAvailable) {
      // [MQTT-3.2.2-14] no retained PUBLISH when Retain Available is 0.
      return Promise.reject(new ClientUsageError('MQTT_ERR_RETAIN_NOT_SUPPORTED', ReasonCode.RetainNotSupported, 'the broker does not support retained messages', 'MQTT-3.2.2-14'));
    }
    let properties = options.properties;
    if (properties?.topicAlias !== undefined) {
      const { topicAlias: _ignored, ...rest } = properties;
      properties = rest;
    }
    const packet: PublishPacket = {
      type: 'publish',
      topic,
      payload: toBuffer(payload),
      qos,
      retain,
      dup: false,
      ...(properties !== undefined && this.protocolVersion === 5 ? { properties } : {}),
    };
    const offline = this.#state !== 'connected';
    if (offline && this.#waiting.length - this.#head >= (this.#options.offlineQueueLimit ?? 10_000)) {
      return Promise.reject(new ClientUsageError('MQTT_ERR_QUEUE_FULL', ReasonCode.QuotaExceeded, 'offline queue is full'));
    }
    if (qos === 0) {
      return new Promise((resolve, reject) => {
        const conn = this.#conn;
        if (!offline && conn !== undefined && this.#head === this.#waiting.length) {
          // Nothing queued ahead of it: straight to the connection.
          const bytes = this.#encodePublish(packet);
          if (bytes === undefined) reject(this.#tooLarge());
          else this.#writeOn(conn, bytes, (error) => (error ? reject(error) : resolve(QOS0_RESULT)));
          return;
        }
        this.#waiting.push({ kind: 'qos0', packet, resolve, reject });
        if (!offline) this.#pump();
      });
    }
    const packetId = this.#ids.allocate();
    if (packetId === undefined) {
      return Promise.reject(new ClientUsageError('MQTT_ERR_PACKET_IDS_EXHAUSTED', ReasonCode.QuotaExceeded, 'all 65535 packet identifiers are in use'));
    }
    packet.packetId = packetId;
    return new Promise((resolve, reject) => {
      const flow: Flow = {
        kind: 'flow',
        packetId,
        packet,
        state: 'publish',
        sent: false,
        onWire: false,
        releasing: false,
        restored: false,
        resolve,
        reject,
      };
      const store = this.#store;
      if (store === undefined) {
        this.#flows.set(packetId, flow);
        this.#waiting.push(flow);
        this.#pump();
        return;
      }
      // Accepted = durable: the message enters the send queue only after the store has it. Puts run
      // concurrently (the store groups them); the chain keeps the queue in publish order.
      this.#flows.set(packetId, flow);
      const stored = store.put(toStored(flow)).then(
        () => true,
        (err: unknown) => {
          this.#flows.delete(packetId);
          this.#ids.release(packetId);
          reject(err instanceof Error ? err : new Error(String(err)));
          return false;
        },
      );
      this.#chainStore(async () => {
        if (!(await stored) || this.#flows.get(packetId) !== flow) return; // failed, or end() ran meanwhile
        this.#waiting.push(flow);
        this.#pump();
      });
    });
  }

  /** Subscribes; resolves with one SUBACK code per filter (granted QoS, or a failure code >= 0x80). */
  subscribe(filters: string | Array<string | SubscriptionRequest>, options: SubscribeOptions = {}): Promise<number[]> {
    const list = Array.isArray(filters) ? filters : [filters];
    const subscriptions: Subscription[] = [];
    for (const item of list) {
      const o: SubscriptionRequest = typeof item === 'string' ? { ...options, topicFilter: item } : { ...options, ...item };
      // [MQTT-3.8.3-1] filters are valid UTF-8 Topic Filters.
      if (!isValidTopicFilter(o.topicFilter)) {
        return Promise.reject(new ClientUsageError('MQTT_ERR_TOPIC_FILTER_INVALID', ReasonCode.TopicFilterInvalid, `invalid topic filter ${JSON.stringify(o.topicFilter)}`, 'MQTT-4.7.1-1'));
      }
      subscriptions.push({
        topicFilter: o.topicFilter,
        qos: o.qos ?? 0,
        noLocal: o.noLocal ?? false,
        retainAsPublished: o.retainAsPublished ?? false,
        retainHandling: o.retainHandling ?? 0,
      });
    }
    // [MQTT-3.8.3-3] at least one filter.
    if (subscriptions.length === 0) return Promise.reject(new ClientUsageError('MQTT_ERR_NO_TOPIC_FILTER', ReasonCode.ProtocolError, 'subscribe needs a topic filter', 'MQTT-3.8.3-3'));
    const properties = this.protocolVersion === 5 ? options.properties : undefined;
    return this.#request((packetId) => ({ type: 'subscribe', packetId, subscriptions, ...(properties === undefined ? {} : { properties }) }));
  }

  /** Unsubscribes; resolves with the UNSUBACK reason codes (v5) or [] (v3, which has none). */
  unsubscribe(filters: string | string[], properties?: Properties): Promise<number[]> {
    const topicFilters = Array.isArray(filters) ? filters : [filters];
    // [MQTT-3.10.3-2] at least one filter.
    if (topicFilters.length === 0) return Promise.reject(new ClientUsageError('MQTT_ERR_NO_TOPIC_FILTER', ReasonCode.ProtocolError, 'unsubscribe needs a topic filter', 'MQTT-3.10.3-2'));
    const props = this.protocolVersion === 5 ? properties : undefined;
    return this.#request((packetId) => ({ type: 'unsubscribe', packetId, topicFilters, ...(props === undefined ? {} : { properties: props }) }));
  }

  /**
   * Received messages as an async iterator, optionally only those matching `filter`. Leaving the
   * `for await` loop unregisters the iterator; end() finishes it.
   */
  messages(filter?: string): AsyncIterableIterator<Message> {
    const stream = new MessageStream(filter, (s) => this.#streams.delete(s));
    if (this.#state === 'closed') {
      stream.finish();
      return stream;
    }
    this.#streams.add(stream);
    const backlog = this.#backlog.splice(0);
    for (const m of backlog) this.#deliver(m);
    return stream;
  }

  /**
   * MQTT 5 re-authentication on the open connection: AUTH 0x19 with the connection's Authentication Method
   * [MQTT-4.12.1-1] and `data` (default: `authenticationData`), then the same exchange as at connect, onAuth
   * answering each AUTH 0x18. Resolves with the properties of the broker's AUTH 0x00 (its final Authentication
   * Data, if any). Rejects with ServerDisconnectError when the broker refuses (DISCONNECT [MQTT-4.12.1-2]), with
   * AuthHandlerError when onAuth fails (the client then disconnects with 0x83), or when the connection closes.
   * Messages keep flowing meanwhile; a refusal ends the connection and the client reconnects as after any loss.
   */
  reauthenticate(data?: Uint8Array): Promise<Properties | undefined> {
    const method = this.#authMethod;
    if (method === undefined) {
      // [MQTT-4.12.0-7] no AUTH from a client whose CONNECT had no Authentication Method.
      return Promise.reject(new ClientUsageError('MQTT_ERR_NO_AUTH_METHOD', ReasonCode.ProtocolError, 're-authentication needs an authenticationMethod', 'MQTT-4.12.0-7'));
    }
    if (this.#reauth !== undefined) {
      return Promise.reject(new ClientUsageError('MQTT_ERR_REAUTH_IN_PROGRESS', ReasonCode.ProtocolError, 'a re-authentication is already under way'));
    }
    const conn = this.#conn;
    if (conn === undefined || this.#state !== 'connected') return Promise.reject(new ConnectionClosedError('not connected'));
    const authData = data === undefined ? this.#authData : toBuffer(data);
    return new Promise((resolve, reject) => {
      this.#reauth = { conn, resolve, reject };
      // [MQTT-4.12.1-1] Reason Code 0x19 and the method the connection was authenticated with.
      this.#sendOn(conn, this.#authPacket(ReasonCode.ReAuthenticate, method, authData));
    });
  }

  #authPacket(reasonCode: number, method: string, data: Buffer | undefined): AuthPacket {
    const properties: Properties = { authenticationMethod: method };
    if (data !== undefined) properties.authenticationData = data;
    return { type: 'auth', reasonCode, properties };
  }

  /** Rejects what waits for an answer on `conn`: the connect attempt's CONNACK and a reauthenticate(). */
  #failWaiters(conn: Conn, error: Error): void {
    if (conn.connack !== undefined) {
      conn.connack.reject(error);
      conn.connack = undefined;
    }
    this.#failReauth(conn, error);
  }

  /** Settles a pending reauthenticate() on `conn` with an error. */
  #failReauth(conn: Conn | undefined, error: Error): void {
    const reauth = this.#reauth;
    if (reauth === undefined || (conn !== undefined && reauth.conn !== conn)) return;
    this.#reauth = undefined;
    reauth.reject(error);
  }

  /**
   * Closes cleanly: DISCONNECT, then the connection. Operations still pending reject with
   * MQTT_ERR_CONNECTION_CLOSED (messages in a store stay there for the next start). Closes the store.
   */
  end(options: { reasonCode?: number; properties?: Properties } = {}): Promise<void> {
    this.#endPromise ??= this.#end(options);
    return this.#endPromise;
  }

  // ---------------------------------------------------------------- connection lifecycle

  async #start(): Promise<void> {
    if (this.#store !== undefined) {
      for (const m of await this.#store.load()) this.#restore(m);
    }
    try {
      await this.#open();
    } catch (err) {
      this.#state = 'closed';
      await this.#store?.close();
      throw err;
    }
  }

  #restore(m: StoredMessage): void {
    this.#ids.reserve(m.packetId);
    const flow: Flow = {
      kind: 'flow',
      packetId: m.packetId,
      packet: {
        type: 'publish',
        topic: m.topic,
        payload: toBuffer(m.payload),
        qos: m.qos,
        retain: m.retain,
        dup: false,
        packetId: m.packetId,
        ...(m.properties === undefined ? {} : { properties: m.properties }),
      },
      state: m.state,
      // The earlier process may have sent it: a resend must say so.
      sent: true,
      onWire: false,
      releasing: false,
      restored: true,
      resolve: undefined,
      reject: undefined,
    };
    this.#flows.set(m.packetId, flow);
  }

  /** One connection attempt: transport, CONNECT, CONNACK. Resolves when the session is usable. */
  async #open(): Promise<void> {
    const v = this.protocolVersion;
    const conn: Conn = {
      transport: undefined,
      decoder: new Decoder({
        protocolVersion: v,
        maximumPacketSize: this.#options.properties?.maximumPacketSize ?? MAX_PACKET_SIZE,
      }),
      out: [],
      outBytes: 0,
      callbacks: [],
      flushScheduled: false,
      closed: false,
      connack: undefined,
      lastReceived: this.#clock.now(),
      closeWaiters: [],
      authStep: undefined,
    };
    const connackPromise = new Promise<ConnackPacket>((resolve, reject) => {
      conn.connack = { resolve, reject };
    });
    this.#opening = conn;
    const timeoutMs = this.#options.connectTimeout ?? 30_000;
    const timer = this.#clock.setTimeout(() => {
      conn.connack?.reject(new MqttError('MQTT_ERR_CONNECT_TIMEOUT', ReasonCode.UnspecifiedError, `no CONNACK within ${timeoutMs} ms`));
      this.#destroyConn(conn);
    }, timeoutMs);
    timer.unref?.();
    try {
      conn.transport = await openTransport(
        this.url,
        {
          ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
          ...(this.#options.wsHeaders === undefined ? {} : { wsHeaders: this.#options.wsHeaders }),
        },
        {
          data: (chunk) => {
            this.#onData(conn, chunk);
          },
          close: (error) => {
            this.#onClose(conn, error);
          },
          drain: () => {},
        },
      );
      if (conn.closed) {
        // The connect timer fired while the transport was opening.
        conn.transport.destroy();
        await connackPromise;
      }
      this.#sendOn(conn, this.#connectPacket());
      await connackPromise;
    } catch (err) {
      this.#destroyConn(conn);
      throw err;
    } finally {
      this.#clock.clearTimeout(timer);
      if (this.#opening === conn) this.#opening = undefined;
    }
  }

  #connectPacket(): ConnectPacket {
    const o = this.#options;
    const v = this.protocolVersion;
    let cleanStart = o.cleanStart ?? true;
    // A reconnect resumes the session when it can outlive the connection.
    if (this.#everConnected && (v === 5 ? (o.sessionExpiryInterval ?? 0) > 0 : !cleanStart)) cleanStart = false;
    let properties: Properties | undefined;
    if (v === 5) {
      properties = { ...o.properties };
      if (o.sessionExpiryInterval !== undefined) properties.sessionExpiryInterval = o.sessionExpiryInterval;
      // Every CONNECT, reconnects too, starts the exchange afresh: the broker keeps no authentication state.
      if (this.#authMethod !== undefined) properties.authenticationMethod = this.#authMethod;
      if (this.#authData !== undefined) properties.authenticationData = this.#authData;
      if (Object.keys(properties).length === 0) properties = undefined;
    }
    const will = o.will;
    return {
      type: 'connect',
      protocolName: v === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: v,
      cleanStart,
      keepAlive: this.#keepAlive,
      clientId: this.#clientId,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: toBuffer(o.password) }),
      ...(will === undefined
        ? {}
        : {
            will: {
              topic: will.topic,
              payload: toBuffer(will.payload),
              qos: will.qos ?? 0,
              retain: will.retain ?? false,
              ...(will.properties !== undefined && v === 5 ? { properties: will.properties } : {}),
            },
          }),
      ...(properties === undefined ? {} : { properties }),
    };
  }

  #onConnected(conn: Conn, connack: ConnackPacket): void {
    const p = connack.properties ?? {};
    if (this.protocolVersion === 5) {
      this.#server = {
        receiveMaximum: p.receiveMaximum ?? 65_535,
        maximumPacketSize: p.maximumPacketSize ?? MAX_PACKET_SIZE,
        topicAliasMaximum: this.#options.topicAliases === true ? (p.topicAliasMaximum ?? 0) : 0,
        maximumQoS: p.maximumQoS ?? 2,
        retainAvailable: (p.retainAvailable ?? 1) === 1,
      };
      // The broker assigned a Client Identifier [MQTT-3.2.2-16]: use it from now on.
      if (p.assignedClientIdentifier !== undefined) this.#clientId = p.assignedClientIdentifier;
      // [MQTT-3.2.2-21] the Server Keep Alive replaces ours.
      if (p.serverKeepAlive !== undefined) this.#keepAlive = p.serverKeepAlive;
    }
    // #state turns 'connected' only after the replay below, so nothing is pumped out of order meanwhile.
    this.#conn = conn;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#aliasesOut.clear();
    this.#aliasesIn.clear();
    this.#inflight = 0;

    if (!connack.sessionPresent) {
      // [MQTT-3.2.2-5] no session on the broker: our session state is void. PUBREC already moved
      // ownership of a QoS 2 message to the broker, so those flows are done; unacknowledged PUBLISH
      // go out again as new messages in the new session.
      this.#incomingQos2.clear();
      for (const flow of [...this.#flows.values()]) {
        if (flow.state === 'pubrel') this.#completeFlow(flow, flow.pubrecCode ?? 0, undefined);
        else flow.sent = false;
      }
      for (const [filter, { subscription, properties }] of this.#subscriptions) {
        const packetId = this.#ids.allocate();
        if (packetId === undefined) break;
        const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions: [subscription], ...(properties === undefined ? {} : { properties }) };
        this.#requests.set(packetId, {
          packet,
          resolve: (codes) => {
            if ((codes[0] ?? 0x80) >= 0x80) this.emit('error', new ReasonCodeError(`resubscribe to ${filter}`, codes[0] ?? 0x80));
          },
          reject: () => {},
        });
      }
    }
    // Pending SUBSCRIBE/UNSUBSCRIBE go out again with their packet ids.
    for (const request of this.#requests.values()) this.#sendOn(conn, request.packet);
    // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP=1) and PUBREL in their original order, then the queue.
    const queued = this.#waiting.slice(this.#head).filter((item) => item.kind === 'qos0' || !this.#flows.has(item.packetId) || !item.onWire);
    const seen = new Set<Flow>();
    const next: Array<Flow | Qos0Item> = [];
    for (const flow of this.#flows.values()) {
      if (flow.releasing) continue; // its PUBREL goes out when the store confirms
      next.push(flow);
      seen.add(flow);
    }
    for (const item of queued) if (item.kind === 'qos0' || !seen.has(item)) next.push(item);
    this.#waiting = next;
    this.#head = 0;
    this.#state = 'connected';
    this.#startKeepAlive(conn);
    this.emit('connect', connack);
    this.#pump();
  }

  #onClose(conn: Conn, error: Error | undefined): void {
    if (conn.closed && conn !== this.#conn) return;
    conn.closed = true;
    for (const resolve of conn.closeWaiters.splice(0)) resolve();
    if (conn.connack !== undefined) {
      conn.connack.reject(error ?? new ConnectionClosedError('connection closed before CONNACK'));
      conn.connack = undefined;
    }
    if (conn !== this.#conn) return;
    this.#conn = undefined;
    this.#failReauth(conn, error ?? new ConnectionClosedError('connection closed during re-authentication'));
    this.#stopKeepAlive();
    for (const flow of this.#flows.values()) flow.onWire = false;
    this.#inflight = 0;
    const unsent = conn.callbacks;
    conn.callbacks = [];
    for (const cb of unsent) cb(new ConnectionClosedError());
    if (this.#state === 'ending') return;
    this.emit('offline', error);
    if (this.#takenOver !== undefined) {
      void this.#finish(this.#takenOver);
      return;
    }
    if (this.#backoff === undefined) {
      void this.#finish(new ConnectionClosedError(error === undefined ? 'connection closed' : `connection lost: ${error.message}`));
      return;
    }
    this.#state = 'reconnecting';
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = backoffDelay(this.#attempt, this.#backoff);
    this.#attempt++;
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== 'reconnecting') return;
      this.emit('reconnect', this.#attempt);
      this.#open().then(
        () => {},
        (err: unknown) => {
          if (this.#state !== 'reconnecting') return;
          this.#log.debug({ err }, 'reconnect failed');
          if (err instanceof ConnectionRefusedError || err instanceof AuthHandlerError) this.#reportError(err);
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }

  #destroyConn(conn: Conn): void {
    if (conn.closed) return;
    conn.transport?.destroy();
    if (conn.transport === undefined) {
      conn.closed = true;
    }
  }

  async #end(options: { reasonCode?: number; properties?: Properties }): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'ending';
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const conn = this.#conn;
    if (conn !== undefined && !conn.closed) {
      const closed = new Promise<void>((resolve) => {
        conn.closeWaiters.push(resolve);
      });
      // A broker that never closes its side does not keep end() waiting.
      const guard = this.#clock.setTimeout(() => conn.transport?.destroy(), 2000);
      guard.unref?.();
      const disconnect: DisconnectPacket = { type: 'disconnect' };
      if (this.protocolVersion === 5) {
        disconnect.reasonCode = options.reasonCode ?? ReasonCode.NormalDisconnection;
        if (options.properties !== undefined) disconnect.properties = options.properties;
      }
      // [MQTT-3.14.4-1] DISCONNECT is the last packet; then close the connection.
      this.#sendOn(conn, disconnect, () => conn.transport?.end());
      await closed;
      this.#clock.clearTimeout(guard);
    }
    await this.#finish(new ConnectionClosedError('client ended'));
  }

  async #finish(reason: Error): Promise<void> {
    this.#state = 'closed';
    // A reconnect under way must not leave its socket behind.
    if (this.#opening !== undefined) {
      this.#opening.connack?.reject(reason);
      this.#opening.connack = undefined;
      this.#destroyConn(this.#opening);
    }
    this.#stopKeepAlive();
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    for (const flow of this.#flows.values()) {
      this.#ids.release(flow.packetId);
      flow.reject?.(this.#store === undefined ? reason : new ConnectionClosedError(`${reason.message}; message ${flow.packetId} stays in the store`));
    }
    this.#flows.clear();
    for (const item of this.#waiting.slice(this.#head)) if (item.kind === 'qos0') item.reject(reason);
    this.#waiting = [];
    this.#head = 0;
    for (const request of this.#requests.values()) request.reject(reason);
    this.#requests.clear();
    this.#failReauth(undefined, reason);
    for (const stream of this.#streams) stream.finish();
    this.#streams.clear();
    try {
      await this.#storeChain;
      await this.#store?.close();
    } catch (err) {
      this.#log.error({ err }, 'closing the store failed');
    }
    this.emit('close');
  }

  // ---------------------------------------------------------------- keep alive

  #startKeepAlive(conn: Conn): void {
    this.#stopKeepAlive();
    if (this.#keepAlive === 0) return;
    this.#lastSend = this.#clock.now();
    this.#armKeepAlive(conn, this.#keepAlive * 1000);
  }

  #armKeepAlive(conn: Conn, ms: number): void {
    this.#keepAliveTimer = this.#clock.setTimeout(() => {
      this.#keepAliveTimer = undefined;
      this.#keepAliveCheck(conn);
    }, Math.max(1, ms));
    this.#keepAliveTimer.unref?.();
  }

  /**
   * [MQTT-3.1.2-23] send something at least every Keep Alive seconds: PINGREQ when idle. Also ping when
   * nothing was received for that long, so a publish-only client still notices a dead connection.
   */
  #keepAliveCheck(conn: Conn): void {
    if (conn !== this.#conn || conn.closed) return;
    const period = this.#keepAlive * 1000;
    const now = this.#clock.now();
    const idle = Math.max(now - this.#lastSend, now - conn.lastReceived);
    if (idle >= period * 0.95) {
      if (this.#pingTimer === undefined) {
        this.#sendOn(conn, { type: 'pingreq' });
        // No PINGRESP within half a period (at least 1 s): the connection is dead.
        this.#pingTimer = this.#clock.setTimeout(() => {
          this.#pingTimer = undefined;
          if (conn !== this.#conn) return;
          this.#log.warn({}, 'no PINGRESP: closing the connection');
          conn.transport?.destroy();
        }, Math.max(1000, period / 2));
        this.#pingTimer.unref?.();
      }
      this.#armKeepAlive(conn, period);
    } else {
      this.#armKeepAlive(conn, period - idle);
    }
  }

  #stopKeepAlive(): void {
    if (this.#keepAliveTimer !== undefined) this.#clock.clearTimeout(this.#keepAliveTimer);
    if (this.#pingTimer !== undefined) this.#clock.clearTimeout(this.#pingTimer);
    this.#keepAliveTimer = undefined;
    this.#pingTimer = undefined;
  }

  // ---------------------------------------------------------------- sending

  #sendOn(conn: Conn, packet: Packet, done?: (error?: Error | null) => void): void {
    this.#writeOn(conn, encode(packet, this.protocolVersion), done);
  }

  /** Batches everything written in one tick into a single transport write. */
  #writeOn(conn: Conn, bytes: Buffer, done?: (error?: Error | null) => void): void {
    if (conn.closed || conn.transport === undefined) {
      done?.(new ConnectionClosedError());
      return;
    }
    conn.out.push(bytes);
    conn.outBytes += bytes.length;
    if (done !== undefined) conn.callbacks.push(done);
    if (!conn.flushScheduled) {
      conn.flushScheduled = true;
      queueMicrotask(() => {
        this.#flush(conn);
      });
    }
  }

  #flush(conn: Conn): void {
    conn.flushScheduled = false;
    if (conn.out.length === 0 || conn.transport === undefined || conn.closed) return;
    const chunk = conn.out.length === 1 ? (conn.out[0] as Buffer) : Buffer.concat(conn.out, conn.outBytes);
    const callbacks = conn.callbacks;
    conn.out = [];
    conn.outBytes = 0;
    conn.callbacks = [];
    this.#lastSend = this.#clock.now();
    if (callbacks.length === 0) {
      conn.transport.write(chunk);
      return;
    }
    // Callers learn "written" when the transport took the bytes without backpressure; otherwise
    // when that chunk was flushed (the drain point), or failed.
    let settled = false;
    const accepted = conn.transport.write(chunk, (error) => {
      if (settled) return;
      settled = true;
      for (const cb of callbacks) cb(error);
    });
    if (accepted && !settled) {
      settled = true;
      for (const cb of callbacks) cb();
    }
  }

  /** Sends queued messages in order while the broker's Receive Maximum allows. */
  #pump(): void {
    const conn = this.#conn;
    if (conn === undefined || this.#state !== 'connected') return;
    const waiting = this.#waiting;
    while (this.#head < waiting.length) {
      const item = waiting[this.#head] as Flow | Qos0Item;
      if (item.kind === 'qos0') {
        this.#head++;
        const bytes = this.#encodePublish(item.packet);
        if (bytes === undefined) {
          item.reject(this.#tooLarge());
          continue;
        }
        this.#writeOn(conn, bytes, (error) => {
          if (error) item.reject(error);
          else item.resolve(QOS0_RESULT);
        });
        continue;
      }
      if (this.#flows.get(item.packetId) !== item || item.onWire) {
        this.#head++;
        continue;
      }
      // [MQTT-3.3.4-7] never more unacknowledged QoS 1/2 PUBLISH than the broker's Receive Maximum.
      if (this.#inflight >= this.#server.receiveMaximum) break;
      this.#head++;
      if (item.state === 'pubrel') {
        this.#sendOn(conn, { type: 'pubrel', packetId: item.packetId });
      } else {
        // [MQTT-3.3.1-1] DUP=1 when this PUBLISH may have been sent before.
        const bytes = this.#encodePublish(item.sent ? { ...item.packet, dup: true } : item.packet);
        if (bytes === undefined) {
          this.#completeFlow(item, -1, undefined, this.#tooLarge());
          continue;
        }
        this.#writeOn(conn, bytes);
      }
      item.sent = true;
      item.onWire = true;
      this.#inflight++;
    }
    if (this.#head === waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > waiting.length) {
      this.#waiting = waiting.slice(this.#head);
      this.#head = 0;
    }
  }

  #tooLarge(): Error {
    // [MQTT-3.2.2-15] never send a packet above the broker's Maximum Packet Size.
    return new PacketTooLargeError(`PUBLISH exceeds the broker's Maximum Packet Size of ${this.#server.maximumPacketSize} bytes`, 'MQTT-3.2.2-15');
  }

  /** Encodes a PUBLISH for the wire (topic alias applied); undefined when it is too large for the broker. */
  #encodePublish(packet: PublishPacket): Buffer | undefined {
    let wire = packet;
    const max = this.#server.topicAliasMaximum;
    if (max > 0) {
      const alias = this.#aliasesOut.get(packet.topic);
      if (alias !== undefined) {
        wire = { ...packet, topic: '', properties: { ...packet.properties, topicAlias: alias } };
      } else if (this.#aliasesOut.size < max) {
        // [MQTT-3.3.2-9] aliases stay within the broker's Topic Alias Maximum; [MQTT-3.3.2-8] and start at 1.
        const next = this.#aliasesOut.size + 1;
        this.#aliasesOut.set(packet.topic, next);
        wire = { ...packet, properties: { ...packet.properties, topicAlias: next } };
      }
    }
    const bytes = encode(wire, this.protocolVersion);
    if (bytes.length > this.#server.maximumPacketSize) {
      if (wire !== packet && wire.topic !== '') this.#aliasesOut.delete(packet.topic);
      return undefined;
    }
    return bytes;
  }

  #request(build: (packetId: number) => SubscribePacket | UnsubscribePacket): Promise<number[]> {
    if (this.#state === 'ending' || this.#state === 'closed') return Promise.reject(new ConnectionClosedError('client ended'));
    const packetId = this.#ids.allocate();
    if (packetId === undefined) {
      return Promise.reject(new ClientUsageError('MQTT_ERR_PACKET_IDS_EXHAUSTED', ReasonCode.QuotaExceeded, 'all 65535 packet identifiers are in use'));
    }
    const packet = build(packetId);
    return new Promise((resolve, reject) => {
      this.#requests.set(packetId, { packet, resolve, reject });
      if (this.#conn !== undefined && this.#state === 'connected') this.#sendOn(this.#conn, packet);
    });
  }

  // ---------------------------------------------------------------- receiving

  #onData(conn: Conn, chunk: Uint8Array): void {
    if (conn.closed) return;
    conn.lastReceived = this.#clock.now();
    conn.decoder.push(toBuffer(chunk));
    for (;;) {
      const packet = conn.decoder.read();
      if (packet === undefined) return;
      if (packet instanceof MqttProtocolError) {
        this.#violation(conn, packet.reasonCode, packet);
        return;
      }
      this.#onPacket(conn, packet);
      if (conn.closed) return;
    }
  }

  /**
   * The broker broke the protocol: v5 sends DISCONNECT with the reason code first [MQTT-4.13.1-1],
   * then the connection closes (and the client reconnects).
   */
  #violation(conn: Conn, reasonCode: number, error: Error): void {
    this.#log.warn({ err: error }, 'protocol violation by the broker');
    this.emit('error', error);
    conn.authStep = undefined;
    // DISCONNECT is queued before the connect attempt learns of the failure: that attempt destroys the transport.
    if (this.protocolVersion === 5 && conn.transport !== undefined) {
      this.#sendOn(conn, { type: 'disconnect', reasonCode }, () => conn.transport?.destroy());
    } else {
      conn.transport?.destroy();
    }
    this.#failWaiters(conn, error);
  }

  /**
   * An AUTH from the broker: during connect it must be a challenge (0x18) [MQTT-4.12.0-2]; afterwards only
   * within a re-authentication we started, a challenge or the final 0x00. Always with our method.
   */
  #onAuth(conn: Conn, packet: AuthPacket): void {
    const method = this.#authMethod;
    const code = packet.reasonCode;
    const fail = (message: string, rule?: string): void => {
      this.#violation(conn, ReasonCode.ProtocolError, new MqttError('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, message, rule));
    };
    if (method === undefined) {
      fail('AUTH from the broker without enhanced authentication', 'MQTT-4.12.0-6');
      return;
    }
    if (packet.properties?.authenticationMethod !== method) {
      fail('AUTH with a different authentication method', 'MQTT-4.12.0-5');
      return;
    }
    const hex = `0x${code.toString(16).padStart(2, '0')}`;
    if (conn.connack !== undefined) {
      if (code !== ReasonCode.ContinueAuthentication) {
        fail(`AUTH ${hex} before CONNACK`, 'MQTT-4.12.0-2');
        return;
      }
    } else if (this.#reauth?.conn !== conn || code === ReasonCode.ReAuthenticate) {
      // Only the client starts a re-authentication (0x19 is the client's code).
      fail(`AUTH ${hex} outside a re-authentication the client started`);
      return;
    }
    if (code === ReasonCode.Success) {
      const reauth = this.#reauth as Reauth;
      this.#reauth = undefined;
      conn.authStep = undefined;
      reauth.resolve(packet.properties);
      return;
    }
    this.#answerChallenge(conn, method, packet);
  }

  /** Asks onAuth for the next Authentication Data and sends it in AUTH 0x18 [MQTT-4.12.0-3]. */
  #answerChallenge(conn: Conn, method: string, packet: AuthPacket): void {
    const step = {};
    conn.authStep = step;
    const handler = this.#options.onAuth;
    let answer: Promise<Uint8Array>;
    try {
      if (handler === undefined) throw new Error('the broker sent AUTH 0x18 and no onAuth handler is set');
      answer = Promise.resolve(handler(method, packet.properties?.authenticationData, packet.reasonCode));
    } catch (err) {
      answer = Promise.reject(err);
    }
    const current = (): boolean => conn.authStep === step && !conn.closed;
    answer.then(
      (data: unknown) => {
        if (!current()) return; // the exchange ended meanwhile (CONNACK, close, timeout)
        conn.authStep = undefined;
        if (!(data instanceof Uint8Array)) {
          this.#authHandlerFailed(conn, new TypeError('onAuth must return a Buffer or Uint8Array'));
          return;
        }
        // [MQTT-4.12.0-3] answer with 0x18; [MQTT-4.12.0-5] and the same method.
        this.#sendOn(conn, this.#authPacket(ReasonCode.ContinueAuthentication, method, toBuffer(data)));
      },
      (err: unknown) => {
        if (!current()) return;
        conn.authStep = undefined;
        this.#authHandlerFailed(conn, err);
      },
    );
  }

  /**
   * onAuth failed: the client cannot go on, so it says so with DISCONNECT 0x83 (section 4.13) and closes. The
   * error goes to the caller waiting: connect(), reauthenticate(), or the 'error' event for a reconnect.
   */
  #authHandlerFailed(conn: Conn, cause: unknown): void {
    const error = new AuthHandlerError(cause);
    this.#log.warn({ err: cause }, 'onAuth failed: disconnecting');
    this.#sendOn(conn, { type: 'disconnect', reasonCode: ReasonCode.ImplementationSpecificError }, () => conn.transport?.destroy());
    this.#failWaiters(conn, error);
  }

  #onPacket(conn: Conn, packet: Packet): void {
    if (conn.connack !== undefined) {
      // Before CONNACK only CONNACK may arrive [MQTT-3.2.0-1] (v5 also AUTH/DISCONNECT).
      const waiter = conn.connack;
      if (packet.type === 'auth') {
        this.#onAuth(conn, packet);
        return;
      }
      if (packet.type === 'connack') {
        if (this.protocolVersion === 5 && packet.reasonCode === 0 && packet.properties?.authenticationMethod !== this.#authMethod) {
          // [MQTT-4.12.0-5] a successful CONNACK carries the CONNECT's method; [MQTT-4.12.0-6] and none without one.
          const rule = this.#authMethod === undefined ? 'MQTT-4.12.0-6' : 'MQTT-4.12.0-5';
          this.#violation(conn, ReasonCode.ProtocolError, new MqttError('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, 'CONNACK with a different authentication method', rule));
          return;
        }
        conn.connack = undefined;
        conn.authStep = undefined;
        if (packet.reasonCode !== 0) {
          waiter.reject(new ConnectionRefusedError(packet.reasonCode, this.protocolVersion, packet.properties?.reasonString));
          conn.transport?.destroy();
        } else if (this.#state === 'ending' || this.#state === 'closed') {
          // end() ran while this reconnect was under way.
          waiter.reject(new ConnectionClosedError('client ended'));
          conn.transport?.destroy();
        } else {
          // Synchronously, before the packets that follow CONNACK in the same chunk are handled.
          this.#onConnected(conn, packet);
          waiter.resolve(packet);
        }
        return;
      }
      if (packet.type === 'disconnect') {
        conn.connack = undefined;
        waiter.reject(new ServerDisconnectError(packet.reasonCode ?? 0, packet.properties?.reasonString));
        conn.transport?.destroy();
        return;
      }
      this.#violation(conn, ReasonCode.ProtocolError, new MqttError('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, `${packet.type} before CONNACK`, 'MQTT-3.2.0-1'));
      return;
    }
    switch (packet.type) {
      case 'publish':
        this.#onPublish(conn, packet);
        return;
      case 'puback': {
        const flow = this.#flows.get(packet.packetId);
        if (flow === undefined || flow.packet.qos !== 1 || !flow.onWire) return; // stale or unknown: nothing to do
        this.#completeFlow(flow, packet.reasonCode ?? 0, packet.properties);
        return;
      }
      case 'pubrec':
        this.#onPubrec(conn, packet.packetId, packet.reasonCode ?? 0, packet.properties);
        return;
      case 'pubrel': {
        // [MQTT-4.3.3-11] release the id and answer PUBCOMP (also for an id we no longer know).
        const known = this.#incomingQos2.delete(packet.packetId);
        this.#sendOn(conn, this.protocolVersion === 5 && !known
          ? { type: 'pubcomp', packetId: packet.packetId, reasonCode: ReasonCode.PacketIdentifierNotFound }
          : { type: 'pubcomp', packetId: packet.packetId });
        return;
      }
      case 'pubcomp': {
        const flow = this.#flows.get(packet.packetId);
        if (flow === undefined || flow.state !== 'pubrel' || !flow.onWire) return;
        // The successful PUBREC already made the broker the owner; a PUBCOMP 0x92 (id not found) only
        // means an earlier PUBCOMP was lost, so the flow completes either way.
        const code = packet.reasonCode ?? 0;
        this.#completeFlow(flow, code < 0x80 ? code : (flow.pubrecCode ?? 0), packet.properties);
        return;
      }
      case 'suback':
      case 'unsuback':
        this.#onAck(packet);
        return;
      case 'pingresp':
        if (this.#pingTimer !== undefined) this.#clock.clearTimeout(this.#pingTimer);
        this.#pingTimer = undefined;
        return;
      case 'disconnect': {
        // The broker is closing: say why, then reconnect as after any loss — except when another
        // connection took this session over: reconnecting would take it back, and so on forever.
        const error = new ServerDisconnectError(packet.reasonCode ?? 0, packet.properties?.reasonString);
        if (packet.reasonCode === ReasonCode.SessionTakenOver) this.#takenOver = error;
        // [MQTT-4.12.1-2] a refused re-authentication ends with DISCONNECT: that is its answer.
        this.#failReauth(conn, error);
        this.emit('disconnect', packet);
        this.emit('error', error);
        conn.transport?.destroy();
        return;
      }
      case 'auth':
        this.#onAuth(conn, packet);
        return;
      case 'connack':
      case 'connect':
      case 'subscribe':
      case 'unsubscribe':
      case 'pingreq':
        // Packets a server never sends to a client.
        this.#violation(conn, ReasonCode.ProtocolError, new MqttError('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, `unexpected ${packet.type} from the broker`));
        return;
      default: {
        const unreachable: never = packet;
        void unreachable;
      }
    }
  }

  #onPublish(conn: Conn, packet: PublishPacket): void {
    let topic = packet.topic;
    const alias = packet.properties?.topicAlias;
    if (this.protocolVersion === 5 && alias !== undefined) {
      // [MQTT-3.3.2-10] an alias must be within the Topic Alias Maximum we announced.
      const max = this.#options.properties?.topicAliasMaximum ?? 0;
      if (alias === 0 || alias > max) {
        this.#violation(conn, ReasonCode.TopicAliasInvalid, new MqttError('MQTT_ERR_TOPIC_ALIAS_INVALID', ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range`, 'MQTT-3.3.2-10'));
        return;
      }
      if (topic.length > 0) {
        this.#aliasesIn.set(alias, topic);
      } else {
        const known = this.#aliasesIn.get(alias);
        if (known === undefined) {
          this.#violation(conn, ReasonCode.ProtocolError, new MqttError('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, `unknown topic alias ${alias}`, 'MQTT-3.3.4-2'));
          return;
        }
        topic = known;
      }
    }
    const message: Message = {
      topic,
      payload: packet.payload,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      ...(packet.properties === undefined ? {} : { properties: packet.properties }),
    };
    const packetId = packet.packetId ?? 0;
    if (packet.qos === 1) {
      this.#deliver(message);
      // [MQTT-4.3.2-4] acknowledge with PUBACK after taking ownership.
      this.#sendOn(conn, { type: 'puback', packetId });
    } else if (packet.qos === 2) {
      if (!this.#incomingQos2.has(packetId)) {
        const receiveMaximum = this.#options.properties?.receiveMaximum ?? 65_535;
        if (this.protocolVersion === 5 && this.#incomingQos2.size >= receiveMaximum) {
          // [MQTT-3.3.4-9] the broker sent more than our Receive Maximum.
          this.#violation(conn, ReasonCode.ReceiveMaximumExceeded, new MqttError('MQTT_ERR_RECEIVE_MAXIMUM_EXCEEDED', ReasonCode.ReceiveMaximumExceeded, 'receive maximum exceeded', 'MQTT-3.3.4-9'));
          return;
        }
        // Deliver once; a DUP re-send of the same id before PUBREL is not delivered again [MQTT-4.3.3-10].
        this.#incomingQos2.add(packetId);
        this.#deliver(message);
      }
      this.#sendOn(conn, { type: 'pubrec', packetId });
    } else {
      this.#deliver(message);
    }
  }

  #deliver(message: Message): void {
    if (this.#streams.size === 0 && this.listenerCount('message') === 0) {
      // Nobody listens yet (a kept session delivers right after CONNACK, before connect() returns):
      // keep the newest messages for the first consumer.
      this.#backlog.push(message);
      if (this.#backlog.length > (this.#options.backlogLimit ?? 1000)) this.#backlog.shift();
      return;
    }
    this.emit('message', message);
    for (const stream of this.#streams) stream.push(message);
  }

  override on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): this {
    super.on(event, listener);
    if (event === 'message' && this.#backlog.length > 0) {
      const backlog = this.#backlog.splice(0);
      for (const m of backlog) this.#deliver(m);
    }
    return this;
  }

  #onPubrec(conn: Conn, packetId: number, reasonCode: number, properties: Properties | undefined): void {
    const flow = this.#flows.get(packetId);
    if (flow === undefined || flow.packet.qos !== 2) {
      // Unknown id: v5 answers PUBREL 0x92 so the broker can drop its state; 3.1.1 just releases.
      this.#sendOn(conn, this.protocolVersion === 5 ? { type: 'pubrel', packetId, reasonCode: ReasonCode.PacketIdentifierNotFound } : { type: 'pubrel', packetId });
      return;
    }
    if (!flow.onWire) return;
    if (flow.state === 'pubrel') {
      this.#sendOn(conn, { type: 'pubrel', packetId });
      return;
    }
    if (reasonCode >= 0x80) {
      // A PUBREC >= 0x80 ends the flow: no PUBREL, the id is free again [MQTT-4.3.3-4].
      this.#completeFlow(flow, reasonCode, properties);
      return;
    }
    flow.pubrecCode = reasonCode;
    const store = this.#store;
    const release = (): void => {
      flow.state = 'pubrel';
      flow.releasing = false;
      // [MQTT-4.3.3-4] answer a successful PUBREC with PUBREL.
      const current = this.#conn;
      if (current !== undefined && flow.onWire && this.#flows.get(packetId) === flow) this.#sendOn(current, { type: 'pubrel', packetId });
      else if (current !== undefined && this.#flows.get(packetId) === flow && !flow.onWire) {
        // The connection changed while persisting: send it with the other resends.
        this.#waiting.push(flow);
        this.#pump();
      }
    };
    if (store === undefined) {
      release();
      return;
    }
    // Persist 'pubrel' before sending PUBREL, or a restart could re-send a PUBLISH the broker already released.
    if (flow.releasing) return;
    flow.releasing = true;
    const released = store.release(packetId).catch((err: unknown) => {
      this.#reportError(err);
    });
    this.#chainStore(async () => {
      await released;
      if (this.#flows.get(packetId) === flow) release();
    });
  }

  #completeFlow(flow: Flow, reasonCode: number, properties: Properties | undefined, error?: Error): void {
    this.#flows.delete(flow.packetId);
    this.#ids.release(flow.packetId);
    if (flow.onWire) {
      flow.onWire = false;
      this.#inflight--;
    }
    const store = this.#store;
    if (store !== undefined) {
      const deleted = store.delete(flow.packetId).catch((err: unknown) => {
        this.#reportError(err);
      });
      this.#chainStore(() => deleted);
    }
    const failure = error ?? (reasonCode >= 0x80 ? new ReasonCodeError('PUBLISH', reasonCode, properties?.reasonString) : undefined);
    if (failure !== undefined) {
      flow.reject?.(failure);
      if (flow.restored) this.emit('error', failure);
    } else {
      flow.resolve?.({ packetId: flow.packetId, reasonCode, ...(properties === undefined ? {} : { properties }) });
      if (this.listenerCount('delivered') > 0) {
        this.emit('delivered', { packetId: flow.packetId, topic: flow.packet.topic, qos: flow.packet.qos as 1 | 2, reasonCode, restored: flow.restored });
      }
    }
    this.#pump();
  }

  #onAck(packet: SubackPacket | UnsubackPacket): void {
    const request = this.#requests.get(packet.packetId);
    if (request === undefined || (packet.type === 'suback') !== (request.packet.type === 'subscribe')) return;
    this.#requests.delete(packet.packetId);
    this.#ids.release(packet.packetId);
    const sent = request.packet;
    if (sent.type === 'subscribe') {
      sent.subscriptions.forEach((s, i) => {
        const code = packet.reasonCodes[i] ?? 0x80;
        if (code < 0x80) this.#subscriptions.set(s.topicFilter, { subscription: { ...s }, properties: sent.properties });
      });
    } else {
      for (const filter of sent.topicFilters) this.#subscriptions.delete(filter);
    }
    request.resolve(packet.reasonCodes);
  }
}

function toStored(flow: Flow): StoredMessage {
  return {
    packetId: flow.packetId,
    state: flow.state,
    topic: flow.packet.topic,
    payload: flow.packet.payload,
    qos: flow.packet.qos as 1 | 2,
    retain: flow.packet.retain,
    ...(flow.packet.properties === undefined ? {} : { properties: flow.packet.properties }),
  };
}

/** Connects and resolves with a ready client once the broker accepted the connection (CONNACK success). */
export function connect(url: string | URL, options: ConnectOptions = {}): Promise<MqttClient> {
  return MqttClient.open(url, options);
}

export type { QoS };
