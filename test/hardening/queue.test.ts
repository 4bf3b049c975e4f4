/** A publisher filling an offline session's queue: the byte and count limits hold, drops are counted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ack, connect, subscribe } from '../helpers/raw-client.js';
import { T, hostile, parsePublish } from './harness.js';

const SESSION = [[0x11, 600]] as const;

async function offlineSubscriber(h: Awaited<ReturnType<typeof hostile>>, clientId: string): Promise<void> {
  const c = await h.raw({ version: 5, clientId, clean: false, properties: SESSION });
  c.send(subscribe({ version: 5 }, { topic: 'fill/t', qos: 1 }));
  await c.expect(T.SUBACK);
  c.send('e0 00');
  await c.waitClose();
}

async function drain(h: Awaited<ReturnType<typeof hostile>>, clientId: string): Promise<string[]> {
  const c = await h.raw();
  c.send(connect({ version: 5, clientId, clean: false, properties: SESSION }));
  await c.expect(T.CONNACK);
  const got: string[] = [];
  for (;;) {
    const p = await c.silentFor(200);
    if (p === undefined || p === 'closed') return got;
    const m = parsePublish(p, 5);
    got.push(m.payload.toString().slice(0, 3));
    if (m.packetId !== undefined) c.send(ack(T.PUBACK, m.packetId, 0));
  }
}

test('maximumQueuedBytes with dropOldest: an offline session keeps the newest messages that fit', async (t) => {
  const h = await hostile(t, { mqtt: { maximumQueuedBytes: 1000 } });
  await offlineSubscriber(h, 'offline-old');
  for (let i = 0; i < 10; i++) h.broker.publish({ topic: 'fill/t', payload: `m${i}-${'x'.repeat(294)}`, qos: 1 });
  // 300 payload + 6 topic bytes each: three fit in 1000.
  assert.deepEqual(await drain(h, 'offline-old'), ['m7-', 'm8-', 'm9-']);
  assert.equal(h.broker.stats.messagesDropped, 7);
  assert.ok(h.broker.limitsHit.queuedBytes >= 1);
  await h.survived();
});

test('maximumQueuedBytes with dropNewest: the oldest messages stay, a message larger than the limit is dropped', async (t) => {
  const h = await hostile(t, { mqtt: { maximumQueuedBytes: 1000, queueOverflow: 'dropNewest' } });
  await offlineSubscriber(h, 'offline-new');
  h.broker.publish({ topic: 'fill/t', payload: Buffer.alloc(5000), qos: 1 });
  for (let i = 0; i < 10; i++) h.broker.publish({ topic: 'fill/t', payload: `m${i}-${'x'.repeat(294)}`, qos: 1 });
  assert.deepEqual(await drain(h, 'offline-new'), ['m0-', 'm1-', 'm2-']);
  assert.equal(h.broker.stats.messagesDropped, 8);
  await h.survived();
});

test('the byte count follows the queue: after a drain the full limit is available again', async (t) => {
  const h = await hostile(t, { mqtt: { maximumQueuedBytes: 1000 } });
  await offlineSubscriber(h, 'offline-again');
  for (let i = 0; i < 3; i++) h.broker.publish({ topic: 'fill/t', payload: `a${i}-${'x'.repeat(294)}`, qos: 1 });
  assert.equal((await drain(h, 'offline-again')).length, 3);
  // drain() leaves the client connected: take it offline again, then refill.
  assert.equal(h.broker.disconnectClient('offline-again'), true);
  for (let i = 0; i < 3; i++) h.broker.publish({ topic: 'fill/t', payload: `b${i}-${'x'.repeat(294)}`, qos: 1 });
  assert.deepEqual(await drain(h, 'offline-again'), ['b0-', 'b1-', 'b2-']);
  assert.equal(h.broker.stats.messagesDropped, 0);
  await h.survived();
});
