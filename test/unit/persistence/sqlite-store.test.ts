/** SqliteStore beyond the shared conformance suite: group commit per durability mode, expiry, cleanup. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeProperties, encodeProperties } from '../../../src/broker/persistence/sqlite-store.js';
import type { StoredDelivery } from '../../../src/broker/persistence/store.js';
import { delivery } from './store-conformance.js';
import { openSqlite, tempDir } from './helpers.js';

const count = (o: ReturnType<typeof openSqlite>, table: string): number =>
  (o.database.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Rows changed by the connection so far (inserts, updates and deletes that ran). */
const changes = (o: ReturnType<typeof openSqlite>): number =>
  (o.database.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
/** A delivery at `qos` (published and delivered). */
const dq = (topic: string, payload: string, qos: 0 | 1 | 2): StoredDelivery => {
  const d = delivery(topic, payload, { qos });
  d.message = { ...d.message, qos };
  return d;
};
const session = { clientId: 'c', protocolVersion: 5 as const, sessionExpiryInterval: 10 };

test('batch: writes of one turn share one commit; nothing is committed before its promise settles', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch' });
  assert.equal(o.database.db.pragma('synchronous', { simple: true }), 1, 'synchronous=NORMAL');
  assert.equal(o.database.db.pragma('journal_mode', { simple: true }), 'wal');
  const p1 = o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
  const p2 = o.store.enqueue('c', 1, delivery('t', 'x'));
  assert.ok(p1 instanceof Promise && p2 instanceof Promise);
  assert.equal(p1, p2, 'one promise per batch');
  assert.equal(count(o, 'sessions'), 0, 'not committed yet');
  await p2;
  assert.equal(count(o, 'sessions'), 1);
  assert.equal(count(o, 'queue'), 1);
  // Nobody waits for a dequeue (lost in a crash, it means a resend): it goes with the next commit.
  assert.equal(o.store.dequeue('c', 1), undefined);
  assert.equal(count(o, 'queue'), 1);
  await sleep(30);
  assert.equal(count(o, 'queue'), 0);
});

test('batch: with batchIntervalMs the batch waits for the timer, maxBatchOps commits early', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', batchIntervalMs: 60_000, maxBatchOps: 3 });
  const p = o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
  o.store.enqueue('c', 1, delivery('t', 'x'));
  o.store.enqueue('c', 2, delivery('t', 'y'));
  // The third write reached maxBatchOps: committed at the end of this turn, not after 60 s.
  await p;
  assert.equal(count(o, 'queue'), 2);
});

test('sync: synchronous=FULL and acks wait for the commit', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'sync' });
  assert.equal(o.database.db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL');
  const p = o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
  assert.ok(p instanceof Promise);
  assert.equal(count(o, 'sessions'), 0);
  await p;
  assert.equal(count(o, 'sessions'), 1);
});

test('none: methods return synchronously; the background commit and close() write everything', async (t) => {
  const path = join(tempDir(t), 'a.db');
  const o = openSqlite(t, { path, durability: 'none', batchIntervalMs: 60_000 });
  assert.equal(o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 }), undefined);
  assert.equal(o.store.enqueue('c', 1, delivery('t', 'x')), undefined);
  o.store.close();
  const again = openSqlite(t, { path, durability: 'none' });
  const [s] = again.store.loadSessions();
  assert.equal(s?.queue.length, 1);
});

test('a row put and removed before its put ran never reaches the file, nor does its delete; across commits both run', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch' });
  await o.store.putSession(session);
  const before = changes(o);
  const p = o.store.enqueue('c', 1, delivery('t', 'x'));
  o.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') });
  o.store.putOutgoing('c', { packetId: 1, state: 'pubrel', delivery: delivery('t', 'x') });
  o.store.dequeue('c', 1);
  o.store.deleteOutgoing('c', 1);
  await p;
  await sleep(30);
  assert.equal(changes(o) - before, 0, 'no insert, update or delete reached SQLite');
  const mid = changes(o);
  await o.store.putOutgoing('c', { packetId: 2, state: 'publish', delivery: delivery('t', 'y') });
  assert.equal(count(o, 'outgoing'), 1);
  o.store.deleteOutgoing('c', 2);
  await sleep(30);
  assert.equal(changes(o) - mid, 2, 'insert and delete in separate commits both run');
  assert.equal(count(o, 'outgoing') + count(o, 'queue'), 0);
});

test('an update of a row already in the file, then its delete, removes the row (the delete is not skipped)', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch' });
  await o.store.putSession(session);
  await o.store.putOutgoing('c', { packetId: 7, state: 'publish', delivery: dq('t', 'x', 2) });
  o.store.putOutgoing('c', { packetId: 7, state: 'pubrel', delivery: dq('t', 'x', 2) });
  o.store.deleteOutgoing('c', 7);
  await sleep(30);
  assert.equal(count(o, 'outgoing'), 0);
});

