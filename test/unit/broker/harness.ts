/** Test harness for the sans-I/O channel: a fake clock, a core with a memory store, clients as packet queues. */
import type { Packet, PublishPacket } from '../../../src/protocol/index.js';
import type { Clock, TimerHandle } from '../../../src/shared/clock.js';
import { silentLogger, type Logger } from '../../../src/shared/logger.js';
import { allowAllAuthenticator, allowAllAuthorizer, type Authorizer, type EnhancedAuthenticator } from '../../../src/broker/auth/auth.js';
import { Channel, type Action } from '../../../src/broker/channel.js';
import { resolveConfig, type MqttLimitsConfig } from '../../../src/broker/config.js';
import { BrokerCore } from '../../../src/broker/core.js';
import { MemoryStore } from '../../../src/broker/persistence/memory-store.js';
import type { Store } from '../../../src/broker/persistence/store.js';
import { MemoryRetainedStore } from '../../../src/broker/router/index.js';
import type { ConnectPacket, Properties, ProtocolVersion, QoS, Will } from '../../../src/protocol/index.js';

interface FakeTimer extends TimerHandle {
  at: number;
  fn: () => void;
  cancelled: boolean;
}

/** Manual clock: timers fire only in advance(). */
export class FakeClock implements Clock {
  #now = 1_000_000;
  #timers: FakeTimer[] = [];
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: FakeTimer = { at: this.#now + ms, fn, cancelled: false, unref: () => t };
    this.#timers.push(t);
    return t;
  }
  clearTimeout(handle: TimerHandle): void {
    (handle as FakeTimer).cancelled = true;
  }
  /** Moves time forward, firing due timers in time order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
  }
}

export interface SetupOptions {
  limits?: Partial<MqttLimitsConfig>;
  store?: Store;
  authorizer?: Authorizer;
  enhancedAuthenticator?: EnhancedAuthenticator;
  logger?: Logger;
}

export function setup(options: SetupOptions = {}): { clock: FakeClock; core: BrokerCore; client: (v?: ProtocolVersion) => TestClient } {
  const clock = new FakeClock();
  const core = new BrokerCore({
    limits: resolveConfig({ mqtt: options.limits ?? {} }).mqtt,
    clock,
    logger: options.logger ?? silentLogger,
    store: options.store ?? new MemoryStore(),
    retained: new MemoryRetainedStore(),
    authenticator: allowAllAuthenticator,
    authorizer: options.authorizer ?? allowAllAuthorizer,
    enhancedAuthenticator: options.enhancedAuthenticator,
  });
  return { clock, core, client: (v: ProtocolVersion = 5) => new TestClient(core, clock, v) };
}

/** One connection: feed packets in, read everything the channel emitted (replies and deliveries) in order. */
export class TestClient {
  readonly channel: Channel;
  readonly actions: Action[] = [];
  readonly version: ProtocolVersion;
  /** What the channel's sink reports as outputHeld: the connection's output waits behind a pending commit. */
  held = false;
  readonly #clock: FakeClock;
  #read = 0;

  constructor(core: BrokerCore, clock: FakeClock, version: ProtocolVersion) {
    this.version = version;
    this.#clock = clock;
    const sink = {
      push: (a: Action): void => {
        this.actions.push(a);
      },
      get outputHeld(): boolean {
        return client.held;
      },
    };
    const client = this as TestClient;
    this.channel = new Channel(core, { listener: 'test' }, sink);
  }

  /** Feeds a packet; an 'authenticate' action is answered with success at once, like the allow-all hook. */
  in(packet: Packet): void {
    this.#take(this.channel.handleIn(packet, this.#clock.now()));
  }

  #take(actions: readonly Action[]): void {
    for (const a of actions) {
      this.actions.push(a);
      if (a.type === 'authenticate') this.#take(this.channel.handleAuthResult({ ok: true }, this.#clock.now()));
    }
  }

  connect(fields: Partial<ConnectPacket> & { clientId?: string } = {}): Packet[] {
    const p: ConnectPacket = {
      type: 'connect',
      protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.version,
      cleanStart: true,
      keepAlive: 0,
      clientId: 'c',
      ...fields,
    };
    this.in(p);
    return this.sent();
  }

