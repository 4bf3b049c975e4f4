/** Hostile PUBLISH traffic: bad topics, aliases, packet ids, QoS 2 floods, oversized properties, rate and topic limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { P, ack, hex, packet, publish, str, subscribe, u16 } from '../helpers/raw-client.js';
import { T, ackCode, closed, disconnectCode, hostile, parsePublish } from './harness.js';

test('[MQTT-3.3.2-2] a wildcard in a PUBLISH topic: v5 DISCONNECT 0x90, v3.1.1 close; nothing is delivered', async (t) => {
  const h = await hostile(t);
  const v5 = await h.raw({ version: 5, clientId: 'wild-5' });
  v5.send(publish({ version: 5, topic: 'bystander/#', payload: 'x' }));
  const [d] = await closed(v5);
  assert.equal(d?.type, T.DISCONNECT);
  assert.equal(disconnectCode(d!), 0x90);
  const v4 = await h.raw({ version: 4, clientId: 'wild-4' });
  v4.send(publish({ topic: 'bystander/+', payload: 'x', qos: 1, packetId: 1 }));
  assert.deepEqual(await closed(v4), []);
  await h.survived();
  assert.equal(h.seen.length, 1, 'only the probe reached the bystander');
});

test('[MQTT-1.5.4-1] a PUBLISH topic with invalid UTF-8 closes the connection (v5: DISCONNECT 0x81)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'topic-utf8' });
  c.send(publish({ version: 5, topic: Buffer.concat([Buffer.from('bystander/'), hex('ff fe')]), payload: 'x' }));
  const [d] = await closed(c);
  assert.equal(d?.type, T.DISCONNECT);
  assert.ok(disconnectCode(d!) >= 0x80);
  await h.survived();
});

test('[MQTT-3.3.2-9] a Topic Alias above the announced maximum gets DISCONNECT 0x94', async (t) => {
  const h = await hostile(t, { mqtt: { topicAliasMaximum: 10 } });
  const c = await h.raw({ version: 5, clientId: 'alias-high' });
  c.send(publish({ version: 5, topic: 'bystander/a', payload: 'x', properties: [[P.TopicAlias, 11]] }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x94);
  await h.survived();
});

test('[MQTT-3.3.2-8] Topic Alias 0 gets DISCONNECT 0x94', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'alias-zero' });
  c.send(publish({ version: 5, topic: 'bystander/a', payload: 'x', properties: [[P.TopicAlias, 0]] }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x94);
  await h.survived();
});

test('an empty topic with a Topic Alias never set is a protocol error (DISCONNECT 0x82)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'alias-unset' });
  c.send(publish({ version: 5, topic: '', payload: 'x', properties: [[P.TopicAlias, 3]] }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x82);
  await h.survived();
});

test('[MQTT-4.3.3-11] PUBREL for an unknown packet id: v5 PUBCOMP 0x92, v3.1.1 PUBCOMP; the connection stays', async (t) => {
  const h = await hostile(t);
  const v5 = await h.raw({ version: 5, clientId: 'pubrel-5' });
  v5.send(ack(T.PUBREL, 4242, 0));
  const comp = await v5.expect(T.PUBCOMP);
  assert.equal(comp.body.readUInt16BE(0), 4242);
  assert.equal(ackCode(comp), 0x92);
  const v4 = await h.raw({ version: 4, clientId: 'pubrel-4' });
  v4.send(ack(T.PUBREL, 7));
  assert.equal((await v4.expect(T.PUBCOMP)).body.readUInt16BE(0), 7);
  v4.send('c0 00');
  await v4.expect(T.PINGRESP);
  await h.survived();
});

test('[MQTT-4.3.3-10] a QoS 2 packet id reused before PUBREL is not delivered twice', async (t) => {
  const h = await hostile(t);
  const sub = await h.raw({ version: 4, clientId: 'reuse-sub' });
  sub.send(subscribe({ version: 4 }, { topic: 'reuse/t', qos: 0 }));
  await sub.expect(T.SUBACK);
  const c = await h.raw({ version: 4, clientId: 'reuse-pub' });
  c.send(publish({ topic: 'reuse/t', payload: 'first', qos: 2, packetId: 9 }));
  await c.expect(T.PUBREC);
  c.send(publish({ topic: 'reuse/t', payload: 'second', qos: 2, packetId: 9 }));
  await c.expect(T.PUBREC);
  assert.equal(parsePublish(await sub.expect(T.PUBLISH), 4).payload.toString(), 'first');
  assert.equal(await sub.silentFor(200), undefined, 'the reused id delivered nothing more');
  await h.survived();
});

test('[MQTT-3.3.4-7] a flood of unacknowledged QoS 2 beyond Receive Maximum gets DISCONNECT 0x93', async (t) => {
  const h = await hostile(t, { mqtt: { receiveMaximum: 50 } });
  const c = await h.raw({ version: 5, clientId: 'qos2-flood' });
  const burst: Buffer[] = [];
  for (let id = 1; id <= 60; id++) burst.push(publish({ version: 5, topic: 'flood/q2', payload: 'x', qos: 2, packetId: id }));
  c.send(Buffer.concat(burst));
  const got = await closed(c);
  assert.equal(got.filter((p) => p.type === T.PUBREC).length, 50);
  const last = got[got.length - 1];
  assert.equal(last?.type, T.DISCONNECT);
  assert.equal(disconnectCode(last!), 0x93);
  await h.survived();
});

test('a v3.1.1 QoS 2 flood that never sends PUBREL is cut off at receiveMaximum too', async (t) => {
  const h = await hostile(t, { mqtt: { receiveMaximum: 20 } });
  const c = await h.raw({ version: 4, clientId: 'qos2-flood-4' });
  const burst: Buffer[] = [];
  for (let id = 1; id <= 30; id++) burst.push(publish({ topic: 'flood/q2', payload: 'x', qos: 2, packetId: id }));
  c.send(Buffer.concat(burst));
  const got = await closed(c);
  assert.equal(got.filter((p) => p.type === T.PUBREC).length, 20);
  await h.survived();
});

test('properties larger than the packet allows are malformed (DISCONNECT 0x81)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'props-over' });
  // Property Length claims 1000 bytes inside a 20-byte PUBLISH.
  c.send(packet(0x30, str('bystander/p'), hex('e8 07'), Buffer.from('abcdef')));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x81);
  await h.survived();
});

test('thousands of User Properties beyond maximumPacketSize get DISCONNECT 0x95', async (t) => {
  const h = await hostile(t, { mqtt: { maximumPacketSize: 65_536 } });
  const c = await h.raw({ version: 5, clientId: 'props-many' });
  const props = Array.from({ length: 5000 }, (_, i) => [P.UserProperty, [`k${i}`, 'vvvvvvvvvv']] as const);
  c.send(publish({ version: 5, topic: 'bystander/p', payload: 'x', properties: props }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x95);
  await h.survived();
});

test('a property repeated where the spec forbids it is a protocol error (DISCONNECT 0x82)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'props-dup' });
  c.send(publish({ version: 5, topic: 'bystander/p', payload: 'x', properties: [[P.PayloadFormatIndicator, 0], [P.PayloadFormatIndicator, 1]] }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x82);
  await h.survived();
});

test('[MQTT-3.3.4-6] a Subscription Identifier in PUBLISH from a client is a protocol error', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'pub-subid' });
  c.send(publish({ version: 5, topic: 'bystander/p', payload: 'x', properties: [[P.SubscriptionIdentifier, 5]] }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x82);
  await h.survived();
});

test('deep topic levels: a PUBLISH over maximumTopicLevels gets PUBACK 0x90 and is not routed', async (t) => {
  const h = await hostile(t);
  const deep = `bystander/${Array.from({ length: 200 }, () => 'l').join('/')}`;
  const c = await h.raw({ version: 5, clientId: 'deep-pub' });
  c.send(publish({ version: 5, topic: deep, payload: 'deep', qos: 1, packetId: 1 }));
  assert.equal(ackCode(await c.expect(T.PUBACK)), 0x90);
  // v3.1.1 cannot be refused: acknowledged and dropped.
  const v4 = await h.raw({ version: 4, clientId: 'deep-pub-4' });
  v4.send(publish({ topic: deep, payload: 'deep', qos: 1, packetId: 2 }));
  await v4.expect(T.PUBACK);
  assert.equal(h.broker.limitsHit.topicLevels, 2);
  await h.survived();
  assert.ok(!h.seen.includes('deep'), 'not routed to the bystander');
});

test('maximumTopicLength: a longer topic gets PUBACK 0x90 (v5) and a longer filter SUBACK 0x8F', async (t) => {
  const h = await hostile(t, { mqtt: { maximumTopicLength: 100 } });
  const c = await h.raw({ version: 5, clientId: 'long-topic' });
  c.send(publish({ version: 5, topic: `bystander/${'x'.repeat(100)}`, payload: 'x', qos: 1, packetId: 1 }));
  assert.equal(ackCode(await c.expect(T.PUBACK)), 0x90);
  c.send(subscribe({ version: 5, packetId: 2 }, { topic: `long/${'y'.repeat(100)}/#`, qos: 0 }, { topic: 'short/#', qos: 0 }));
  const suback = await c.expect(T.SUBACK);
  assert.deepEqual([...suback.body.subarray(3)], [0x8f, 0x00]);
  assert.equal(h.broker.limitsHit.topicLength, 2);
  await h.survived();
});

test('publishRate: a v5 client over its rate gets DISCONNECT 0x96; a v3.1.1 client is disconnected', async (t) => {
  const h = await hostile(t, { mqtt: { publishRate: 5, publishBurst: 10 } });
  const v5 = await h.raw({ version: 5, clientId: 'rate-5' });
  const burst: Buffer[] = [];
  for (let i = 0; i < 50; i++) burst.push(publish({ version: 5, topic: 'rate/t', payload: `${i}` }));
  v5.send(Buffer.concat(burst));
  const [d] = await closed(v5);
  assert.equal(disconnectCode(d!), 0x96);
  const v4 = await h.raw({ version: 4, clientId: 'rate-4' });
  v4.send(Buffer.concat(burst.map((_, i) => publish({ topic: 'rate/t', payload: `${i}` }))));
  assert.deepEqual(await closed(v4), []);
  assert.equal(h.broker.limitsHit.publishRate, 2);
  await h.survived();
});

test('publishRate: a client within its burst and rate is not affected', async (t) => {
  const h = await hostile(t, { mqtt: { publishRate: 1000, publishBurst: 100 } });
  const c = await h.raw({ version: 5, clientId: 'rate-ok' });
  const burst: Buffer[] = [];
  for (let i = 1; i <= 100; i++) burst.push(publish({ version: 5, topic: 'rate/ok', payload: 'x', qos: 1, packetId: i }));
  c.send(Buffer.concat(burst));
  for (let i = 1; i <= 100; i++) assert.equal(ackCode(await c.expect(T.PUBACK)), 0);
  assert.equal(h.broker.limitsHit.publishRate, 0);
  await h.survived();
});

test('MQTT 5.0 4.7.2: a PUBLISH to $SYS is refused with PUBACK 0x87 and reaches nobody', async (t) => {
  const h = await hostile(t);
  const spy = await h.raw({ version: 4, clientId: 'sys-spy' });
  spy.send(subscribe({ version: 4 }, { topic: '$SYS/fake', qos: 0 }));
  await spy.expect(T.SUBACK);
  const c = await h.raw({ version: 5, clientId: 'sys-pub' });
  c.send(publish({ version: 5, topic: '$SYS/fake', payload: 'x', qos: 1, packetId: 1 }));
  assert.equal(ackCode(await c.expect(T.PUBACK)), 0x87);
  assert.equal(await spy.silentFor(200), undefined);
  await h.survived();
});

test('[MQTT-3.2.2-11] a PUBLISH above Maximum QoS gets DISCONNECT 0x9B', async (t) => {
  const h = await hostile(t, { mqtt: { maximumQoS: 1 } });
  const c = await h.raw({ version: 5, clientId: 'qos-over' });
  c.send(publish({ version: 5, topic: 'bystander/q', payload: 'x', qos: 2, packetId: 1 }));
  const [d] = await closed(c);
  assert.equal(disconnectCode(d!), 0x9b);
  await h.survived();
});

test('a PUBLISH with packet id 0 is malformed [MQTT-2.2.1-3]', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'pid-zero' });
  c.send(packet(0x32, str('bystander/z'), u16(0), Buffer.from('x')));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});
