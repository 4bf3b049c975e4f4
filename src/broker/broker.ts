/**
 * The broker: wires listeners, connections, the shared core, storage and hooks together; start and graceful
 * shutdown. Everything protocol-related lives in channel.ts and core.ts.
 */
import type { Duplex } from 'node:stream';
import { ReasonCode, type Properties, type QoS } from '../protocol/index.js';
import type { Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { allowAllAuthenticator, allowAllAuthorizer, type Authenticator, type Authorizer, type EnhancedAuthenticator } from './auth/auth.js';
import { resolveConfig, type BrokerConfig, type DeepPartial } from './config.js';
import { Connection } from './connection.js';
import { BrokerCore, type BrokerStats } from './core.js';
import { publishSys } from './observability/sys.js';
import { MemoryStore } from './persistence/memory-store.js';
import type { Store, StoredMessage } from './persistence/store.js';
import { MemoryRetainedStore, type RetainedStore } from './router/index.js';
import type { ConnectionMeta, Listener } from './transport/listener.js';
import { TcpListener } from './transport/tcp.js';

/** Wall-clock time: stored expiry times stay meaningful across restarts. */
const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Everything pluggable; each has a default (memory storage, allow-all auth, silent logs). */
export interface BrokerOptions {
  logger?: Logger;
  clock?: Clock;
  store?: Store;
  retained?: RetainedStore;
  authenticator?: Authenticator;
  authorizer?: Authorizer;
  /** v5 enhanced authentication (AUTH packets); without it a CONNECT with an Authentication Method gets 0x8C. */
  enhancedAuthenticator?: EnhancedAuthenticator;
  /** Listeners built by the caller (TLS, WebSocket) in addition to those in `config.listeners`. */
  listeners?: Listener[];
}

/** A message published by the server itself (`Broker.publish`). */
export interface ServerMessage {
  topic: string;
  payload: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

export class Broker {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  readonly #core: BrokerCore;
  readonly #listeners: Listener[];
  readonly #connections = new Set<Connection>();
  #state: 'idle' | 'starting' | 'running' | 'closing' | 'closed' = 'idle';
  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: BrokerConfig, options: BrokerOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? silentLogger;
    this.#core = new BrokerCore({
      limits: config.mqtt,
      clock: options.clock ?? wallClock,
      logger: this.logger,
      store: options.store ?? new MemoryStore(),
      retained: options.retained ?? new MemoryRetainedStore(),
      authenticator: options.authenticator ?? allowAllAuthenticator,
      authorizer: options.authorizer ?? allowAllAuthorizer,
      enhancedAuthenticator: options.enhancedAuthenticator,
    });
    this.#listeners = [
      ...config.listeners.map((l) => new TcpListener({ host: l.host, port: l.port })),
      ...(options.listeners ?? []),
    ];
  }

  /** Restores stored sessions, binds every listener, starts $SYS. Rejects (and unbinds) when a listener fails. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`broker cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    await this.#core.restore();
    const bound: Listener[] = [];
    const failures: Array<{ listener: Listener; err: NodeJS.ErrnoException }> = [];
    for (const l of this.#listeners) {
      try {
        await l.listen((stream, meta) => this.handleConnection(stream, meta));
        bound.push(l);
        this.logger.info({ listener: l.name }, 'listening');
      } catch (err) {
        failures.push({ listener: l, err: err as NodeJS.ErrnoException });
      }
    }
    for (const f of failures) {
      // An IPv6 loopback on a host without IPv6 is not fatal when something else is listening.
      const optional = bound.length > 0 && (f.err.code === 'EADDRNOTAVAIL' || f.err.code === 'EAFNOSUPPORT');
      if (optional) {
        this.logger.warn({ listener: f.listener.name, err: f.err.message }, 'listener not started');
        continue;
      }
      await Promise.all(bound.map((l) => l.close()));
      this.#state = 'closed';
      throw f.err;
    }
    this.#listeners.splice(0, this.#listeners.length, ...bound);
    const interval = this.config.sys.interval * 1000;
    if (this.config.sys.enabled) publishSys(this.#core, this.#core.clock.now());
    this.#housekeeping = setInterval(() => {
      const now = this.#core.clock.now();
      this.#core.retained.purgeExpired(now);
      if (this.config.sys.enabled) publishSys(this.#core, now);
    }, interval);
    this.#housekeeping.unref();
    this.#state = 'running';
  }

  /** Bound addresses, in listener order. */
  addresses(): Array<{ name: string; host: string; port: number }> {
    return this.#listeners.map((l) => ({ name: l.name, ...l.address() }));
  }

  /** Serves one client over any duplex stream (what listeners call; usable for in-process transports). */
  handleConnection(stream: Duplex, meta: ConnectionMeta): void {
    if (this.#state !== 'running') {
      stream.destroy();
      return;
    }
    const connection = new Connection({
      core: this.#core,
      socket: stream,
      info: meta,
      logger: this.logger,
      onClose: (c) => this.#connections.delete(c),
    });
    this.#connections.add(connection);
  }

  /** Publishes a message as the server (origin ''): routed like a client's, retained when `retain`. */
  publish(m: ServerMessage): void {
    const message: StoredMessage = {
      topic: m.topic,
      payload: typeof m.payload === 'string' ? Buffer.from(m.payload) : m.payload,
      qos: m.qos ?? 0,
      retain: m.retain ?? false,
      origin: '',
    };
    const now = this.#core.clock.now();
    const expiry = m.properties?.messageExpiryInterval;
    if (expiry !== undefined) message.expiresAt = now + expiry * 1000;
    if (m.properties !== undefined) {
      const { messageExpiryInterval: _e, topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = m.properties;
      if (Object.keys(rest).length > 0) message.properties = rest;
    }
    this.#core.publish(message, now);
    this.#core.discardPending();
  }

  /**
   * Server-initiated disconnect of a connected client (admin action): v5 clients get DISCONNECT with
   * `reasonCode` (default 0x98 Administrative action) first; the will is published as for any unrequested close.
   * @returns false when no client with that id is connected.
   */
  disconnectClient(clientId: string, reasonCode: number = ReasonCode.AdministrativeAction): boolean {
    const owner = this.#core.sessions.get(clientId)?.owner;
    if (owner === undefined) return false;
    owner.disconnect(reasonCode, this.#core.clock.now());
    return true;
  }

  get stats(): Readonly<BrokerStats> {
    return this.#core.stats;
  }

  /** Connected clients. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** The shared state (sessions, subscription tree, retained store): for the admin API and tests. */
  get core(): BrokerCore {
    return this.#core;
  }

  /**
   * Graceful shutdown: stop accepting, send v5 clients DISCONNECT 0x8B (Server shutting down), flush, wait up
   * to `graceMs` for sockets to close, destroy the rest, close the store.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'closing';
    if (this.#housekeeping !== undefined) clearInterval(this.#housekeeping);
    // A net.Server reports closed only after its last connection ended: start closing, await it last.
    const listenersClosed = Promise.all(this.#listeners.map((l) => l.close()));
    if (wasRunning) {
      for (const c of [...this.#connections]) c.disconnect(ReasonCode.ServerShuttingDown);
      const all = Promise.all([...this.#connections].map((c) => c.closed));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([all, timeout]);
      clearTimeout(timer);
      for (const c of [...this.#connections]) c.destroy();
      await Promise.all([...this.#connections].map((c) => c.closed));
    }
    await listenersClosed;
    await this.#core.store.close();
    this.#state = 'closed';
    this.logger.info({}, 'broker stopped');
  }
}

/** Validates `config` (merged over the defaults; see docs/configuration.md) and builds a broker. Call start(). */
export function createBroker(config: DeepPartial<BrokerConfig> = {}, options: BrokerOptions = {}): Broker {
  return new Broker(resolveConfig(config), options);
}
