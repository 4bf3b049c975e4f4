/**
 * Schema version, migrations, and refusal of files we must not use: corrupt, foreign, newer, or in use. A refused
 * file is left byte for byte as it was.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openStorage } from '../../../src/broker/persistence/open.js';
import { APPLICATION_ID, migrate, migrations, SCHEMA_VERSION, StorageError } from '../../../src/broker/persistence/schema.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { openSqlite, tempDir } from './helpers.js';

const sqlite = (path: string) => ({ type: 'sqlite' as const, path, durability: 'batch' as const, cleanupIntervalMs: 0 });

async function refused(path: string, code: string, text: RegExp): Promise<void> {
  const before = readFileSync(path);
  await assert.rejects(openStorage(sqlite(path), silentLogger), (err: unknown) => {
    assert.ok(err instanceof StorageError);
    assert.equal(err.code, code);
    assert.match(err.message, text);
    assert.ok(err.message.includes(path), 'the message names the file');
    return true;
  });
  assert.deepEqual(readFileSync(path), before, 'the file was left untouched');
}

test('a new file gets the current schema version and telemq application id', async (t) => {
  const path = join(tempDir(t), 'data', 'nested', 'telemq.db');
  const storage = await openStorage(sqlite(path), silentLogger);
  await storage.close();
  const db = new Database(path, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('application_id', { simple: true }), APPLICATION_ID);
  assert.ok(SCHEMA_VERSION >= 1);
});

test('garbage bytes: a clear corrupt-database error, the file is never wiped', async (t) => {
  const path = join(tempDir(t), 'telemq.db');
  writeFileSync(path, Buffer.from('this is not a database, just some bytes '.repeat(200)));
  await refused(path, 'TELEMQ_ERR_STORAGE_CORRUPT', /not a SQLite database or corrupt.*left untouched/);
});

test('a database from a newer telemq (user_version in the future) is refused', async (t) => {
  const path = join(tempDir(t), 'telemq.db');
  const storage = await openStorage(sqlite(path), silentLogger);
  await storage.close();
  const db = new Database(path);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  await refused(path, 'TELEMQ_ERR_STORAGE_NEWER', new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer.*\\(${SCHEMA_VERSION}\\)`));
});

test('a SQLite file of another application is refused', async (t) => {
  const dir = tempDir(t);
  const plain = join(dir, 'other.db');
  const db = new Database(plain);
  db.exec('CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES (1)');
  db.close();
  await refused(plain, 'TELEMQ_ERR_STORAGE_FOREIGN', /no telemq schema version/);
  const tagged = join(dir, 'tagged.db');
  const db2 = new Database(tagged);
  db2.pragma('application_id = 1234');
  db2.close();
  await refused(tagged, 'TELEMQ_ERR_STORAGE_FOREIGN', /not a telemq database/);
});

test('a database in use by another broker is refused (exclusive lock)', async (t) => {
  const path = join(tempDir(t), 'telemq.db');
  openSqlite(t, { path, durability: 'batch' });
  await assert.rejects(openStorage(sqlite(path), silentLogger), (err: unknown) => {
    assert.ok(err instanceof StorageError);
    assert.equal(err.code, 'TELEMQ_ERR_STORAGE_BUSY');
    return true;
  });
});

test('migrations: an older database is upgraded in place and keeps its data; a failing step changes nothing', (t) => {
  const path = join(tempDir(t), 'telemq.db');
  const o = openSqlite(t, { path, durability: 'batch' });
  o.store.putSession({ clientId: 'kept', protocolVersion: 5, sessionExpiryInterval: 60 });
  o.store.close();
  const db = new Database(path);
  t.after(() => db.close());

  const broken = [...migrations, { version: SCHEMA_VERSION + 1, sql: 'ALTER TABLE sessions ADD COLUMN note TEXT; SELECT * FROM missing' }];
  assert.throws(() => migrate(db, path, broken), /no such table/);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'the failed migration rolled back');
  const columns = (): string[] => (db.pragma('table_info(sessions)') as Array<{ name: string }>).map((c) => c.name);
  assert.ok(!columns().includes('note'));

  const next = [...migrations, { version: SCHEMA_VERSION + 1, sql: "ALTER TABLE sessions ADD COLUMN note TEXT DEFAULT 'v2'" }];
  migrate(db, path, next);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
  assert.deepEqual(db.prepare('SELECT client_id, note FROM sessions').all(), [{ client_id: 'kept', note: 'v2' }]);
  // Running it again is a no-op.
  migrate(db, path, next);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
});

test('version 1 -> 2: a database written before wills were stored is migrated in place and keeps its data', (t) => {
  const path = join(tempDir(t), 'telemq.db');
  // A version-1 file as an older telemq left it, written with its own SQL (not with today's store).
  const v1 = new Database(path);
  migrate(v1, path, migrations.filter((m) => m.version === 1));
  assert.equal(v1.pragma('user_version', { simple: true }), 1);
  v1.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?, ?)').run('old', 5, 3600, 1_700_000_000_000, null);
  v1.prepare('INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?)').run('old', 'a/#', 1, 0, 0, 0, null);
  v1.prepare(
    `INSERT INTO queue (client_id, seq, topic, payload, msg_qos, msg_retain, origin, expires_at, properties, qos, retain,
       sub_ids, share_filter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run('old', 1, 'a/b', Buffer.from('queued'), 1, 0, 'pub', null, null, 1, 0, null, null);
  v1.prepare('INSERT INTO retained VALUES (?, ?, ?, ?, ?, ?)').run('r', Buffer.from('kept'), 1, null, null, 1_700_000_000_000);
  v1.close();

  const o = openSqlite(t, { path, durability: 'batch' });
  assert.equal(o.database.db.pragma('user_version', { simple: true }), 2);
  const [old, ...others] = o.store.loadSessions();
  assert.equal(others.length, 0);
  assert.equal(old?.record.clientId, 'old');
  assert.equal(old.record.disconnectedAt, 1_700_000_000_000);
  assert.deepEqual(old.subscriptions.map((s) => s.topicFilter), ['a/#']);
  assert.deepEqual(old.queue.map((q) => q.delivery.message.payload.toString()), ['queued']);
  assert.equal(old.will, undefined);
  assert.equal(o.retained.get('r')?.payload.toString(), 'kept');

  // The new table works: a will stored now is loaded after the next restart.
  o.store.putWill('old', { topic: 'status/old', payload: Buffer.from('bye'), qos: 0, retain: false, dueAt: 1_900_000_000_000 });
  o.store.close();
  const again = openSqlite(t, { path, durability: 'batch' });
  assert.equal(again.store.loadSessions()[0]?.will?.payload.toString(), 'bye');
});