test('QoS 1 sent now: the row waits ackWaitMs for its PUBACK; acknowledged in time it is never written and its waiter is released at once', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', ackWaitMs: 50 });
  await o.store.putSession(session);
  const before = changes(o);
  const p = o.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true);
  assert.ok(p instanceof Promise);
  let settled = false;
  void p.then(() => (settled = true));
  // Another write's commit at the end of this turn does not take the deferred row along.
  await o.store.putSubscription('c', { topicFilter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
  assert.equal(settled, false, 'still waiting for the PUBACK or ackWaitMs');
  assert.equal(count(o, 'outgoing'), 0);
  o.store.deleteOutgoing('c', 1);
  await p;
  await sleep(80);
  assert.equal(count(o, 'outgoing'), 0);
  assert.equal(changes(o) - before, 1, 'only the subscription was written');
});

test('QoS 1 sent now, not acknowledged within ackWaitMs: written, and its waiter settles only with that commit', async (t) => {
  const path = join(tempDir(t), 'a.db');
  const o = openSqlite(t, { path, durability: 'batch', ackWaitMs: 40 });
  await o.store.putSession(session);
  const started = performance.now();
  const p = o.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true);
  await p;
  assert.ok(performance.now() - started >= 35, 'waited for the acknowledgement first');
  assert.equal(count(o, 'outgoing'), 1, 'committed when the waiter was released');
  o.store.close();
  const again = openSqlite(t, { path, durability: 'batch' });
  assert.deepEqual(again.store.loadSessions()[0]?.outgoing.map((x) => x.packetId), [1]);
});

test('[MQTT-4.6.0-1] a deferred row written late keeps its place in the resend order', async (t) => {
  const path = join(tempDir(t), 'a.db');
  const o = openSqlite(t, { path, durability: 'batch', ackWaitMs: 30 });
  await o.store.putSession(session);
  const first = o.store.putOutgoing('c', { packetId: 9, state: 'publish', delivery: delivery('t', 'first') }, true);
  // Not deferred (QoS 2): committed at the end of this turn, before the first one.
  await o.store.putOutgoing('c', { packetId: 3, state: 'publish', delivery: dq('t', 'second', 2) }, true);
  assert.equal(count(o, 'outgoing'), 1);
  await first;
  o.store.close();
  const again = openSqlite(t, { path, durability: 'batch' });
  assert.deepEqual(
    again.store.loadSessions()[0]?.outgoing.map((x) => x.delivery.message.payload.toString()),
    ['first', 'second'],
  );
});

test('rows are not deferred when not sent now, with QoS 2, with ackWaitMs 0, or with durability none', async (t) => {
  const cases: Array<[string, Parameters<typeof openSqlite>[1], 0 | 1 | 2, boolean]> = [
    ['held behind other output', { path: '', durability: 'batch', ackWaitMs: 60_000 }, 1, false],
    ['QoS 2', { path: '', durability: 'batch', ackWaitMs: 60_000 }, 2, true],
    ['ackWaitMs 0', { path: '', durability: 'batch', ackWaitMs: 0 }, 1, true],
  ];
  for (const [name, options, qos, sentNow] of cases) {
    const o = openSqlite(t, { ...options, path: join(tempDir(t), 'a.db') });
    await o.store.putSession(session);
    await o.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: dq('t', 'x', qos) }, sentNow);
    assert.equal(count(o, 'outgoing'), 1, `${name}: committed at the end of the turn`);
  }
  const none = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'none' });
  none.store.putSession(session);
  assert.equal(none.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true), undefined);
});

test('deleting a session drops its deferred rows and releases their waiters with the commit of the delete', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', ackWaitMs: 60_000 });
  await o.store.putSession(session);
  const p = o.store.putOutgoing('c', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true);
  let settled = false;
  void p?.then(() => (settled = true));
  const deleted = o.store.deleteSession('c');
  await new Promise<void>((resolve) => queueMicrotask(resolve));
  // A shared-subscription message moves to another member in the commit of this delete: not released before.
  assert.equal(settled, false);
  await deleted;
  await p;
  await o.store.putSession(session);
  o.database.flush();
  assert.equal(count(o, 'outgoing'), 0, 'the old session\'s row did not land in the new one');
});

