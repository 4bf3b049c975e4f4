/**
 * Durable storage on SQLite (better-sqlite3, WAL mode). {@link SqliteDatabase} owns the connection and the write
 * path: writes are queued as prepared-statement calls and committed together (group commit); each write's promise
 * settles when the transaction holding it committed, so the broker's acks wait for exactly that commit.
 * {@link SqliteStore} is the broker's {@link Store} on top of it.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { Properties, ProtocolVersion, QoS, RetainHandling } from '../../protocol/index.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { checkSchema, migrate, StorageError } from './schema.js';
import type {
  PersistedSession,
  SessionRecord,
  Store,
  StoredDelivery,
  StoredMessage,
  StoredOutgoing,
  StoredSubscription,
  StoredWill,
} from './store.js';

/**
 * - `sync`: every commit is fsynced (synchronous=FULL): an acknowledged message survives a power loss.
 * - `batch`: commits reach the OS but are fsynced only at checkpoints (synchronous=NORMAL): an acknowledged
 *   message survives a crash of the broker process (kill -9), not a power loss.
 * - `none`: writes are committed in the background and acks do not wait: the last moments before a crash are lost.
 */
export type Durability = 'none' | 'batch' | 'sync';

export interface SqliteOptions {
  /** Database file; its folder is created when missing. */
  path: string;
  durability?: Durability;
  /**
   * How long a batch collects writes before it is committed. 0 (default for batch/sync): at the end of the current
   * event-loop turn, so everything that arrived in one turn shares a commit. Default for `none`: 20 ms.
   */
  batchIntervalMs?: number;
  /** A batch this large is committed at the end of the turn even when batchIntervalMs has not passed. */
  maxBatchOps?: number;
  /**
   * batch/sync: how long the row of a QoS 1 delivery just sent to a connected subscriber waits for its PUBACK before
   * it is written (default 5 ms; 0: written with the next commit like any other). Acknowledged in time, it is never
   * written, and the publisher's PUBACK is released by the subscriber's, since the message has reached it.
   */
  ackWaitMs?: number;
  /** Period of the background purge of expired sessions, queued messages and retained messages (ms). */
  cleanupIntervalMs?: number;
  logger?: Logger;
  /** Wall clock for expiry (tests). */
  now?: () => number;
}

type Op = () => void;

const NEVER = 0xffff_ffff;

/** A settled-later promise for one batch; a rejection nobody waits for is only logged, never unhandled. */
class Batch {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;
  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => {});
  }
}

/**
 * One put of a queue or outgoing row not yet executed, tracked so that a delete arriving before its commit can skip
 * both. A deferred one (a QoS 1 delivery in flight to a connected subscriber) also waits up to ackWaitMs for the
 * subscriber's PUBACK: acknowledged in time, it is never written and its promise settles then, since the message has
 * reached the subscriber; otherwise it is written and its promise settles with that commit.
 */
export class PendingRow {
  /** Superseded before it ran: the write is skipped. */
  skip = false;
  /** The write ran (the row may be in the file). */
  ran = false;
  /** The row did not exist in the file before this put, so a delete before it runs has nothing to remove. */
  readonly fresh: boolean;
  /** An earlier put of the same row, not run yet either. */
  readonly previous: PendingRow | undefined;
  /** Deferred rows: the write and when it is due (performance.now() ms). */
  op: Op | undefined = undefined;
  due = 0;
  readonly promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;

  constructor(fresh: boolean, previous: PendingRow | undefined, waited: boolean) {
    this.fresh = fresh;
    this.previous = previous;
    if (waited) {
      this.promise = new Promise<void>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      this.promise.catch(() => {});
    }
  }

  settle(err?: unknown): void {
    const resolve = this.#resolve;
    if (resolve === undefined) return;
    const reject = this.#reject as (err: unknown) => void;
    this.#resolve = this.#reject = undefined;
    if (err === undefined) resolve();
    else reject(err);
  }
}

