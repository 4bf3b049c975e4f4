/** v5 Receive Maximum in both directions, and Subscription Identifiers on delivered messages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, ack, parseSuback, prop, propAll, publish, subscribe } from '../../helpers/raw-client.js';
import { broker, expectErrorClose, nextPublish, raw, rawAny, uid } from '../support.js';

test('[MQTT-3.3.4-9] the server sends no more unacknowledged QoS 1/2 PUBLISHes than the client Receive Maximum; the rest wait, none dropped', async (t) => {
  const { port } = await broker(t);
  const topic = `rm/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.ReceiveMaximum, 2]] });
  s.send(subscribe({ version: 5, packetId: 1 }, { topic, qos: 2 }));
  await s.expect(T.SUBACK);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 1; i <= 6; i++) {
    p.send(publish({ version: 5, topic, payload: `m${i}`, qos: 1, packetId: i }));
    await p.expect(T.PUBACK);
  }
  const first = [await nextPublish(s, 5), await nextPublish(s, 5)];
  assert.deepEqual(first.map((m) => m.payload.toString()), ['m1', 'm2']);
  assert.equal(await s.silentFor(300), undefined, 'a third PUBLISH while two are unacknowledged');

  // [MQTT-3.3.4-10] other packets are not held back.
  s.send(Buffer.from([0xc0, 0x00]));
  assert.equal((await s.next()).type, T.PINGRESP);

  s.send(ack(T.PUBACK, first[0]?.packetId ?? 0));
  const third = await nextPublish(s, 5);
  assert.equal(third.payload.toString(), 'm3');
  assert.equal(await s.silentFor(200), undefined, 'still at most two in flight');
  const rest = [third];
  s.send(ack(T.PUBACK, first[1]?.packetId ?? 0));
  while (rest.length < 4) {
    const m = await nextPublish(s, 5);
    rest.push(m);
    s.send(ack(T.PUBACK, rest[rest.length - 2]?.packetId ?? 0));
  }
  assert.deepEqual(rest.map((m) => m.payload.toString()), ['m3', 'm4', 'm5', 'm6'], 'queued, in order, nothing dropped');
});

test('v5: more unacknowledged QoS 2 PUBLISHes than the server Receive Maximum -> DISCONNECT 0x93 (3.3.4)', async (t) => {
  const { port } = await broker(t, { mqtt: { receiveMaximum: 2 } });
  const { client, connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(connack.properties, P.ReceiveMaximum), 2);
  for (let i = 1; i <= 2; i++) {
    client.send(publish({ version: 5, topic: 'rm/in', payload: 'x', qos: 2, packetId: i }));
    await client.expect(T.PUBREC);
  }
  client.send(publish({ version: 5, topic: 'rm/in', payload: 'x', qos: 2, packetId: 3 }));
  await expectErrorClose(client, 5, [0x93]);
});

test('v5: within the server Receive Maximum, completing a QoS 2 flow frees a slot', async (t) => {
  const { port } = await broker(t, { mqtt: { receiveMaximum: 1 } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 1; i <= 3; i++) {
    c.send(publish({ version: 5, topic: 'rm/in', payload: 'x', qos: 2, packetId: i }));
    await c.expect(T.PUBREC);
    c.send(ack(T.PUBREL, i, 0));
    await c.expect(T.PUBCOMP);
  }
});

test('[MQTT-3.3.4-5] separate deliveries for non-overlapping subscriptions carry their own Subscription Identifier', async (t) => {
  const { port } = await broker(t);
  const b = uid('sid');
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1, properties: [[P.SubscriptionIdentifier, 7]] }, { topic: `${b}/a`, qos: 0 }));
  assert.deepEqual(parseSuback(await c.expect(T.SUBACK), 5).codes, [0]);
  c.send(subscribe({ version: 5, packetId: 2, properties: [[P.SubscriptionIdentifier, 268_435_455]] }, { topic: `${b}/b`, qos: 0 }));
  assert.deepEqual(parseSuback(await c.expect(T.SUBACK), 5).codes, [0]);
  c.send(subscribe({ version: 5, packetId: 3 }, { topic: `${b}/c`, qos: 0 }));
  await c.expect(T.SUBACK);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (const x of ['a', 'b', 'c']) p.send(publish({ version: 5, topic: `${b}/${x}`, payload: x }));
  const got = [await nextPublish(c, 5), await nextPublish(c, 5), await nextPublish(c, 5)];
  assert.deepEqual(propAll(got[0]?.properties ?? [], P.SubscriptionIdentifier), [7]);
  assert.deepEqual(propAll(got[1]?.properties ?? [], P.SubscriptionIdentifier), [268_435_455]);
  assert.deepEqual(propAll(got[2]?.properties ?? [], P.SubscriptionIdentifier), [], 'none without an identifier');
});

test('[MQTT-3.3.4-6] a PUBLISH from a client carrying a Subscription Identifier is a Protocol Error', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: 'x', payload: 'x', properties: [[P.SubscriptionIdentifier, 3]] }));
  // The spec names no code for this one; Protocol Error is the natural one, Malformed is tolerated.
  await expectErrorClose(c, 5, [0x82, 0x81]);
});

test('[MQTT-3.3.2-5] a message that expires while waiting behind the client Receive Maximum is not sent', async (t) => {
  const { port } = await broker(t);
  const topic = `rmexp/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.ReceiveMaximum, 1]] });
  s.send(subscribe({ version: 5, packetId: 1 }, { topic, qos: 1 }));
  await s.expect(T.SUBACK);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'first', qos: 1, packetId: 1 }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic, payload: 'expires', qos: 1, packetId: 2, properties: [[P.MessageExpiryInterval, 1]] }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic, payload: 'last', qos: 1, packetId: 3 }));
  await p.expect(T.PUBACK);
  const first = await nextPublish(s, 5);
  assert.equal(first.payload.toString(), 'first');
  await new Promise((r) => setTimeout(r, 2100));
  s.send(ack(T.PUBACK, first.packetId ?? 0));
  const next = await nextPublish(s, 5);
  assert.equal(next.payload.toString(), 'last', 'the expired message was dropped from the queue');
});