test('a client whose PUBACKs keep missing the wait gets its rows written at once, and is probed again', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', ackWaitMs: 60_000 });
  await o.store.putSession(session);
  let id = 0;
  const put = (): Promise<void> | undefined =>
    o.store.putOutgoing('c', { packetId: ++id, state: 'publish', delivery: delivery('t', 'x') }, true);
  // Deferred: still waiting after a few ms (ackWaitMs is a minute); not deferred: committed at the end of the turn.
  const deferred = async (p: Promise<void> | undefined): Promise<boolean> => {
    let done = false;
    void p?.then(() => (done = true));
    await sleep(5);
    return !done;
  };
  for (let i = 0; i < 4; i++) {
    const p = put();
    assert.equal(await deferred(p), true, `put ${id} is deferred`);
    o.database.flush(); // as if ackWaitMs had passed: the row is written, a miss
    await p;
  }
  let probe = 0;
  for (let i = 1; i <= 64 && probe === 0; i++) {
    const p = put();
    if (await deferred(p)) {
      probe = i;
      o.store.deleteOutgoing('c', id); // acknowledged in time
      await p;
    }
  }
  assert.equal(probe, 64, 'after four misses only one put in 64 is deferred');
  assert.equal(await deferred(put()), true, 'an acknowledged probe makes the client deferred again');
});

test('a failed commit rejects the promise of every write in the batch and is logged', async (t) => {
  const errors: unknown[] = [];
  const logger = {
    debug() {},
    info() {},
    warn() {},
    error(obj: object) {
      errors.push(obj);
    },
    child() {
      return logger;
    },
  };
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', logger });
  const p = o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
  o.database.write(() => {
    o.database.db.prepare('INSERT INTO no_such_table VALUES (1)').run();
  });
  await assert.rejects(p as Promise<void>);
  assert.equal(errors.length, 1);
  // The transaction rolled back as a whole.
  assert.equal(count(o, 'sessions'), 0);
});

