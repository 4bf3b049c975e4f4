/**
 * The SQLite schema of telemq's durable storage, its version (`PRAGMA user_version`) and the migrations that bring
 * an older database up to date. A database we cannot read, or one written by a newer telemq, is refused with a
 * {@link StorageError}; nothing here ever deletes or recreates an existing database.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** Marks the file as telemq's: `PRAGMA application_id` ('TMQ1'). */
export const APPLICATION_ID = 0x544d5131;

/** Storage could not be opened or used; the broker must not start on it. */
export class StorageError extends Error {
  readonly code: `TELEMQ_ERR_STORAGE_${string}`;
  constructor(code: `TELEMQ_ERR_STORAGE_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

interface Migration {
  /** The user_version after this migration. */
  readonly version: number;
  readonly sql: string;
}

/**
 * Ordered migrations; each runs in its own transaction with its user_version bump. Append, never edit a released
 * one: databases in the field have already run it.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE sessions (
        client_id        TEXT PRIMARY KEY,
        protocol_version INTEGER NOT NULL,
        expiry_interval  INTEGER NOT NULL,
        disconnected_at  INTEGER,            -- wall-clock ms; NULL while connected
        expires_at       INTEGER             -- wall-clock ms; NULL while connected or when it never expires
      ) WITHOUT ROWID;
      CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE subscriptions (
        client_id          TEXT NOT NULL,
        topic_filter       TEXT NOT NULL,
        qos                INTEGER NOT NULL,
        no_local           INTEGER NOT NULL,
        retain_as_published INTEGER NOT NULL,
        retain_handling    INTEGER NOT NULL,
        subscription_id    INTEGER,
        PRIMARY KEY (client_id, topic_filter)
      ) WITHOUT ROWID;

      -- Messages waiting for an offline (or full) session, in seq order.
      CREATE TABLE queue (
        client_id      TEXT NOT NULL,
        seq            INTEGER NOT NULL,
        topic          TEXT NOT NULL,
        payload        BLOB NOT NULL,
        msg_qos        INTEGER NOT NULL,
        msg_retain     INTEGER NOT NULL,
        origin         TEXT NOT NULL,
        expires_at     INTEGER,
        properties     TEXT,
        qos            INTEGER NOT NULL,
        retain         INTEGER NOT NULL,
        sub_ids        TEXT,
        share_filter   TEXT,
        PRIMARY KEY (client_id, seq)
      );
      CREATE INDEX queue_by_expiry ON queue (expires_at) WHERE expires_at IS NOT NULL;

      -- QoS 1/2 messages sent to a client and not completed; ord keeps the first-send order.
      CREATE TABLE outgoing (
        client_id      TEXT NOT NULL,
        packet_id      INTEGER NOT NULL,
        ord            INTEGER NOT NULL,
        state          INTEGER NOT NULL,     -- 0 publish (awaiting PUBACK/PUBREC), 1 pubrel (awaiting PUBCOMP)
        topic          TEXT NOT NULL,
        payload        BLOB NOT NULL,
        msg_qos        INTEGER NOT NULL,
        msg_retain     INTEGER NOT NULL,
        origin         TEXT NOT NULL,
        expires_at     INTEGER,
        properties     TEXT,
        qos            INTEGER NOT NULL,
        retain         INTEGER NOT NULL,
        sub_ids        TEXT,
        share_filter   TEXT,
        PRIMARY KEY (client_id, packet_id)
      );

      -- QoS 2 packet ids received (PUBREC sent) and awaiting PUBREL.
      CREATE TABLE incoming_qos2 (
        client_id  TEXT NOT NULL,
        packet_id  INTEGER NOT NULL,
        PRIMARY KEY (client_id, packet_id)
      ) WITHOUT ROWID;

      CREATE TABLE retained (
        topic       TEXT PRIMARY KEY,
        payload     BLOB NOT NULL,
        qos         INTEGER NOT NULL,
        properties  TEXT,
        expires_at  INTEGER,
        stored_at   INTEGER NOT NULL
      );
      CREATE INDEX retained_by_expiry ON retained (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    sql: `
      -- A will waiting for its Will Delay Interval [MQTT-3.1.3-9]: one per session, gone once published or cancelled.
      CREATE TABLE wills (
        client_id   TEXT PRIMARY KEY,
        topic       TEXT NOT NULL,
        payload     BLOB NOT NULL,
        qos         INTEGER NOT NULL,
        retain      INTEGER NOT NULL,
        properties  TEXT,
        due_at      INTEGER NOT NULL,    -- wall-clock ms when the delay ends
        username    TEXT                 -- for the authorization of the publish; NULL when anonymous
      );
    `,
  },
];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Checks, reading only, that `db` is empty or a telemq database not newer than `target`. Throws
 * {@link StorageError} otherwise. @returns the stored schema version (0 for a new file).
 */
export function checkSchema(db: BetterSqlite3.Database, path: string, target: number = SCHEMA_VERSION): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  const appId = db.pragma('application_id', { simple: true }) as number;
  if (appId !== 0 && appId !== APPLICATION_ID) {
    throw new StorageError(
      'TELEMQ_ERR_STORAGE_FOREIGN',
      `storage ${path}: not a telemq database (application_id 0x${appId.toString(16)}); it was left untouched`,
    );
  }
  if (version > target) {
    throw new StorageError(
      'TELEMQ_ERR_STORAGE_NEWER',
      `storage ${path}: schema version ${version} is newer than this telemq supports (${target}); ` +
        'upgrade telemq or point the storage path elsewhere. The database was left untouched',
    );
  }
  if (version === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0) {
      throw new StorageError(
        'TELEMQ_ERR_STORAGE_FOREIGN',
        `storage ${path}: the file holds tables but no telemq schema version; it was left untouched`,
      );
    }
  }
  return version;
}

/**
 * Brings `db` to the last version of `list` (default: this build's schema), one transaction per migration, so a
 * failing migration leaves the database at the previous version. Runs {@link checkSchema} first.
 */
export function migrate(db: BetterSqlite3.Database, path: string, list: readonly Migration[] = MIGRATIONS): void {
  const target = list[list.length - 1]?.version ?? 0;
  const version = checkSchema(db, path, target);
  for (const m of list) {
    if (m.version <= version) continue;
    db.transaction(() => {
      db.exec(m.sql);
      // PRAGMA takes no bound parameters; versions are our own integers.
      db.pragma(`user_version = ${m.version}`);
      db.pragma(`application_id = ${APPLICATION_ID}`);
    })();
  }
}

/** For tests of the upgrade path: the migration list can be extended with a synthetic later version. */
export const migrations: readonly Migration[] = MIGRATIONS;
export type { Migration };