/** Opens (and migrates) the database file; throws StorageError with a clear message when it cannot be used. */
function openFile(path: string, durability: Durability): BetterSqlite3.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let db: BetterSqlite3.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (err) {
    throw new StorageError('TELEMQ_ERR_STORAGE_OPEN', `storage ${path}: cannot open: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    // EXCLUSIVE before the first access: WAL then needs no shared-memory index, and the lock taken below keeps a
    // second broker off the file.
    db.pragma('locking_mode = EXCLUSIVE');
    // Read-only checks first, so a foreign, corrupt or newer file is refused before anything is written to it.
    checkSchema(db, path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'sync' ? 'FULL' : 'NORMAL'}`);
    // Take the write lock now: a second process fails here, not at its first publish.
    db.exec('BEGIN IMMEDIATE; COMMIT');
    migrate(db, path);
  } catch (err) {
    db.close();
    if (err instanceof StorageError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
      throw new StorageError(
        'TELEMQ_ERR_STORAGE_CORRUPT',
        `storage ${path}: not a SQLite database or corrupt (${code}); it was left untouched: ` +
          'restore a backup or move the file away to start empty',
        { cause: err },
      );
    }
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new StorageError('TELEMQ_ERR_STORAGE_BUSY', `storage ${path}: in use by another process (${code})`, {
        cause: err,
      });
    }
    throw new StorageError('TELEMQ_ERR_STORAGE_OPEN', `storage ${path}: cannot open: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return db;
}

/** Buffers inside properties (Correlation Data, ...) become {"$b": base64}; everything else is plain JSON. */
export function encodeProperties(p: Properties | undefined): string | null {
  if (p === undefined) return null;
  return JSON.stringify(p, function (this: Record<string, unknown>, key, value: unknown) {
    // JSON.stringify has already called Buffer#toJSON: read the original from the holder.
    const original = key === '' ? value : this[key];
    return Buffer.isBuffer(original) ? { $b: original.toString('base64') } : value;
  });
}

export function decodeProperties(s: string | null): Properties | undefined {
  if (s === null) return undefined;
  return JSON.parse(s, (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const b = (value as { $b?: unknown }).$b;
      if (typeof b === 'string' && Object.keys(value).length === 1) return Buffer.from(b, 'base64');
    }
    return value;
  }) as Properties;
}

/** The database connection with its group-commit write path, shared by SqliteStore and SqliteRetainedStore. */
export class SqliteDatabase {
  readonly db: BetterSqlite3.Database;
  readonly path: string;
  readonly durability: Durability;
  readonly logger: Logger;
  readonly now: () => number;
  readonly #batchIntervalMs: number;
  readonly #maxBatchOps: number;
  readonly #ackWaitMs: number;
  readonly #commit: (ops: Op[]) => void;
  #ops: Op[] = [];
  #batch: Batch | undefined;
  /** Deferred rows not run yet, in due order (see PendingRow). */
  #deferred: PendingRow[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer fires (performance.now() ms). */
  #timerDue = 0;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #cleanupTimer: ReturnType<typeof setInterval> | undefined;
  #cleanups: Array<(now: number) => void> = [];
  #rollbacks: Array<() => void> = [];
  #closed = false;

  constructor(options: SqliteOptions) {
    this.path = options.path;
    this.durability = options.durability ?? 'batch';
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.#batchIntervalMs = options.batchIntervalMs ?? (this.durability === 'none' ? 20 : 0);
    this.#maxBatchOps = options.maxBatchOps ?? 10_000;
    this.#ackWaitMs = options.ackWaitMs ?? 5;
    this.db = openFile(options.path, this.durability);
    this.#commit = this.db.transaction((ops: Op[]) => {
      for (let i = 0; i < ops.length; i++) (ops[i] as Op)();
    });
    const every = options.cleanupIntervalMs ?? 60_000;
    if (every > 0) {
      this.#cleanupTimer = setInterval(() => this.cleanup(), every);
      this.#cleanupTimer.unref();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues one write. batch/sync: returns the promise of the transaction that will hold it (shared by the whole
   * batch). none: returns undefined; the write is committed in the background.
   * Never commits synchronously: the writes made while handling one packet land in the same transaction.
   */
  write(op: Op): Promise<void> | undefined {
    if (this.#closed) return this.#afterClose();
    this.#ops.push(op);
    if (this.durability === 'none') {
      this.#schedule(this.#batchIntervalMs);
      return undefined;
    }
    let batch = this.#batch;
    if (batch === undefined) batch = this.#batch = new Batch();
    this.#schedule(this.#batchIntervalMs);
    return batch.promise;
  }

  /**
   * Queues a write nobody waits on (a delete after an acknowledgement: lost in a crash, it only means a resend).
   * It does not hurry the commit: it goes with the next batch.
   */
  writeLater(op: Op): void {
    if (this.#closed) {
      void this.#afterClose();
      return;
    }
    this.#ops.push(op);
    this.#schedule(Math.max(this.#ackWaitMs, this.#batchIntervalMs));
  }

  /** Whether writeDeferred may be used: batch/sync with an ackWaitMs above 0. */
  get defers(): boolean {
    return this.durability !== 'none' && this.#ackWaitMs > 0;
  }

  /**
   * Queues a deferred row (see PendingRow): it runs with the first commit at least ackWaitMs from now, unless it is
   * superseded first. batch/sync only.
   */
  writeDeferred(row: PendingRow, op: Op): void {
    if (this.#closed) {
      void this.#afterClose();
      row.settle();
      return;
    }
    row.op = op;
    row.due = performance.now() + this.#ackWaitMs;
    this.#deferred.push(row);
    if (this.#timer === undefined && this.#immediate === undefined) this.#setTimer(row.due);
  }

  /**
   * Commits `op` before returning (batch/sync), in its own transaction: for writers whose interface is synchronous
   * (the retained store) and whose caller's ack must not precede the commit. `none`: queued like write().
   */
  writeNow(op: Op): void {
    if (this.#closed) {
      void this.#afterClose();
      return;
    }
    if (this.durability === 'none') {
      this.#ops.push(op);
      this.#schedule(this.#batchIntervalMs);
      return;
    }
    this.#commit([op]);
  }

  #afterCloseLogged = false;

  /**
   * A write after close (a will or session-expiry timer firing during shutdown) cannot be stored: it is dropped and
   * logged once, never thrown into the timer that made it.
   */
  #afterClose(): undefined {
    if (!this.#afterCloseLogged) {
      this.#afterCloseLogged = true;
      this.logger.warn({ path: this.path }, 'storage closed: later writes are dropped');
    }
    return undefined;
  }

  /** Makes sure a commit happens within `ms` (0: at the end of this event-loop turn). */
  #schedule(ms: number): void {
    if (this.#immediate !== undefined) return;
    if (ms === 0 || this.#ops.length >= this.#maxBatchOps) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#immediate = setImmediate(this.#flush);
      return;
    }
    const due = performance.now() + ms;
    if (this.#timer === undefined || due < this.#timerDue) this.#setTimer(due);
  }

  #setTimer(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(this.#flush, Math.max(0, Math.ceil(due - performance.now())));
  }

  readonly #flush = (): void => {
    this.#flushNow(false);
  };

  /** Commits everything queued, deferred rows included; the batch's promise settles with the result. @returns the error, if any. */
  flush(): unknown {
    return this.#flushNow(true);
  }

  /** @param all also deferred rows not due yet (close, explicit flush). */
  #flushNow(all: boolean): unknown {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    let ops = this.#ops;
    const batch = this.#batch;
    this.#ops = [];
    this.#batch = undefined;
    // Deferred rows that are due run first (they were queued before most of ops; rows of the same key never meet
    // here, since a later write of a key supersedes the pending one). The others wait for a later commit.
    let due: PendingRow[] | undefined;
    const deferred = this.#deferred;
    if (deferred.length > 0) {
      const now = all ? Infinity : performance.now();
      let kept = 0;
      for (let i = 0; i < deferred.length; i++) {
        const row = deferred[i] as PendingRow;
        if (row.skip) continue;
        if (row.due <= now) (due ??= []).push(row);
        else deferred[kept++] = row;
      }
      deferred.length = kept;
      if (due !== undefined) ops = due.map((r) => r.op as Op).concat(ops);
    }
    let failure: unknown;
    if (ops.length > 0) {
      try {
        this.#commit(ops);
      } catch (err) {
        this.logger.error({ err, path: this.path, writes: ops.length }, 'storage commit failed');
        for (const fn of this.#rollbacks) fn();
        failure = err;
      }
    }
    if (failure === undefined) batch?.resolve();
    else batch?.reject(failure);
    if (due !== undefined) for (let i = 0; i < due.length; i++) (due[i] as PendingRow).settle(failure);
    if (deferred.length > 0) this.#setTimer((deferred[0] as PendingRow).due);
    return failure;
  }

  /** Registers a function that resynchronizes caches with the file after a transaction rolled back. */
  onRollback(fn: () => void): void {
    this.#rollbacks.push(fn);
  }

  /** Registers a purge of expired rows, run every cleanupIntervalMs. */
  onCleanup(fn: (now: number) => void): void {
    this.#cleanups.push(fn);
  }

  /** Runs the purges now (through the write queue, so they stay ordered with other writes). */
  cleanup(): void {
    if (this.#closed) return;
    const now = this.now();
    for (const fn of this.#cleanups) this.writeLater(() => fn(now));
  }

  /** Commits what is queued and closes the file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#cleanupTimer !== undefined) clearInterval(this.#cleanupTimer);
    this.db.close();
  }
}

type DeliveryRow = [
  topic: string,
  payload: Buffer,
  msgQos: number,
  msgRetain: number,
  origin: string,
  expiresAt: number | null,
  properties: string | null,
  qos: number,
  retain: number,
  subIds: string | null,
  shareFilter: string | null,
];

interface DeliveryColumns {
  topic: string;
  payload: Buffer;
  msg_qos: number;
  msg_retain: number;
  origin: string;
  expires_at: number | null;
  properties: string | null;
  qos: number;
  retain: number;
  sub_ids: string | null;
  share_filter: string | null;
}

function deliveryRow(d: StoredDelivery): DeliveryRow {
  const m = d.message;
  return [
    m.topic,
    m.payload,
    m.qos,
    m.retain ? 1 : 0,
    m.origin,
    m.expiresAt ?? null,
    encodeProperties(m.properties),
    d.qos,
    d.retain ? 1 : 0,
    d.subscriptionIdentifiers === undefined ? null : d.subscriptionIdentifiers.join(','),
    d.shareFilter ?? null,
  ];
}

function rowDelivery(r: DeliveryColumns): StoredDelivery {
  const message: StoredMessage = {
    topic: r.topic,
    payload: r.payload,
    qos: r.msg_qos as QoS,
    retain: r.msg_retain === 1,
    origin: r.origin,
  };
  const props = decodeProperties(r.properties);
  if (props !== undefined) message.properties = props;
  if (r.expires_at !== null) message.expiresAt = r.expires_at;
  const d: StoredDelivery = { message, qos: r.qos as QoS, retain: r.retain === 1 };
  if (r.sub_ids !== null) d.subscriptionIdentifiers = r.sub_ids.split(',').map(Number);
  if (r.share_filter !== null) d.shareFilter = r.share_filter;
  return d;
}

/** Rows of one session whose puts have not run yet, and how its deferred rows fared. */
interface ClientRows {
  /** Outgoing rows by packet id. */
  out: Map<number, PendingRow>;
  /** Queued rows by seq. */
  queue: Map<number, PendingRow>;
  /** Deferred rows written since the last one its acknowledgement beat. */
  misses: number;
  probes: number;
}

/** After this many deferred rows in a row that had to be written, a client's rows are no longer deferred... */
const MAX_MISSES = 4;
/** ...except one in this many, to find out when it acknowledges quickly again. */
const PROBE_EVERY = 64;

/**
 * The write of `row` (key `key` in `rows`) is about to run: marks it run and no longer pending.
 * @returns false when it was superseded and must write nothing.
 */
function startRun(row: PendingRow, rows: Map<number, PendingRow>, key: number): boolean {
  if (row.skip) return false;
  row.ran = true;
  if (rows.get(key) === row) rows.delete(key);
  return true;
}

/**
 * Skips a put and the earlier puts of the same row, releasing their waiters now, or when `later` is given, leaving
 * that to the caller. @returns whether the row may be in the file already.
 */
function skipAll(newest: PendingRow, later?: PendingRow[]): boolean {
  let written = false;
  let fresh = false;
  for (let row: PendingRow | undefined = newest; row !== undefined; row = row.previous) {
    if (row.ran) written = true;
    row.skip = true;
    if (later === undefined) row.settle();
    else later.push(row);
    fresh = row.fresh;
  }
  return written || !fresh;
}

const DELIVERY_COLS =
  'topic, payload, msg_qos, msg_retain, origin, expires_at, properties, qos, retain, sub_ids, share_filter';

/**
 * The broker's {@link Store} on SQLite. Writes for a session that does not exist are ignored (as in MemoryStore).
 * Methods return the commit promise (batch/sync) or undefined (none).
 */
export class SqliteStore implements Store {
  readonly database: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  #nextOrd: number;
  /**
   * Client ids with a row in `sessions`, as of the writes executed so far: lets a write for an unknown session be
   * skipped without a lookup in SQL.
   */
  #known = new Set<string>();
  /** Puts not run yet, per session and row key (outgoing: packet id, queue: seq): the newest put of each row. */
  readonly #pending = new Map<string, ClientRows>();

  constructor(database: SqliteDatabase) {
    this.database = database;
    this.#s = prepare(database.db);
    this.#reloadKnown();
    database.onRollback(() => this.#reloadKnown());
    const max = database.db.prepare('SELECT max(ord) AS m FROM outgoing').get() as { m: number | null };
    this.#nextOrd = (max.m ?? 0) + 1;
    database.onCleanup((now) => {
      // Sessions whose broker timer should long have ended them: a minute of slack keeps this from racing the
      // broker's own expiry (which may resume the session at the last moment).
      for (const r of this.#s.expiredSessions.all(now - 60_000) as Array<{ client_id: string }>) {
        this.#deleteSessionNow(r.client_id);
      }
      // [MQTT-3.3.2-5] expired queued messages are never delivered; in-flight ones must be completed.
      this.#s.purgeQueue.run(now);
      this.#sweepPending();
    });
  }

  /** Sessions with rows waiting to be written (tests, diagnostics). */
  get pendingSessions(): number {
    return this.#pending.size;
  }

  /**
   * Forgets sessions with nothing waiting and no missed acknowledgements: the per-session entry is kept between
   * messages (creating it per message would cost more than it saves) but not for every session ever seen.
   */
  #sweepPending(): void {
    for (const [clientId, p] of this.#pending) {
      if (p.out.size === 0 && p.queue.size === 0 && p.misses === 0) this.#pending.delete(clientId);
    }
  }

  #reloadKnown(): void {
    this.#known = new Set((this.#s.sessionIds.raw().all() as Array<[string]>).map((r) => r[0]));
  }

  /** Opens the file at options.path (see SqliteOptions) and returns a store owning it. */
  static open(options: SqliteOptions): SqliteStore {
    return new SqliteStore(new SqliteDatabase(options));
  }

  loadSessions(): PersistedSession[] {
    const s = this.#s;
    const now = this.database.now();
    const sessions = new Map<string, PersistedSession>();
    const expired = new Map<string, SessionRecord>();
    try {
      for (const r of s.allSessions.all() as Array<{
        client_id: string;
        protocol_version: number;
        expiry_interval: number;
        disconnected_at: number | null;
        expires_at: number | null;
      }>) {
        const record: SessionRecord = {
          clientId: r.client_id,
          protocolVersion: r.protocol_version as ProtocolVersion,
          sessionExpiryInterval: r.expiry_interval,
        };
        if (r.disconnected_at !== null) record.disconnectedAt = r.disconnected_at;
        if (r.expires_at !== null && r.expires_at <= now) expired.set(r.client_id, record);
        else sessions.set(r.client_id, { record, subscriptions: [], queue: [], outgoing: [], incomingQoS2: [] });
      }
      for (const r of s.allSubscriptions.all() as Array<{
        client_id: string;
        topic_filter: string;
        qos: number;
        no_local: number;
        retain_as_published: number;
        retain_handling: number;
        subscription_id: number | null;
      }>) {
        const sub: StoredSubscription = {
          topicFilter: r.topic_filter,
          qos: r.qos as QoS,
          noLocal: r.no_local === 1,
          retainAsPublished: r.retain_as_published === 1,
          retainHandling: r.retain_handling as RetainHandling,
        };
        if (r.subscription_id !== null) sub.subscriptionIdentifier = r.subscription_id;
        sessions.get(r.client_id)?.subscriptions.push(sub);
      }
      for (const r of s.allQueue.all() as Array<DeliveryColumns & { client_id: string; seq: number }>) {
        // [MQTT-3.3.2-5] a message that expired while stored is not delivered.
        if (r.expires_at !== null && r.expires_at <= now) continue;
        sessions.get(r.client_id)?.queue.push({ seq: r.seq, delivery: rowDelivery(r) });
      }
      for (const r of s.allOutgoing.all() as Array<
        DeliveryColumns & { client_id: string; packet_id: number; state: number }
      >) {
        sessions.get(r.client_id)?.outgoing.push({
          packetId: r.packet_id,
          state: r.state === 1 ? 'pubrel' : 'publish',
          delivery: rowDelivery(r),
        });
      }
      for (const r of s.allIncoming.raw().all() as Array<[string, number]>) {
        sessions.get(r[0])?.incomingQoS2.push(r[1]);
      }
      for (const r of s.allWills.all() as Array<{
        client_id: string;
        topic: string;
        payload: Buffer;
        qos: number;
        retain: number;
        properties: string | null;
        due_at: number;
        username: string | null;
      }>) {
        const will: StoredWill = { topic: r.topic, payload: r.payload, qos: r.qos as QoS, retain: r.retain === 1, dueAt: r.due_at };
        const props = decodeProperties(r.properties);
        if (props !== undefined) will.properties = props;
        if (r.username !== null) will.username = r.username;
        const live = sessions.get(r.client_id);
        if (live !== undefined) {
          live.will = will;
          continue;
        }
        // [MQTT-3.1.3-9] the session ended while the broker was down, so the will is due: it is loaded with the
        // bare record (the rest of the session is gone) and the broker publishes it and ends the session, which
        // deletes both. Deleting it here could lose the will to a crash before it went out.
        const record = expired.get(r.client_id);
        if (record === undefined) continue;
        expired.delete(r.client_id);
        sessions.set(r.client_id, { record, subscriptions: [], queue: [], outgoing: [], incomingQoS2: [], will });
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw new StorageError(
        'TELEMQ_ERR_STORAGE_CORRUPT',
        `storage ${this.database.path}: cannot read stored sessions (${code || (err as Error).message}); ` +
          'the database was left untouched',
        { cause: err },
      );
    }
    for (const id of expired.keys()) this.database.write(() => this.#deleteSessionNow(id));
    return [...sessions.values()];
  }

  putSession(record: SessionRecord): Promise<void> | undefined {
    const d = record.disconnectedAt;
    const expiresAt = d === undefined || record.sessionExpiryInterval === NEVER ? null : d + record.sessionExpiryInterval * 1000;
    const args = [record.clientId, record.protocolVersion, record.sessionExpiryInterval, d ?? null, expiresAt] as const;
    return this.database.write(() => {
      this.#s.putSession.run(...args);
      this.#known.add(record.clientId);
    });
  }

  deleteSession(clientId: string): Promise<void> | undefined {
    // Rows of the session not written yet never will be. Their waiters are released with the commit of this
    // delete, not before: a shared-subscription message moves to another member, in the same commit.
    const pending = this.#pending.get(clientId);
    const skipped: PendingRow[] = [];
    if (pending !== undefined) {
      this.#pending.delete(clientId);
      for (const row of pending.out.values()) skipAll(row, skipped);
      for (const row of pending.queue.values()) skipAll(row, skipped);
    }
    const p = this.database.write(() => this.#deleteSessionNow(clientId));
    if (skipped.length > 0) {
      const settle = (err?: unknown): void => {
        for (const row of skipped) row.settle(err);
      };
      if (p === undefined) settle();
      else p.then(() => settle(), settle);
    }
    return p;
  }

  #deleteSessionNow(clientId: string): void {
    const s = this.#s;
    s.delSessionSubs.run(clientId);
    s.delSessionQueue.run(clientId);
    s.delSessionOutgoing.run(clientId);
    s.delSessionIncoming.run(clientId);
    s.delWill.run(clientId);
    s.delSession.run(clientId);
    this.#known.delete(clientId);
  }

  putSubscription(clientId: string, sub: StoredSubscription): Promise<void> | undefined {
    const args = [
      clientId,
      sub.topicFilter,
      sub.qos,
      sub.noLocal ? 1 : 0,
      sub.retainAsPublished ? 1 : 0,
      sub.retainHandling,
      sub.subscriptionIdentifier ?? null,
    ] as const;
    return this.database.write(() => {
      if (this.#known.has(clientId)) this.#s.putSubscription.run(...args);
    });
  }

  deleteSubscription(clientId: string, topicFilter: string): Promise<void> | undefined {
    return this.database.write(() => this.#s.delSubscription.run(clientId, topicFilter));
  }

  putWill(clientId: string, will: StoredWill): Promise<void> | undefined {
    const args = [
      clientId,
      will.topic,
      will.payload,
      will.qos,
      will.retain ? 1 : 0,
      encodeProperties(will.properties),
      will.dueAt,
      will.username ?? null,
    ] as const;
    return this.database.write(() => {
      if (this.#known.has(clientId)) this.#s.putWill.run(...args);
    });
  }

  deleteWill(clientId: string): Promise<void> | undefined {
    return this.database.write(() => this.#s.delWill.run(clientId));
  }

  #pendingOf(clientId: string): ClientRows {
    let p = this.#pending.get(clientId);
    if (p === undefined) {
      p = { out: new Map(), queue: new Map(), misses: 0, probes: 0 };
      this.#pending.set(clientId, p);
    }
    return p;
  }

  /**
   * A row put and removed again before the put ran (a message queued and drained, or sent and acknowledged, before
   * the commit) never reaches the file: its puts are skipped, and so is the delete unless the row was in the file
   * before. A deferred row's waiter is released now: the subscriber has the message.
   * @returns whether the delete must still run.
   */
  #superseded(pending: ClientRows | undefined, kind: 'out' | 'queue', key: number): boolean {
    if (pending === undefined) return true;
    const rows = pending[kind];
    const row = rows.get(key);
    if (row === undefined) return true;
    rows.delete(key);
    // An acknowledgement that beat its deferred row (the newest put has not run: it would have left the map):
    // deferring pays off for this client.
    if (row.op !== undefined) pending.misses = 0;
    return skipAll(row);
  }

  #track(rows: Map<number, PendingRow>, key: number, fresh: boolean, waited: boolean): PendingRow {
    const row = new PendingRow(fresh, rows.get(key), waited);
    rows.set(key, row);
    return row;
  }

  enqueue(clientId: string, seq: number, delivery: StoredDelivery): Promise<void> | undefined {
    // seq only grows: the row is new. Its waiter needs the commit (a dequeue moves the message, it does not
    // deliver it), so it is an ordinary write.
    const rows = this.#pendingOf(clientId).queue;
    const row = this.#track(rows, seq, true, false);
    return this.database.write(() => {
      if (startRun(row, rows, seq) && this.#known.has(clientId)) this.#s.enqueue.run(clientId, seq, ...deliveryRow(delivery));
    });
  }

  dequeue(clientId: string, seq: number): undefined {
    if (this.#superseded(this.#pending.get(clientId), 'queue', seq)) {
      this.database.writeLater(() => this.#s.dequeue.run(clientId, seq));
    }
    return undefined;
  }

  putOutgoing(clientId: string, outgoing: StoredOutgoing, sentNow = false): Promise<void> | undefined {
    const state = outgoing.state === 'pubrel' ? 1 : 0;
    const packetId = outgoing.packetId;
    const delivery = outgoing.delivery;
    // Taken now, not when the write runs: a deferred row runs late but keeps its place in the resend order. An
    // update keeps the row's first ord.
    const ord = this.#nextOrd++;
    const pending = this.#pendingOf(clientId);
    const rows = pending.out;
    // The channel puts state 'publish' only for a packet id it has just allocated: the row is new.
    const fresh = state === 0;
    // QoS 1 to a connected client: the PUBACK usually comes back within ackWaitMs, and then the row is never
    // written. QoS 2 is not deferred: a PUBLISH sent again under a new packet id after a restart would be a second
    // delivery. A client that keeps missing the wait (far away, or slow) would only delay its publishers' acks:
    // its rows are written at once, with one in PROBE_EVERY deferred to notice when it is quick again.
    let deferred = sentNow && fresh && delivery.qos === 1 && this.database.defers;
    if (deferred && pending.misses >= MAX_MISSES) deferred = ++pending.probes % PROBE_EVERY === 0;
    const row = this.#track(rows, packetId, fresh, deferred);
    const op = (): void => {
      if (!startRun(row, rows, packetId)) return;
      if (deferred) pending.misses++;
      if (this.#known.has(clientId)) this.#s.putOutgoing.run(clientId, packetId, ord, state, ...deliveryRow(delivery));
    };
    if (deferred) {
      this.database.writeDeferred(row, op);
      return row.promise;
    }
    return this.database.write(op);
  }

  deleteOutgoing(clientId: string, packetId: number): undefined {
    // Nobody waits: a delete lost in a crash means a resend (QoS 1) or a PUBREL answered again (QoS 2).
    if (this.#superseded(this.#pending.get(clientId), 'out', packetId)) {
      this.database.writeLater(() => this.#s.delOutgoing.run(clientId, packetId));
    }
    return undefined;
  }

  putIncomingQoS2(clientId: string, packetId: number): Promise<void> | undefined {
    return this.database.write(() => {
      if (this.#known.has(clientId)) this.#s.putIncoming.run(clientId, packetId);
    });
  }

  deleteIncomingQoS2(clientId: string, packetId: number): Promise<void> | undefined {
    return this.database.write(() => this.#s.delIncoming.run(clientId, packetId));
  }

  /** Commits pending writes and closes the database (the retained store shares it). */
  close(): void {
    this.database.close();
  }
}

function prepare(db: BetterSqlite3.Database) {
  return {
    allSessions: db.prepare('SELECT * FROM sessions'),
    sessionIds: db.prepare('SELECT client_id FROM sessions'),
    allSubscriptions: db.prepare('SELECT * FROM subscriptions'),
    allQueue: db.prepare('SELECT * FROM queue ORDER BY client_id, seq'),
    allOutgoing: db.prepare('SELECT * FROM outgoing ORDER BY ord'),
    allIncoming: db.prepare('SELECT client_id, packet_id FROM incoming_qos2'),
    allWills: db.prepare('SELECT * FROM wills'),
    expiredSessions: db.prepare('SELECT client_id FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    purgeQueue: db.prepare('DELETE FROM queue WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    putSession: db.prepare(
      `INSERT INTO sessions (client_id, protocol_version, expiry_interval, disconnected_at, expires_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
         expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at,
         expires_at = excluded.expires_at`,
    ),
    delSession: db.prepare('DELETE FROM sessions WHERE client_id = ?'),
    delSessionSubs: db.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
    delSessionQueue: db.prepare('DELETE FROM queue WHERE client_id = ?'),
    delSessionOutgoing: db.prepare('DELETE FROM outgoing WHERE client_id = ?'),
    delSessionIncoming: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ?'),
    putSubscription: db.prepare(
      `INSERT INTO subscriptions (client_id, topic_filter, qos, no_local, retain_as_published, retain_handling,
         subscription_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, topic_filter) DO UPDATE SET qos = excluded.qos, no_local = excluded.no_local,
         retain_as_published = excluded.retain_as_published, retain_handling = excluded.retain_handling,
         subscription_id = excluded.subscription_id`,
    ),
    delSubscription: db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?'),
    enqueue: db.prepare(
      `INSERT OR REPLACE INTO queue (client_id, seq, ${DELIVERY_COLS})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    dequeue: db.prepare('DELETE FROM queue WHERE client_id = ? AND seq = ?'),
    putOutgoing: db.prepare(
      `INSERT INTO outgoing (client_id, packet_id, ord, state, ${DELIVERY_COLS})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, packet_id) DO UPDATE SET state = excluded.state, topic = excluded.topic,
         payload = excluded.payload, msg_qos = excluded.msg_qos, msg_retain = excluded.msg_retain,
         origin = excluded.origin, expires_at = excluded.expires_at, properties = excluded.properties,
         qos = excluded.qos, retain = excluded.retain, sub_ids = excluded.sub_ids, share_filter = excluded.share_filter`,
    ),
    delOutgoing: db.prepare('DELETE FROM outgoing WHERE client_id = ? AND packet_id = ?'),
    putIncoming: db.prepare('INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)'),
    delIncoming: db.prepare('DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?'),
    putWill: db.prepare(
      `INSERT OR REPLACE INTO wills (client_id, topic, payload, qos, retain, properties, due_at, username)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    delWill: db.prepare('DELETE FROM wills WHERE client_id = ?'),
  };
}
