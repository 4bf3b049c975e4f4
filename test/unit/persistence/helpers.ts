/** Temp folders and SQLite stores for persistence tests; everything is closed and removed in t.after. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createBroker } from '../../../src/broker/index.js';
import { SqliteRetainedStore } from '../../../src/broker/persistence/sqlite-retained.js';
import { SqliteDatabase, SqliteStore, type SqliteOptions } from '../../../src/broker/persistence/sqlite-store.js';

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'telemq-persist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Opened {
  database: SqliteDatabase;
  store: SqliteStore;
  retained: SqliteRetainedStore;
}

/** Opens `path` like openStorage does; closed in t.after (closing twice is fine). */
export function openSqlite(t: TestContext, options: SqliteOptions): Opened {
  const database = new SqliteDatabase({ cleanupIntervalMs: 0, ...options });
  t.after(() => database.close());
  const retained = new SqliteRetainedStore(database);
  const store = new SqliteStore(database);
  return { database, store, retained };
}

export interface RunningBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * Brokers started one after the other on one SQLite file, on the wall clock shifted by `shift(ms)`: a long downtime
 * between two of them costs the test no waiting. Each is stopped in t.after (stopping twice is fine).
 */
export function shiftedBrokers(t: TestContext): { start(): Promise<RunningBroker>; shift(ms: number): void; path: string } {
  const path = join(tempDir(t), 'telemq.db');
  let offset = 0;
  const now = (): number => Date.now() + offset;
  const clock = {
    now,
    setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
  const start = async (): Promise<RunningBroker> => {
    const database = new SqliteDatabase({ path, durability: 'batch', cleanupIntervalMs: 0, now });
    const broker = createBroker(
      { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], sys: { enabled: false } },
      { store: new SqliteStore(database), retained: new SqliteRetainedStore(database), clock },
    );
    await broker.start();
    const stop = async (): Promise<void> => {
      await broker.close(100);
      database.close();
    };
    t.after(stop);
    return { url: `mqtt://127.0.0.1:${broker.addresses()[0]?.port ?? 0}`, stop };
  };
  return { start, shift: (ms) => (offset += ms), path };
}
