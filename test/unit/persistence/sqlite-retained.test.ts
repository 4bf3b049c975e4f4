/** SqliteRetainedStore: the memory mirror answers reads; every change is in the file before set/delete return. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RetainedMessage } from '../../../src/broker/router/index.js';
import { openSqlite, tempDir } from './helpers.js';

const msg = (topic: string, payload: string, extra: Partial<RetainedMessage> = {}): RetainedMessage => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  storedAt: 1_700_000_000_000,
  ...extra,
});

test('[MQTT-3.3.1-5] retained messages survive a restart with their properties and expiry; the last one wins', (t) => {
  const path = join(tempDir(t), 'r.db');
  const now = Date.now();
  const first = openSqlite(t, { path, durability: 'batch' });
  const rich = msg('a/b', 'v2', {
    qos: 2,
    expiresAt: now + 3_600_000,
    properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2]), userProperties: [['k', 'v']] },
  });
  first.retained.set('a/b', msg('a/b', 'v1'));
  first.retained.set('a/b', rich);
  first.retained.set('$SYS/x', msg('$SYS/x', 's'));
  first.retained.set('c', msg('c', 'gone'));
  assert.equal(first.retained.delete('c'), true);
  assert.equal(first.retained.delete('never'), false);
  first.store.close();

  const again = openSqlite(t, { path, durability: 'batch' });
  assert.equal(again.retained.count, 2);
  assert.deepEqual(again.retained.get('a/b'), rich);
  assert.equal(again.retained.get('c'), undefined);
  // The mirror answers wildcard reads; [MQTT-4.7.2-1] '#' does not match '$' topics.
  assert.deepEqual(again.retained.match('#', now).map((m) => m.topic), ['a/b']);
  assert.equal(again.retained.byteSize, 'v2'.length + 'a/b'.length + 's'.length + '$SYS/x'.length);
});

test('[MQTT-3.3.1-6] [MQTT-3.3.1-7] an empty retained payload clears the topic in the file too', (t) => {
  const path = join(tempDir(t), 'r.db');
  const first = openSqlite(t, { path, durability: 'batch' });
  first.retained.set('t', msg('t', 'x'));
  first.retained.set('t', msg('t', ''));
  assert.equal(first.retained.count, 0);
  const rows = first.database.db.prepare('SELECT count(*) AS n FROM retained').get() as { n: number };
  assert.equal(rows.n, 0, 'committed before set() returned');
  first.store.close();
  assert.equal(openSqlite(t, { path, durability: 'batch' }).retained.count, 0);
});

test('batch/sync: set() has committed when it returns; none: committed in the background', (t) => {
  const dir = tempDir(t);
  const b = openSqlite(t, { path: join(dir, 'b.db'), durability: 'batch', batchIntervalMs: 60_000 });
  b.retained.set('t', msg('t', 'x'));
  assert.equal(b.database.db.inTransaction, false);
  assert.equal((b.database.db.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n, 1);
  const n = openSqlite(t, { path: join(dir, 'n.db'), durability: 'none', batchIntervalMs: 60_000 });
  n.retained.set('t', msg('t', 'x'));
  assert.equal((n.database.db.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n, 0);
  n.database.flush();
  assert.equal((n.database.db.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n, 1);
});

test('[MQTT-3.3.2-5] expired retained messages are not loaded and purgeExpired removes them from the file', (t) => {
  const path = join(tempDir(t), 'r.db');
  const now = Date.now();
  const first = openSqlite(t, { path, durability: 'batch' });
  first.retained.set('old', msg('old', 'x', { expiresAt: now - 1 }));
  first.retained.set('soon', msg('soon', 'y', { expiresAt: now + 50 }));
  first.retained.set('kept', msg('kept', 'z'));
  assert.equal(first.retained.purgeExpired(now), 1);
  first.database.flush();
  const rows = (): number => (first.database.db.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n;
  assert.equal(rows(), 2);
  first.store.close();
  const again = openSqlite(t, { path, durability: 'batch', now: () => now + 100 });
  assert.deepEqual(again.retained.match('#', now + 100).map((m) => m.topic), ['kept']);
});
