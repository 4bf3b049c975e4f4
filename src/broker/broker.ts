/**
 * The broker: wires listeners, connections, the shared core, storage and hooks together; start and graceful
 * shutdown. Everything protocol-related lives in channel.ts and core.ts.
 */
import type { Duplex } from 'node:stream';
import { ReasonCode, type Properties, type QoS } from '../protocol/index.js';
import type { Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import {
  allowAllAuthenticator,
  allowAllAuthorizer,
  type Authenticator,
  type Authorizer,
  type ConnectRequest,
  type ReadRequest,
  type EnhancedAuthenticator,
} from './auth/auth.js';
import { FileAuth, isLoopbackHost, listenerHost } from './auth/file-auth.js';
import { resolveConfig, type BrokerConfig, type DeepPartial, type ListenerConfig } from './config.js';
import { Connection } from './connection.js';
import { BrokerCore, forwardedProperties, type BrokerStats, type CoreOptions } from './core.js';
import { maximumSockets, type LimitHits } from './limits.js';
import { publishSys } from './observability/sys.js';
import { MemoryStore } from './persistence/memory-store.js';
import { openStorage, type Storage } from './persistence/open.js';
import type { Store, StoredMessage } from './persistence/store.js';
import { MemoryRetainedStore, type RetainedStore } from './router/index.js';
import type { ConnectionMeta, Listener } from './transport/listener.js';
import { TcpListener } from './transport/tcp.js';
import { createSecureListener } from './transport/ws.js';

/** Wall-clock time: stored expiry times stay meaningful across restarts. */
const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Everything pluggable. Without `store`, storage follows `config.persistence` (memory by default); without
 * `authenticator`/`authorizer`, `config.auth` and the listeners' anonymous policy decide (see docs/security.md).
 */
export interface BrokerOptions {
  logger?: Logger;
  clock?: Clock;
  store?: Store;
  retained?: RetainedStore;
  /** Takes precedence over `config.auth` for authentication. */
  authenticator?: Authenticator;
  /** Takes precedence over `config.auth` (its ACL file) for authorization. */
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

/** One item of a {@link Broker.reload}: what was read again, and the error when it failed (the old one stays). */
export interface ReloadResult {
  /** `auth` (password and ACL files) or a listener name. */
  target: string;
  ok: boolean;
  error?: string;
}

/** A listener built from a config entry, with what the broker needs to know about it. */
interface ConfiguredListener {
  listener: Listener & { reload?: () => Promise<void> };
  entry: ListenerConfig;
}

export class Broker {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  #core: BrokerCore | undefined;
  /** What the core is built from when storage must be opened first (SQLite): see start(). */
  readonly #coreOptions: Omit<CoreOptions, 'store' | 'retained'> & { store?: Store; retained?: RetainedStore };
  readonly #listeners: Listener[];
  readonly #configured: ConfiguredListener[];
  readonly #connections = new Set<Connection>();
  /** Loaded in start() when config.auth (or the anonymous policy of a listener) needs it. */
  #fileAuth: FileAuth | undefined;
  readonly #needsFileAuth: boolean;
  /** False when the caller's authenticator decides who connects (the anonymous policy is then not ours). */
  readonly #ownAuthenticator: boolean;
  /** Storage this broker opened itself (config.persistence), closed with it. */
  #storage: Storage | undefined;
  #state: 'idle' | 'starting' | 'running' | 'closing' | 'closed' = 'idle';
  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #closing: Promise<void> | undefined;
  #starting: Promise<void> | undefined;

  constructor(config: BrokerConfig, options: BrokerOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? silentLogger;
    this.#configured = config.listeners.map((entry) => ({
      entry,
      listener: entry.type === 'tcp' ? new TcpListener({ host: entry.host, port: entry.port }) : createSecureListener(entry, this.logger),
    }));
    this.#listeners = [...this.#configured.map((c) => c.listener), ...(options.listeners ?? [])];
    // Allow-all stays the fast path when nothing is configured and every listener admits anonymous clients.
    this.#ownAuthenticator = options.authenticator === undefined;
    this.#needsFileAuth =
      (options.authenticator === undefined || options.authorizer === undefined) &&
      (config.auth.passwordFile !== undefined ||
        config.auth.aclFile !== undefined ||
        this.#listeners.some((l) => !this.#allowAnonymous(l.name)) ||
        config.listeners.some((l) => (l.type === 'tls' || l.type === 'wss') && l.identityFrom !== undefined));
    const fileAuth = (): FileAuth => {
      if (this.#fileAuth === undefined) throw new Error('authentication files are loaded in start()');
      return this.#fileAuth;
    };
    const authenticator: Authenticator =
      options.authenticator ?? (this.#needsFileAuth ? { authenticate: (r: ConnectRequest) => fileAuth().authenticate(r) } : allowAllAuthenticator);
    const authorizer: Authorizer =
      options.authorizer ??
      (this.#needsFileAuth
        ? {
            canPublish: (r) => fileAuth().canPublish(r),
            canSubscribe: (r) => fileAuth().canSubscribe(r),
            // Deliveries are re-checked only with an ACL file: without one the broker skips the per-message call.
            ...(config.auth.aclFile === undefined ? {} : { canRead: (r: ReadRequest) => fileAuth().canRead(r) }),
          }
        : allowAllAuthorizer);
    this.#coreOptions = {
      limits: config.mqtt,
      clock: options.clock ?? wallClock,
      logger: this.logger,
      authenticator,
      authorizer,
      enhancedAuthenticator: options.enhancedAuthenticator,
    };
    if (options.store !== undefined) this.#coreOptions.store = options.store;
    if (options.retained !== undefined) this.#coreOptions.retained = options.retained;
    if (options.store !== undefined || config.persistence.type === 'memory') {
      this.#core = new BrokerCore({
        ...this.#coreOptions,
        store: options.store ?? new MemoryStore(),
        retained: options.retained ?? new MemoryRetainedStore(),
      });
    }
  }

  /** Anonymous policy by listener name (names change when port 0 is bound): the entry's, else auth.allowAnonymous. */
  #allowAnonymous(name: string): boolean {
    const own = this.#configured.find((c) => c.listener.name === name)?.entry.allowAnonymous;
    if (own !== undefined) return own;
    const global = this.config.auth.allowAnonymous;
    if (global !== 'loopback') return global;
    const host = listenerHost(name);
    return host !== undefined && isLoopbackHost(host);
  }

  /**
   * Loads the auth files, opens the configured storage and restores its sessions, binds every listener, starts
   * $SYS. Rejects (closing what it opened) when a file, the storage or a listener fails.
   */
  start(): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new Error(`broker cannot start: it is ${this.#state}`));
    this.#state = 'starting';
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      await this.#open();
    } catch (err) {
      await this.#storage?.close();
      this.#state = 'closed';
      throw err;
    }
    const core = this.core;
    const bound: Listener[] = [];
    const failures: Array<{ listener: Listener; err: NodeJS.ErrnoException }> = [];
    for (const l of this.#listeners) {
      const entry = this.#configured.find((c) => c.listener === l)?.entry;
      const limit = entry?.type === 'tcp' ? (entry.maxConnections ?? 0) : 0;
      try {
        await l.listen(limit > 0 ? this.#limited(l, limit) : (stream, meta) => this.handleConnection(stream, meta));
        bound.push(l);
        this.logger.info(this.#ownAuthenticator ? { listener: l.name, allowAnonymous: this.#allowAnonymous(l.name) } : { listener: l.name }, 'listening');
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
      await core.store.close();
      await this.#storage?.close();
      this.#state = 'closed';
      throw f.err;
    }
    this.#listeners.splice(0, this.#listeners.length, ...bound);
    const interval = this.config.sys.interval * 1000;
    if (this.config.sys.enabled) publishSys(core, core.clock.now());
    this.#housekeeping = setInterval(() => {
      const now = core.clock.now();
      core.retained.purgeExpired(now);
      if (this.config.sys.enabled) publishSys(core, now);
    }, interval);
    this.#housekeeping.unref();
    this.#state = 'running';
  }

  async #open(): Promise<void> {
    if (this.#needsFileAuth) {
      const a = this.config.auth;
      this.#fileAuth = await FileAuth.create({
        ...(a.passwordFile === undefined ? {} : { passwordFile: a.passwordFile }),
        ...(a.aclFile === undefined ? {} : { aclFile: a.aclFile }),
        allowAnonymous: (name) => this.#allowAnonymous(name),
        failureDelay: a.failureDelay,
        logger: this.logger,
      });
    }
    if (this.#core === undefined) {
      const p = this.config.persistence;
      if (p.type !== 'sqlite') throw new Error(`unexpected persistence type ${p.type}`);
      this.#storage = await openStorage(
        {
          type: 'sqlite',
          path: p.path,
          durability: p.durability,
          ...(p.batchIntervalMs === undefined ? {} : { batchIntervalMs: p.batchIntervalMs }),
          ...(p.cleanupIntervalMs === undefined ? {} : { cleanupIntervalMs: p.cleanupIntervalMs }),
        },
        this.logger,
      );
      this.#core = new BrokerCore({
        ...this.#coreOptions,
        store: this.#storage.store,
        retained: this.#coreOptions.retained ?? this.#storage.retained,
      });
    }
    await this.#core.restore();
  }

  /** A connection handler that closes connections beyond `limit` open ones on listener `l` at once. */
  #limited(l: Listener, limit: number): (stream: Duplex, meta: ConnectionMeta) => void {
    let open = 0;
    return (stream, meta) => {
      if (open >= limit) {
        if (this.#core?.connectionLog.allow('connectionsExceeded') !== false) {
          this.logger.warn({ listener: l.name, remoteAddress: meta.remoteAddress }, 'connection refused: listener maxConnections reached');
        }
        stream.destroy();
        return;
      }
      open++;
      stream.once('close', () => open--);
      this.handleConnection(stream, meta);
    };
  }

  /**
   * Reads the password and ACL files and the certificates of tls/wss listeners from config again (SIGHUP).
   * Connected clients stay connected. Whatever fails to load keeps its previous version and is reported.
   */
  async reload(): Promise<ReloadResult[]> {
    const results: ReloadResult[] = [];
    if (this.#fileAuth !== undefined) {
      const r = await this.#fileAuth.reload();
      results.push(r.ok ? { target: 'auth', ok: true } : { target: 'auth', ok: false, error: r.error.message });
    }
    for (const { listener, entry } of this.#configured) {
      if ((entry.type !== 'tls' && entry.type !== 'wss') || !this.#listeners.includes(listener) || listener.reload === undefined) continue;
      try {
        await listener.reload();
        results.push({ target: listener.name, ok: true });
      } catch (err) {
        const error = (err as Error).message;
        this.logger.error({ listener: listener.name, err: error }, 'TLS reload failed; keeping the previous certificates');
        results.push({ target: listener.name, ok: false, error });
      }
    }
    return results;
  }

  /** Bound addresses, in listener order. */
  addresses(): Array<{ name: string; host: string; port: number }> {
    return this.#listeners.map((l) => ({ name: l.name, ...l.address() }));
  }

  /** Serves one client over any duplex stream (what listeners call; usable for in-process transports). */
  handleConnection(stream: Duplex, meta: ConnectionMeta): void {
    const core = this.#core;
    if (this.#state !== 'running' || core === undefined) {
      stream.destroy();
      return;
    }
    // maximumConnections is checked at CONNECT; sockets that never send one are bounded here.
    const maxSockets = maximumSockets(core.limits.maximumConnections);
    if (maxSockets > 0 && this.#connections.size >= maxSockets) {
      core.limitsHit.count('connections');
      if (core.connectionLog.allow('connectionsExceeded')) {
        this.logger.warn(
          { listener: meta.listener, remoteAddress: meta.remoteAddress, open: this.#connections.size },
          'connection refused: too many open connections',
        );
      }
      stream.destroy();
      return;
    }
    const connection = new Connection({
      core,
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
    const core = this.core;
    const now = core.clock.now();
    const expiry = m.properties?.messageExpiryInterval;
    if (expiry !== undefined) message.expiresAt = now + expiry * 1000;
    if (m.properties !== undefined) {
      // Only what a PUBLISH forwards: an alias, subscription ids or a non-PUBLISH property would not encode per subscriber.
      const forwarded = forwardedProperties(m.properties);
      if (forwarded !== undefined) message.properties = forwarded;
    }
    core.publish(message, now);
    core.discardPending();
  }

  /**
   * Server-initiated disconnect of a connected client (admin action): v5 clients get DISCONNECT with
   * `reasonCode` (default 0x98 Administrative action) first; the will is published as for any unrequested close.
   * @returns false when no client with that id is connected.
   */
  disconnectClient(clientId: string, reasonCode: number = ReasonCode.AdministrativeAction): boolean {
    const core = this.core;
    const owner = core.sessions.get(clientId)?.owner;
    if (owner === undefined) return false;
    owner.disconnect(reasonCode, core.clock.now());
    return true;
  }

  get stats(): Readonly<BrokerStats> {
    return this.core.stats;
  }

  /** Limit events by kind since start (see docs/security.md, "Limits against abuse"). */
  get limitsHit(): Readonly<LimitHits> {
    return this.core.limitsHit.hits;
  }

  /** Connected clients. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * The shared state (sessions, subscription tree, retained store): for the admin API and tests. With SQLite
   * storage from config it exists once start() opened the database.
   */
  get core(): BrokerCore {
    if (this.#core === undefined) throw new Error('the broker opens its storage in start(): call start() first');
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
    // A close during start waits for it, so listeners bound meanwhile are closed too.
    if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
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
    // The sessions' expiry and will timers would otherwise fire into the closed store of a stopped broker.
    this.#core?.stopTimers();
    // Both are idempotent (a failed start already closed them).
    await this.#core?.store.close();
    await this.#storage?.close();
    this.#state = 'closed';
    // What was suppressed in the last window is still reported, and no summary timer outlives the broker.
    this.#core?.connectionLog.flush();
    this.logger.info({}, 'broker stopped');
  }
}

/** Validates `config` (merged over the defaults; see docs/configuration.md) and builds a broker. Call start(). */
export function createBroker(config: DeepPartial<BrokerConfig> = {}, options: BrokerOptions = {}): Broker {
  return new Broker(resolveConfig(config), options);
}