  publish(topic: string, payload: string, qos: QoS = 0, extra: Partial<PublishPacket> = {}): Packet[] {
    const p: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...extra };
    if (qos > 0 && p.packetId === undefined) p.packetId = 1;
    this.in(p);
    return this.sent();
  }

  subscribe(filter: string, qos: QoS = 0, opts: { noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: 0 | 1 | 2; properties?: Properties; packetId?: number } = {}): Packet[] {
    const packet: Packet = {
      type: 'subscribe',
      packetId: opts.packetId ?? 1,
      subscriptions: [
        { topicFilter: filter, qos, noLocal: opts.noLocal ?? false, retainAsPublished: opts.retainAsPublished ?? false, retainHandling: opts.retainHandling ?? 0 },
      ],
    };
    if (opts.properties !== undefined) packet.properties = opts.properties;
    this.in(packet);
    return this.sent();
  }

  /** Packets sent since the last call. */
  sent(): Packet[] {
    const out: Packet[] = [];
    for (; this.#read < this.actions.length; this.#read++) {
      const a = this.actions[this.#read] as Action;
      if (a.type === 'send') out.push(a.packet);
    }
    return out;
  }

  /** PUBLISH packets sent since the last call (other packets are discarded). */
  messages(): PublishPacket[] {
    return this.sent().filter((p): p is PublishPacket => p.type === 'publish');
  }

  get closed(): boolean {
    return this.actions.some((a) => a.type === 'close');
  }

  closeAction(): Extract<Action, { type: 'close' }> | undefined {
    return this.actions.find((a): a is Extract<Action, { type: 'close' }> => a.type === 'close');
  }

  /** The network connection drops (socket closed). */
  drop(): void {
    this.channel.handleClosed(this.#clock.now());
  }
}

export function will(topic: string, payload: string, extra: Partial<Will> = {}): Will {
  return { topic, payload: Buffer.from(payload), qos: 0, retain: false, ...extra };
}

/** A store whose writes return `gate` while it is set: stands in for a durable, asynchronous store. */
export class GatedStore implements Store {
  readonly inner = new MemoryStore();
  gate: Promise<void> | undefined;
  release: () => void = () => {};
  #r(): Promise<void> | undefined {
    return this.gate;
  }
  loadSessions(): ReturnType<MemoryStore['loadSessions']> {
    return this.inner.loadSessions();
  }
  putSession(...a: Parameters<Store['putSession']>): Promise<void> | undefined {
    this.inner.putSession(...a);
    return this.#r();
  }
  deleteSession(...a: Parameters<Store['deleteSession']>): Promise<void> | undefined {
    this.inner.deleteSession(...a);
    return this.#r();
  }
  putSubscription(...a: Parameters<Store['putSubscription']>): Promise<void> | undefined {
    this.inner.putSubscription(...a);
    return this.#r();
  }
  deleteSubscription(...a: Parameters<Store['deleteSubscription']>): Promise<void> | undefined {
    this.inner.deleteSubscription(...a);
    return this.#r();
  }
  putWill(...a: Parameters<Store['putWill']>): Promise<void> | undefined {
    this.inner.putWill(...a);
    return this.#r();
  }
  deleteWill(...a: Parameters<Store['deleteWill']>): Promise<void> | undefined {
    this.inner.deleteWill(...a);
    return this.#r();
  }
  enqueue(...a: Parameters<Store['enqueue']>): Promise<void> | undefined {
    this.inner.enqueue(...a);
    return this.#r();
  }
  dequeue(...a: Parameters<Store['dequeue']>): Promise<void> | undefined {
    this.inner.dequeue(...a);
    return this.#r();
  }
  putOutgoing(...a: Parameters<Store['putOutgoing']>): Promise<void> | undefined {
    this.inner.putOutgoing(a[0], a[1]);
    return this.#r();
  }
  deleteOutgoing(...a: Parameters<Store['deleteOutgoing']>): Promise<void> | undefined {
    this.inner.deleteOutgoing(...a);
    return this.#r();
  }
  putIncomingQoS2(...a: Parameters<Store['putIncomingQoS2']>): Promise<void> | undefined {
    this.inner.putIncomingQoS2(...a);
    return this.#r();
  }
  deleteIncomingQoS2(...a: Parameters<Store['deleteIncomingQoS2']>): Promise<void> | undefined {
    this.inner.deleteIncomingQoS2(...a);
    return this.#r();
  }
  close(): void {
    this.inner.close();
  }
}
