/** Temp folders and SQLite stores for persistence tests; everything is closed and removed in t.after. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
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
