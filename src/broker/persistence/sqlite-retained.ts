/**
 * Retained messages on SQLite: a {@link MemoryRetainedStore} mirror, loaded at startup, answers every read; set and
 * delete write through. The RetainedStore interface is synchronous, so in batch/sync durability a change is
 * committed before set() returns: the PUBACK that follows can never precede it.
 */
import type { QoS } from '../../protocol/index.js';
import { MemoryRetainedStore, type RetainedMessage, type RetainedStore } from '../router/index.js';
import { StorageError } from './schema.js';
import { decodeProperties, encodeProperties, type SqliteDatabase } from './sqlite-store.js';

interface RetainedRow {
  topic: string;
  payload: Buffer;
  qos: number;
  properties: string | null;
  expires_at: number | null;
  stored_at: number;
}

/**
 * Times (`expiresAt`, `storedAt`) are stored as the broker clock gives them; the broker runs on the wall clock, so
 * they stay meaningful across restarts.
 */
export class SqliteRetainedStore implements RetainedStore {
  readonly #mirror = new MemoryRetainedStore();
  readonly #database: SqliteDatabase;
  readonly #put;
  readonly #del;
  readonly #purge;

  constructor(database: SqliteDatabase) {
    this.#database = database;
    const db = database.db;
    this.#put = db.prepare(
      `INSERT INTO retained (topic, payload, qos, properties, expires_at, stored_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos,
         properties = excluded.properties, expires_at = excluded.expires_at, stored_at = excluded.stored_at`,
    );
    this.#del = db.prepare('DELETE FROM retained WHERE topic = ?');
    this.#purge = db.prepare('DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= ?');
    const now = database.now();
    try {
      for (const r of db.prepare('SELECT * FROM retained').all() as RetainedRow[]) {
        if (r.expires_at !== null && r.expires_at <= now) continue;
        const m: { -readonly [K in keyof RetainedMessage]: RetainedMessage[K] } = {
          topic: r.topic,
          payload: r.payload,
          qos: r.qos as QoS,
          storedAt: r.stored_at,
        };
        const props = decodeProperties(r.properties);
        if (props !== undefined) m.properties = props;
        if (r.expires_at !== null) m.expiresAt = r.expires_at;
        this.#mirror.set(r.topic, m);
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw new StorageError(
        'TELEMQ_ERR_STORAGE_CORRUPT',
        `storage ${database.path}: cannot read retained messages (${code || (err as Error).message}); ` +
          'the database was left untouched',
        { cause: err },
      );
    }
    database.onCleanup((at) => this.#purge.run(at));
  }

  get count(): number {
    return this.#mirror.count;
  }

  get byteSize(): number {
    return this.#mirror.byteSize;
  }

  set(topic: string, message: RetainedMessage): void {
    this.#mirror.set(topic, message);
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty payload removes the retained message; [MQTT-3.3.1-7] and is not stored.
      this.#database.writeNow(() => this.#del.run(topic));
      return;
    }
    // [MQTT-3.3.1-5] replaces the topic's previous retained message.
    const args = [
      topic,
      message.payload,
      message.qos,
      encodeProperties(message.properties),
      message.expiresAt ?? null,
      message.storedAt,
    ] as const;
    this.#database.writeNow(() => this.#put.run(...args));
  }

  get(topic: string, now?: number): RetainedMessage | undefined {
    return this.#mirror.get(topic, now);
  }

  delete(topic: string): boolean {
    const existed = this.#mirror.delete(topic);
    if (existed) this.#database.writeNow(() => this.#del.run(topic));
    return existed;
  }

  match(filter: string, now: number): RetainedMessage[] {
    return this.#mirror.match(filter, now);
  }

  purgeExpired(now: number): number {
    const n = this.#mirror.purgeExpired(now);
    // Also rows the mirror dropped lazily in get/match. No ack waits for this: it goes in the background batch.
    if (!this.#database.closed) this.#database.write(() => this.#purge.run(now));
    return n;
  }
}
