/** Hostile SUBSCRIBE/UNSUBSCRIBE traffic and a subscriber that holds every packet id. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ack, hex, packet, str, subscribe, u16, unsubscribe } from '../helpers/raw-client.js';
import { T, closed, disconnectCode, hostile, parsePublish, subackCodes } from './harness.js';

test('thousands of subscriptions from one client: beyond maximumSubscriptionsPerClient SUBACK 0x97 Quota exceeded', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'many-subs' });
  const filters = Array.from({ length: 3000 }, (_, i) => ({ topic: `many/${i}/#`, qos: 0 }));
  c.send(subscribe({ version: 5, packetId: 1 }, ...filters));
  const codes = subackCodes(await c.expect(T.SUBACK), 5);
  assert.equal(codes.length, 3000);
  assert.ok(codes.slice(0, 1000).every((x) => x === 0x00));
  assert.ok(codes.slice(1000).every((x) => x === 0x97));
  // [MQTT-3.8.4-3] replacing a subscription the client already has is not a new one.
  c.send(subscribe({ version: 5, packetId: 2 }, { topic: 'many/0/#', qos: 1 }, { topic: 'many/new', qos: 0 }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x01, 0x97]);
  // Unsubscribing frees quota.
  c.send(unsubscribe({ version: 5, packetId: 3 }, 'many/1/#'));
  await c.expect(T.UNSUBACK);
  c.send(subscribe({ version: 5, packetId: 4 }, { topic: 'many/new', qos: 0 }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x00]);
  assert.equal(h.broker.limitsHit.subscriptions, 2001);
  await h.survived();
});

test('subscription quota for MQTT 3.1.1 answers 0x80 Failure', async (t) => {
  const h = await hostile(t, { mqtt: { maximumSubscriptionsPerClient: 2 } });
  const c = await h.raw({ version: 4, clientId: 'quota-4' });
  c.send(subscribe({ version: 4 }, { topic: 'q/1' }, { topic: 'q/2' }, { topic: 'q/3' }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 4), [0, 0, 0x80]);
  await h.survived();
});

test('[MQTT-4.7.1-1] invalid filters get 0x8F each; the valid ones in the same SUBSCRIBE are granted', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'bad-filters' });
  c.send(subscribe({ version: 5 }, { topic: 'a/#/b' }, { topic: 'a+/b' }, { topic: '$share/g+/t' }, { topic: 'ok/+' }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x8f, 0x8f, 0x8f, 0x00]);
  await h.survived();
});

test('deep filter levels: a filter over maximumTopicLevels gets SUBACK 0x8F', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'deep-filter' });
  c.send(subscribe({ version: 5 }, { topic: `${'+/'.repeat(300)}#` }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x8f]);
  await h.survived();
});

test('[MQTT-3.8.3-3] a SUBSCRIBE without any filter closes the connection', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'sub-empty' });
  c.send(packet(0x82, u16(1)));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.10.3-2] an UNSUBSCRIBE without any filter closes the connection', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'unsub-empty' });
  c.send(packet(0xa2, u16(1)));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.8.3-5] reserved subscription option bits: v5 DISCONNECT 0x81', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'sub-reserved' });
  c.send(packet(0x82, u16(1), hex('00'), str('bystander/x'), hex('c0')));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x81);
  await h.survived();
});

test('[MQTT-1.5.4-1] a topic filter with invalid UTF-8 closes the connection', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'filter-utf8' });
  c.send(subscribe({ version: 4 }, { topic: Buffer.concat([Buffer.from('bystander/'), hex('c3 28')]) }));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.8.3-4] No Local on a shared subscription gets DISCONNECT 0x82', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'share-nolocal' });
  c.send(subscribe({ version: 5 }, { topic: '$share/g/bystander/#', noLocal: true }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x82);
  await h.survived();
});

test('[MQTT-4.3.2-1] a subscriber that acknowledges nothing holds all 65,535 packet ids; the rest waits in its queue', async (t) => {
  const h = await hostile(t, { mqtt: { maximumInflightMessages: 65_535 } });
  const c = await h.raw({ version: 4, clientId: 'hoarder' });
  c.send(subscribe({ version: 4 }, { topic: 'hoard/t', qos: 1 }));
  await c.expect(T.SUBACK);
  const total = 65_535 + 5;
  for (let i = 0; i < total; i++) h.broker.publish({ topic: 'hoard/t', payload: 'x', qos: 1 });
  const ids = new Set<number>();
  for (let i = 0; i < 65_535; i++) ids.add(parsePublish(await c.expect(T.PUBLISH, 5000), 4).packetId ?? 0);
  assert.equal(ids.size, 65_535, 'every id used once');
  assert.ok(!ids.has(0));
  assert.equal(await c.silentFor(200), undefined, 'no id left: nothing more is sent');
  // One acknowledgement frees one id, which carries the next queued message.
  c.send(ack(T.PUBACK, 777));
  assert.equal(parsePublish(await c.expect(T.PUBLISH), 4).packetId, 777);
  await h.survived();
});

test('maximumInflightMessages caps what is sent unacknowledged below the client\'s Receive Maximum', async (t) => {
  const h = await hostile(t, { mqtt: { maximumInflightMessages: 10 } });
  const c = await h.raw({ version: 5, clientId: 'window', properties: [[0x21, 1000]] });
  c.send(subscribe({ version: 5 }, { topic: 'window/t', qos: 1 }));
  await c.expect(T.SUBACK);
  for (let i = 0; i < 30; i++) h.broker.publish({ topic: 'window/t', payload: `${i}`, qos: 1 });
  const first: number[] = [];
  for (let i = 0; i < 10; i++) first.push(parsePublish(await c.expect(T.PUBLISH), 5).packetId ?? 0);
  assert.equal(await c.silentFor(150), undefined, 'no more than 10 in flight');
  c.send(ack(T.PUBACK, first[0]!, 0));
  assert.equal(parsePublish(await c.expect(T.PUBLISH), 5).payload.toString(), '10');
  await h.survived();
});
