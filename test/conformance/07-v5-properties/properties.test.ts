/** v5 properties: pass-through, message expiry, maximum packet size, Request Problem/Response Information, AUTH. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, ack, parseAck, parsePublish, parseSuback, prop, propAll, publish, unsubscribe } from '../../helpers/raw-client.js';
import { broker, delay, expectErrorClose, nextPublish, raw, rawAny, sub, uid } from '../support.js';

test('[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] publish properties are forwarded unaltered, user properties in order', async (t) => {
  const { port } = await broker(t);
  const topic = `props/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  const corr = Buffer.from([0, 0xff, 0x10, 0x80]);
  p.send(
    publish({
      version: 5,
      topic,
      payload: 'héllo',
      qos: 1,
      packetId: 1,
      properties: [
        [P.PayloadFormatIndicator, 1],
        [P.UserProperty, ['z', 'last-key-first']],
        [P.ContentType, 'text/plain; charset=utf-8'],
        [P.ResponseTopic, 'reply/to/me'],
        [P.UserProperty, ['a', '1']],
        [P.CorrelationData, corr],
        [P.UserProperty, ['a', '2']],
        [P.UserProperty, ['', 'empty key']],
      ],
    }),
  );
  await p.expect(T.PUBACK);
  const got = await nextPublish(s, 5);
  assert.equal(got.payload.toString(), 'héllo');
  assert.equal(prop(got.properties, P.PayloadFormatIndicator), 1);
  assert.equal(prop(got.properties, P.ContentType), 'text/plain; charset=utf-8');
  assert.equal(prop(got.properties, P.ResponseTopic), 'reply/to/me');
  assert.deepEqual(prop(got.properties, P.CorrelationData), corr);
  assert.deepEqual(propAll(got.properties, P.UserProperty), [
    ['z', 'last-key-first'],
    ['a', '1'],
    ['a', '2'],
    ['', 'empty key'],
  ]);
});

test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] message expiry: expired messages are not delivered, others carry the remaining time', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const topic = `exp/${uid()}`;
  const a = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  await sub(a, 5, topic, 1);
  a.destroy();
  await delay(100);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'short', qos: 1, packetId: 1, properties: [[P.MessageExpiryInterval, 1]] }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic, payload: 'long', qos: 1, packetId: 2, properties: [[P.MessageExpiryInterval, 30]] }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic, payload: 'forever', qos: 1, packetId: 3 }));
  await p.expect(T.PUBACK);
  await delay(2100);
  const b = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  const long = await nextPublish(b, 5);
  assert.equal(long.payload.toString(), 'long', 'the expired message was dropped');
  const left = prop(long.properties, P.MessageExpiryInterval);
  assert.ok(typeof left === 'number' && left <= 28 && left >= 1, `remaining expiry ${String(left)}, expected 30 minus ~2 s`);
  b.send(ack(T.PUBACK, long.packetId ?? 0));
  const forever = await nextPublish(b, 5);
  assert.equal(forever.payload.toString(), 'forever');
  assert.equal(prop(forever.properties, P.MessageExpiryInterval), undefined, 'no expiry was set, none is added');
});

test('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the client Maximum Packet Size is not sent to it', async (t) => {
  const { port } = await broker(t);
  const topic = `mps/${uid()}`;
  const small = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.MaximumPacketSize, 128]] });
  await sub(small, 5, topic, 1);
  const big = await raw(t, port, { version: 5, clientId: uid() });
  await sub(big, 5, topic, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: Buffer.alloc(300, 0x61), qos: 1, packetId: 1 }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic, payload: 'fits', qos: 1, packetId: 2 }));
  await p.expect(T.PUBACK);
  assert.equal((await nextPublish(big, 5)).payload.length, 300, 'others still get the big message');
  const first = await small.next();
  assert.ok(first.raw.length <= 128, `sent a ${first.raw.length}-byte packet over the 128-byte limit`);
  const m = parsePublish(first, 5);
  assert.equal(m.payload.toString(), 'fits', 'the too-large one was discarded, the next one delivered');
});

test('v5: a packet larger than the server Maximum Packet Size -> DISCONNECT 0x95 (3.2.2.3.6)', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumPacketSize: 256 } });
  const { client, connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(connack.properties, P.MaximumPacketSize), 256);
  client.send(publish({ version: 5, topic: 'big', payload: Buffer.alloc(400), qos: 0 }));
  await expectErrorClose(client, 5, [0x95]);
});

test('[MQTT-3.1.2-29] Request Problem Information 0: no Reason String or User Property on UNSUBACK', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.RequestProblemInformation, 0]] });
  c.send(unsubscribe({ version: 5, packetId: 1 }, 'not/subscribed'));
  const u = parseSuback(await c.expect(T.UNSUBACK), 5);
  assert.deepEqual(u.codes, [0x11]);
  assert.equal(prop(u.properties, P.ReasonString), undefined);
  assert.equal(prop(u.properties, P.UserProperty), undefined);
  c.send(ack(T.PUBREL, 999, 0));
  const comp = parseAck(await c.expect(T.PUBCOMP));
  assert.equal(prop(comp.properties, P.ReasonString), undefined, 'nor on PUBCOMP');
});

test('[MQTT-3.1.2-28] Request Response Information 0 (default): no Response Information in CONNACK', async (t) => {
  const { port } = await broker(t);
  const a = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(a.connack.properties, P.ResponseInformation), undefined);
  const b = await rawAny(t, port, { version: 5, clientId: uid(), properties: [[P.RequestResponseInformation, 0]] });
  assert.equal(prop(b.connack.properties, P.ResponseInformation), undefined);
});

test('[MQTT-4.12.0-1] an unsupported Authentication Method is refused with CONNACK 0x8C or 0x87 and a close', async (t) => {
  const { port } = await broker(t);
  const { client, connack } = await rawAny(t, port, {
    version: 5,
    clientId: uid(),
    properties: [[P.AuthenticationMethod, 'X-NO-SUCH-METHOD']],
  });
  assert.ok(connack.code === 0x8c || connack.code === 0x87, `CONNACK 0x${connack.code.toString(16)}`);
  assert.equal(connack.sessionPresent, false);
  await client.waitClose();
});

test('v5: Payload Format Indicator 0 and absent stay as sent', async (t) => {
  const { port } = await broker(t);
  const topic = `pfi/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: Buffer.from([0xff, 0xfe]), properties: [[P.PayloadFormatIndicator, 0]] }));
  p.send(publish({ version: 5, topic, payload: Buffer.from([0xff]) }));
  const a = await nextPublish(s, 5);
  const b = await nextPublish(s, 5);
  assert.ok([undefined, 0].includes(prop(a.properties, P.PayloadFormatIndicator) as number | undefined));
  assert.deepEqual(a.payload, Buffer.from([0xff, 0xfe]), 'binary payload unchanged');
  assert.equal(prop(b.properties, P.PayloadFormatIndicator), undefined);
});

test('[MQTT-3.1.2-24] a retained message larger than the client Maximum Packet Size is not sent on subscribe', async (t) => {
  const { port } = await broker(t);
  const b = `mpsr/${uid()}`;
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic: `${b}/big`, payload: Buffer.alloc(500), qos: 1, packetId: 1, retain: true }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic: `${b}/small`, payload: 's', qos: 1, packetId: 2, retain: true }));
  await p.expect(T.PUBACK);
  const c = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.MaximumPacketSize, 200]] });
  await sub(c, 5, `${b}/#`, 0);
  const m = await c.next();
  assert.ok(m.raw.length <= 200, `${m.raw.length}-byte packet sent`);
  assert.equal(parsePublish(m, 5).topic, `${b}/small`);
  assert.equal(await c.silentFor(300), undefined);
});

test('v5 properties are stripped for a v3.1.1 subscriber (a well-formed v4 PUBLISH)', async (t) => {
  const { port } = await broker(t);
  const topic = `strip/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(
    publish({
      version: 5,
      topic,
      payload: 'plain',
      qos: 1,
      packetId: 1,
      properties: [[P.UserProperty, ['k', 'v']], [P.ContentType, 'text/plain'], [P.MessageExpiryInterval, 100]],
    }),
  );
  await p.expect(T.PUBACK);
  const raw4 = await s.expect(T.PUBLISH);
  const got = parsePublish(raw4, 4);
  assert.equal(got.payload.toString(), 'plain', `bytes ${raw4.raw.toString('hex')}`);
});

test('[MQTT-3.3.4-9] v5: a QoS 2 message counts against Receive Maximum until PUBCOMP, not PUBREC', async (t) => {
  const { port } = await broker(t);
  const topic = `rm2/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.ReceiveMaximum, 1]] });
  await sub(s, 5, topic, 2);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 1; i <= 2; i++) {
    p.send(publish({ version: 5, topic, payload: `m${i}`, qos: 2, packetId: i }));
    await p.expect(T.PUBREC);
    p.send(ack(T.PUBREL, i, 0));
    await p.expect(T.PUBCOMP);
  }
  const first = await nextPublish(s, 5);
  assert.equal(first.payload.toString(), 'm1');
  s.send(ack(T.PUBREC, first.packetId ?? 0, 0));
  const rel = await s.next();
  assert.equal(rel.type, T.PUBREL, 'only the PUBREL may come while m1 awaits PUBCOMP');
  assert.equal(await s.silentFor(300), undefined, 'm2 must wait for the PUBCOMP');
  s.send(ack(T.PUBCOMP, first.packetId ?? 0, 0));
  assert.equal((await nextPublish(s, 5)).payload.toString(), 'm2');
});