test('session expiry across a restart: expired sessions are not loaded and are deleted', (t) => {
  const path = join(tempDir(t), 'a.db');
  const t0 = 1_700_000_000_000;
  const first = openSqlite(t, { path, durability: 'batch' });
  first.store.putSession({ clientId: 'short', protocolVersion: 5, sessionExpiryInterval: 10, disconnectedAt: t0 });
  first.store.putSession({ clientId: 'long', protocolVersion: 5, sessionExpiryInterval: 3600, disconnectedAt: t0 });
  first.store.putSession({ clientId: 'forever', protocolVersion: 4, sessionExpiryInterval: 0xffffffff, disconnectedAt: t0 });
  // Connected when the broker stopped: the broker counts its expiry from the restart.
  first.store.putSession({ clientId: 'online', protocolVersion: 5, sessionExpiryInterval: 10 });
  first.store.putSubscription('short', { topicFilter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
  first.store.close();

  const early = openSqlite(t, { path, durability: 'batch', now: () => t0 + 5_000 });
  assert.deepEqual(early.store.loadSessions().map((s) => s.record.clientId).sort(), ['forever', 'long', 'online', 'short']);
  early.store.close();

  const late = openSqlite(t, { path, durability: 'batch', now: () => t0 + 11_000 });
  const loaded = late.store.loadSessions();
  assert.deepEqual(loaded.map((s) => s.record.clientId).sort(), ['forever', 'long', 'online']);
  assert.equal(loaded.find((s) => s.record.clientId === 'long')?.record.disconnectedAt, t0);
  late.database.flush();
  assert.equal(count(late, 'subscriptions'), 0, 'the expired session was deleted with its subscriptions');
  assert.equal(count(late, 'sessions'), 3);
});

test('[MQTT-3.1.3-9] a session that expired while the broker was down is still loaded, bare, when it has a will', (t) => {
  const path = join(tempDir(t), 'a.db');
  const t0 = 1_700_000_000_000;
  const first = openSqlite(t, { path, durability: 'batch' });
  for (const id of ['with-will', 'without']) {
    first.store.putSession({ clientId: id, protocolVersion: 5, sessionExpiryInterval: 10, disconnectedAt: t0 });
    first.store.putSubscription(id, { topicFilter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
  }
  const will = { topic: 'status/x', payload: Buffer.from('gone'), qos: 1 as const, retain: false, dueAt: t0 + 60_000 };
  first.store.putWill('with-will', will);
  first.store.close();

  const late = openSqlite(t, { path, durability: 'batch', now: () => t0 + 11_000 });
  const loaded = late.store.loadSessions();
  // The session ended first, so the will is due: the broker publishes it and then ends the session.
  assert.deepEqual(loaded, [
    {
      record: { clientId: 'with-will', protocolVersion: 5, sessionExpiryInterval: 10, disconnectedAt: t0 },
      subscriptions: [],
      queue: [],
      outgoing: [],
      incomingQoS2: [],
      will,
    },
  ]);
  late.database.flush();
  assert.equal(count(late, 'sessions'), 1, 'only the session without a will was deleted at load');
  assert.equal(count(late, 'wills'), 1, 'the will stays stored until the broker has published it');
  late.store.deleteSession('with-will');
  late.database.flush();
  assert.deepEqual([count(late, 'sessions'), count(late, 'subscriptions'), count(late, 'wills')], [0, 0, 0]);
});

test('[MQTT-3.3.2-5] a queued message that expired while the broker was down is not loaded', (t) => {
  const path = join(tempDir(t), 'a.db');
  const t0 = 1_700_000_000_000;
  const first = openSqlite(t, { path, durability: 'batch' });
  first.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 0xffffffff, disconnectedAt: t0 });
  const soon = delivery('t', 'soon');
  soon.message = { ...soon.message, expiresAt: t0 + 1000 };
  const later = delivery('t', 'later');
  later.message = { ...later.message, expiresAt: t0 + 100_000 };
  first.store.enqueue('c', 1, soon);
  first.store.enqueue('c', 2, later);
  first.store.enqueue('c', 3, delivery('t', 'never'));
  first.store.close();
  const again = openSqlite(t, { path, durability: 'batch', now: () => t0 + 2000 });
  const [s] = again.store.loadSessions();
  assert.deepEqual(s?.queue.map((q) => q.delivery.message.payload.toString()), ['later', 'never']);
});

test('background cleanup purges expired sessions (after a minute of slack), queued and retained messages', (t) => {
  let now = 1_700_000_000_000;
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', now: () => now });
  const t0 = now;
  o.store.putSession({ clientId: 'old', protocolVersion: 5, sessionExpiryInterval: 1, disconnectedAt: t0 });
  o.store.putSession({ clientId: 'kept', protocolVersion: 5, sessionExpiryInterval: 3600, disconnectedAt: t0 });
  const exp = delivery('t', 'x');
  exp.message = { ...exp.message, expiresAt: t0 + 10 };
  o.store.enqueue('kept', 1, exp);
  o.store.enqueue('kept', 2, delivery('t', 'y'));
  o.retained.set('r/1', { topic: 'r/1', payload: Buffer.from('a'), qos: 0, storedAt: t0, expiresAt: t0 + 10 });
  o.retained.set('r/2', { topic: 'r/2', payload: Buffer.from('b'), qos: 0, storedAt: t0 });
  o.database.flush();
  now = t0 + 30_000; // 'old' expired 29 s ago: within the slack, left to the broker's own timer
  o.database.cleanup();
  o.database.flush();
  assert.equal(count(o, 'sessions'), 2);
  assert.equal(count(o, 'queue'), 1);
  assert.equal(count(o, 'retained'), 1);
  now = t0 + 62_000;
  o.database.cleanup();
  o.database.flush();
  assert.equal(count(o, 'sessions'), 1);
});

test('properties codec: Buffers survive, other values are plain JSON', () => {
  const p = {
    payloadFormatIndicator: 1,
    contentType: 'application/json',
    correlationData: Buffer.from([0, 1, 0xfe]),
    userProperties: [['$b', 'x'] as [string, string]],
  };
  assert.deepEqual(decodeProperties(encodeProperties(p)), p);
  assert.equal(encodeProperties(undefined), null);
  assert.equal(decodeProperties(null), undefined);
});

test('writes after close (a timer firing during shutdown) are dropped and logged once, never thrown', (t) => {
  const warnings: unknown[] = [];
  const logger = {
    debug() {},
    info() {},
    warn(obj: object) {
      warnings.push(obj);
    },
    error() {},
    child() {
      return logger;
    },
  };
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', logger });
  o.store.close();
  assert.equal(o.store.deleteSession('c'), undefined);
  assert.equal(o.store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 1 }), undefined);
  o.retained.set('t', { topic: 't', payload: Buffer.from('x'), qos: 0, storedAt: 0 });
  assert.equal(warnings.length, 1);
});

test('the background cleanup forgets sessions with no row waiting and no missed acknowledgement', async (t) => {
  const o = openSqlite(t, { path: join(tempDir(t), 'a.db'), durability: 'batch', ackWaitMs: 200 });
  for (const clientId of ['quiet', 'waiting', 'slow']) await o.store.putSession({ ...session, clientId });
  const quiet = o.store.putOutgoing('quiet', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true);
  o.store.deleteOutgoing('quiet', 1); // acknowledged in time
  await quiet;
  const slow = o.store.putOutgoing('slow', { packetId: 1, state: 'publish', delivery: delivery('t', 'x') }, true);
  o.database.flush(); // as if the wait had passed: written, a miss
  await slow;
  assert.equal(o.store.pendingSessions, 2);
  // A row still waiting when the purge runs: an urgent write makes the purge commit at the end of this turn.
  void o.store.putOutgoing('waiting', { packetId: 1, state: 'publish', delivery: delivery('t', 'y') }, true);
  o.database.cleanup();
  await o.store.putSubscription('quiet', { topicFilter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
  // 'quiet' is forgotten; 'waiting' has a row waiting, 'slow' a missed acknowledgement to remember.
  assert.equal(o.store.pendingSessions, 2);
});
