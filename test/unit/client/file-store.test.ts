import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../../src/client/file-store.js';

test('file store: put, release and delete survive reopening; a torn last line is ignored', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-fs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await FileStore.open(dir);
  await store.put({ packetId: 1, state: 'publish', topic: 'a', payload: Buffer.from('one'), qos: 1, retain: false });
  await store.put({ packetId: 2, state: 'publish', topic: 'b', payload: Buffer.from([0, 255]), qos: 2, retain: true, properties: { correlationData: Buffer.from('c'), userProperties: [['k', 'v']] } });
  await store.put({ packetId: 3, state: 'publish', topic: 'c', payload: Buffer.alloc(0), qos: 2, retain: false });
  await store.release(2);
  await store.delete(1);
  await store.close();
  // A crash in the middle of an append leaves half a line.
  await appendFile(join(dir, 'outgoing.jsonl'), '{"op":"del","id":');

  const reopened = await FileStore.open(dir);
  t.after(() => reopened.close());
  const loaded = await reopened.load();
  assert.deepEqual(loaded.map((m) => [m.packetId, m.state, m.topic, m.qos, m.retain]), [
    [2, 'pubrel', 'b', 2, true],
    [3, 'publish', 'c', 2, false],
  ]);
  assert.deepEqual([...(loaded[0]?.payload ?? [])], [0, 255]);
  assert.ok(Buffer.isBuffer(loaded[0]?.properties?.correlationData));
  assert.equal(loaded[0]?.properties?.correlationData?.toString(), 'c');
  // Reopening compacted the log to the live records.
  const text = await readFile(join(dir, 'outgoing.jsonl'), 'utf8');
  assert.equal(text.trim().split('\n').length, 2);
});

test('file store: concurrent puts, releases and deletes are applied in call order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-fs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await FileStore.open(dir);
  const puts = Array.from({ length: 200 }, (_, i) =>
    store.put({ packetId: i + 1, state: 'publish', topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 1, retain: false }),
  );
  const releases = [store.release(5), store.delete(7)];
  await Promise.all([...puts, ...releases]);
  await store.close();
  const reopened = await FileStore.open(dir);
  t.after(() => reopened.close());
  const loaded = await reopened.load();
  assert.equal(loaded.length, 199);
  assert.deepEqual(loaded.slice(0, 7).map((m) => [m.packetId, m.state]), [[1, 'publish'], [2, 'publish'], [3, 'publish'], [4, 'publish'], [5, 'pubrel'], [6, 'publish'], [8, 'publish']]);
  assert.equal(loaded.at(-1)?.topic, 't/199');
});
