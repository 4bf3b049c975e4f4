/** CONNECT / CONNACK: first packet, protocol name and level, client identifiers, CONNACK contents. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  P,
  T,
  connect,
  packet,
  parseConnack,
  parseDisconnect,
  pingreq,
  prop,
  rawSubscribe,
  publish,
  str,
  u16,
  type Version,
} from '../../helpers/raw-client.js';
import { broker, expectErrorClose, nextPublish, pub1, raw, rawAny, socket, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

test('[MQTT-3.1.0-1] a PINGREQ before CONNECT closes the connection without a response', async (t) => {
  const { port } = await broker(t);
  const c = await socket(t, port);
  c.send(pingreq());
  const unread = await c.waitClose(3000);
  assert.deepEqual(unread.map((p) => p.type), [], 'nothing may be sent to a client that has not connected');
});

test('[MQTT-3.1.0-1] a PUBLISH before CONNECT is not routed and closes the connection', async (t) => {
  const { port } = await broker(t);
  const topic = `pre/${uid()}`;
  const s = await raw(t, port, { clientId: uid() });
  await sub(s, 4, topic, 0);
  const c = await socket(t, port);
  c.send(publish({ topic, payload: 'sneaky' }));
  await c.waitClose(3000);
  assert.equal(await s.silentFor(300), undefined, 'the message must not be delivered');
});

for (const v of VERSIONS) {
  test(`[MQTT-3.1.0-2] v${v}: a second CONNECT is a Protocol Error and closes the connection`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    c.send(connect({ version: v, clientId: uid() }));
    await expectErrorClose(c, v, [0x82]);
  });
}

test('[MQTT-3.1.2-1] v4: a wrong protocol name is not accepted and the connection is closed', async (t) => {
  const { port } = await broker(t);
  const c = await socket(t, port);
  c.send(packet(0x10, str('MQTX'), Buffer.from([4, 0x02]), u16(0), str(uid())));
  await expectErrorClose(c, 4, [], 'connect');
});

test('[MQTT-3.1.2-1] v5: a wrong protocol name is not accepted; a CONNACK, if any, is 0x84', async (t) => {
  const { port } = await broker(t);
  const c = await socket(t, port);
  c.send(packet(0x10, str('MQTX'), Buffer.from([5, 0x02]), u16(0), Buffer.from([0]), str(uid())));
  await expectErrorClose(c, 5, [0x84], 'connect');
});

test('[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK return code 0x01 and a close', async (t) => {
  const { port } = await broker(t);
  const c = await socket(t, port);
  c.send(packet(0x10, str('MQTT'), Buffer.from([6, 0x02]), u16(0), str(uid())));
  const ack = await c.expect(T.CONNACK);
  assert.equal(ack.body.length, 2, 'a v3-format CONNACK (the client level is unknown)');
  assert.equal(ack.body[1], 0x01, 'unacceptable protocol version');
  await c.waitClose(3000);
});

for (const v of VERSIONS) {
  test(`[MQTT-3.1.2-3] v${v}: the reserved CONNECT flag set is a Malformed Packet and closes the connection`, async (t) => {
    const { port } = await broker(t);
    const c = await socket(t, port);
    c.send(connect({ version: v, clientId: uid(), extraFlags: 0x01 }));
    await expectErrorClose(c, v, [0x81], 'connect');
  });
}

test('MQTT 3.1 (MQIsdp, level 3): CONNECT is accepted and publish/subscribe works', async (t) => {
  const { port } = await broker(t);
  const topic = `v31/${uid()}`;
  const s = await raw(t, port, { version: 3, clientId: uid() });
  await sub(s, 3, topic, 1);
  const p = await raw(t, port, { version: 3, clientId: uid() });
  await pub1(p, 3, topic, 'hello 3.1', 3);
  const got = await nextPublish(s, 3);
  assert.equal(got.topic, topic);
  assert.equal(got.qos, 1);
  assert.equal(got.payload.toString(), 'hello 3.1');
});

test('[MQTT-3.1.3-5] a 23-character [0-9a-zA-Z] client identifier is accepted', async (t) => {
  const { port } = await broker(t);
  for (const v of [3, 4, 5] as const) {
    const id = `Ab${v}${'0123456789abcdefghij'}`;
    assert.equal(id.length, 23);
    const { connack } = await rawAny(t, port, { version: v, clientId: id });
    assert.equal(connack.code, 0, `v${v}`);
  }
});

test('[MQTT-3.1.3-6] v4: an empty client id with CleanSession=1 is accepted (a unique id is assigned)', async (t) => {
  const { port } = await broker(t);
  const a = await rawAny(t, port, { version: 4, clientId: '', clean: true });
  const b = await rawAny(t, port, { version: 4, clientId: '', clean: true });
  assert.equal(a.connack.code, 0);
  assert.equal(b.connack.code, 0);
  // Two anonymous clients must not take each other over.
  a.client.send(pingreq());
  await a.client.expect(T.PINGRESP);
  b.client.send(pingreq());
  await b.client.expect(T.PINGRESP);
});

test('[MQTT-3.1.3-8] v4: an empty client id with CleanSession=0 gets CONNACK 0x02 and a close', async (t) => {
  const { port } = await broker(t);
  const { client, connack } = await rawAny(t, port, { version: 4, clientId: '', clean: false });
  assert.equal(connack.code, 0x02, 'identifier rejected');
  assert.equal(connack.sessionPresent, false, '[MQTT-3.2.2-4] Session Present is 0 with a non-zero return code');
  await client.waitClose(3000);
});

test('[MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16] v5: an empty client id gets a unique Assigned Client Identifier', async (t) => {
  const { port } = await broker(t);
  const a = await rawAny(t, port, { version: 5, clientId: '', clean: true });
  const b = await rawAny(t, port, { version: 5, clientId: '', clean: true });
  assert.equal(a.connack.code, 0);
  assert.equal(b.connack.code, 0);
  const ida = prop(a.connack.properties, P.AssignedClientIdentifier);
  const idb = prop(b.connack.properties, P.AssignedClientIdentifier);
  assert.equal(typeof ida, 'string');
  assert.equal(typeof idb, 'string');
  assert.ok((ida as string).length > 0);
  assert.notEqual(ida, idb, 'assigned identifiers must be unique');
});

test('[MQTT-3.2.2-16] v5: a client that supplies its id gets no Assigned Client Identifier', async (t) => {
  const { port } = await broker(t);
  const { connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(connack.properties, P.AssignedClientIdentifier), undefined);
});

for (const v of [3, 4, 5] as const) {
  test(`[MQTT-3.2.0-1] [MQTT-3.2.2-1] v${v}: CONNACK is the first packet, reserved flag bits are 0`, async (t) => {
    const { port } = await broker(t);
    const c = await socket(t, port);
    c.send(connect({ version: v, clientId: uid() }));
    const first = await c.next();
    assert.equal(first.type, T.CONNACK);
    assert.equal(first.flags, 0, 'CONNACK fixed header flags are reserved (0)');
    const ack = parseConnack(first, v);
    assert.equal(ack.flagsByte & 0xfe, 0, 'acknowledge flags bits 7-1 are reserved');
    assert.equal(ack.code, 0);
    if (v !== 5) assert.equal(first.body.length, 2, 'v3 CONNACK remaining length is 2');
  });
}

test('[MQTT-3.2.0-2] v5: the server sends only one CONNACK', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(pingreq());
  const p = await c.next();
  assert.equal(p.type, T.PINGRESP, `got ${p.raw.toString('hex')}`);
});

test('v5 CONNACK announces the configured server limits (3.2.2.3)', async (t) => {
  const { port } = await broker(t, {
    mqtt: {
      maximumQoS: 1,
      retainAvailable: false,
      receiveMaximum: 10,
      topicAliasMaximum: 5,
      maximumPacketSize: 2000,
      wildcardSubscriptionAvailable: false,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifierAvailable: false,
    },
  });
  const { connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(connack.code, 0);
  const pr = connack.properties;
  assert.equal(prop(pr, P.MaximumQoS), 1, '[MQTT-3.2.2-9] Maximum QoS');
  assert.equal(prop(pr, P.RetainAvailable), 0, 'Retain Available');
  assert.equal(prop(pr, P.ReceiveMaximum), 10, 'Receive Maximum');
  assert.equal(prop(pr, P.TopicAliasMaximum), 5, 'Topic Alias Maximum');
  assert.equal(prop(pr, P.MaximumPacketSize), 2000, 'Maximum Packet Size');
  assert.equal(prop(pr, P.WildcardSubscriptionAvailable), 0, 'Wildcard Subscription Available');
  assert.equal(prop(pr, P.SharedSubscriptionAvailable), 0, 'Shared Subscription Available');
  assert.equal(prop(pr, P.SubscriptionIdentifierAvailable), 0, 'Subscription Identifiers Available');
  const ids = pr.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'no property appears twice');
});

test('[MQTT-3.2.2-10] v5: a server with Maximum QoS 1 still accepts a SUBSCRIBE for QoS 2, granting at most 1', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  const codes = await rawSubscribe(c, 5, 1, { topic: 'a/b', qos: 2 });
  assert.deepEqual(codes, [0x01], 'granted QoS 1');
});

test('[MQTT-3.2.2-12] v5: a Will QoS above Maximum QoS is refused with CONNACK 0x9B', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  const { client, connack } = await rawAny(t, port, {
    version: 5,
    clientId: uid(),
    will: { topic: 'w/q2', payload: 'x', qos: 2 },
  });
  assert.equal(connack.code, 0x9b);
  assert.equal(connack.sessionPresent, false, '[MQTT-3.2.2-6]');
  await client.waitClose(3000);
});

test('[MQTT-3.2.2-13] v5: a retained Will when retain is unavailable is refused with CONNACK 0x9A', async (t) => {
  const { port } = await broker(t, { mqtt: { retainAvailable: false } });
  const { client, connack } = await rawAny(t, port, {
    version: 5,
    clientId: uid(),
    will: { topic: 'w/r', payload: 'x', retain: true },
  });
  assert.equal(connack.code, 0x9a);
  await client.waitClose(3000);
});

test('[MQTT-3.1.4-6] v5: after a refused CONNECT nothing else the client sent is processed', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  const topic = `refused/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 0);
  const c = await socket(t, port);
  c.send(
    Buffer.concat([
      connect({ version: 5, clientId: uid(), will: { topic: 'w', payload: 'x', qos: 2 } }),
      publish({ version: 5, topic, payload: 'after refusal' }),
    ]),
  );
  const ack = parseConnack(await c.expect(T.CONNACK), 5);
  assert.ok(ack.code >= 0x80);
  await c.waitClose(3000);
  assert.equal(await s.silentFor(300), undefined, 'the PUBLISH after a refused CONNECT must not be routed');
});

test('connect timeout: a socket that never sends CONNECT is closed (3.1: the Server SHOULD close it)', async (t) => {
  const { port } = await broker(t, { mqtt: { connectTimeout: 300 } });
  const c = await socket(t, port);
  const started = Date.now();
  await c.waitClose(2500);
  assert.ok(Date.now() - started >= 250, 'not before the configured timeout');
});

test('MQTT 3.1: an empty client id is rejected with CONNACK 0x02 (3.1 CONNECT: the id is 1 to 23 characters)', async (t) => {
  const { port } = await broker(t);
  const { client, connack } = await rawAny(t, port, { version: 3, clientId: '', clean: true });
  assert.equal(connack.code, 0x02, 'identifier rejected');
  await client.waitClose(3000);
});

test('MQTT 3.1: a client id longer than 23 characters is rejected with CONNACK 0x02 (3.1 CONNECT)', async (t) => {
  const { port } = await broker(t);
  const { client, connack } = await rawAny(t, port, { version: 3, clientId: 'a'.repeat(24) });
  assert.equal(connack.code, 0x02, 'identifier rejected');
  await client.waitClose(3000);
});

for (const v of [3, 4, 5] as const) {
  test(`[MQTT-3.12.4-1] v${v}: PINGREQ is answered with PINGRESP`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    c.send(pingreq());
    const p = await c.expect(T.PINGRESP);
    assert.equal(p.raw.toString('hex'), 'd000');
  });
}

test('shutdown: v5 clients get DISCONNECT 0x8B (Server shutting down), v4 clients are closed', async (t) => {
  const b = await broker(t);
  const c5 = await raw(t, b.port, { version: 5, clientId: uid() });
  const c4 = await raw(t, b.port, { version: 4, clientId: uid() });
  const closing = b.close();
  const unread5 = await c5.waitClose(3000);
  const unread4 = await c4.waitClose(3000);
  await closing;
  const d = unread5.find((p) => p.type === T.DISCONNECT);
  assert.ok(d, 'v5 DISCONNECT before the close');
  assert.equal(parseDisconnect(d).reasonCode, 0x8b);
  assert.equal(unread4.filter((p) => p.type === T.DISCONNECT).length, 0, 'no DISCONNECT to a v3 client');
});

test('[MQTT-3.1.3-7] [MQTT-3.1.3-8] v5: an empty id with Clean Start 0 is refused with 0x85, or its assigned id names a resumable session', async (t) => {
  const { port } = await broker(t);
  const a = await rawAny(t, port, { version: 5, clientId: '', clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  if (a.connack.code !== 0) {
    // The server MAY refuse a zero-length id; then it is 0x85 and a close.
    assert.equal(a.connack.code, 0x85);
    await a.client.waitClose();
    return;
  }
  const id = prop(a.connack.properties, P.AssignedClientIdentifier);
  assert.equal(typeof id, 'string');
  a.client.destroy();
  const b = await rawAny(t, port, { version: 5, clientId: id as string, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  assert.equal(b.connack.sessionPresent, true);
});
