/** PUBLISH delivery at QoS 0, 1 and 2, downgrade, packet identifiers, DUP, ordering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, ack, connect, parseAck, parsePublish, pingreq, publish, rawSubscribe, subscribe, type Version } from '../../helpers/raw-client.js';
import { ackPublish, broker, expectErrorClose, nextPublish, raw, socket, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

for (const v of VERSIONS) {
  // Rule ids that were renumbered between 3.1.1 and 5.0.
  const ackSameId = v === 4 ? 'MQTT-2.3.1-6' : 'MQTT-2.2.1-5';
  const serverIds = v === 4 ? 'MQTT-2.3.1-1' : 'MQTT-2.2.1-4';
  const ordered = v === 4 ? 'MQTT-4.6.0-6' : 'MQTT-4.6.0-5';
  const downgrade = v === 4 ? 'MQTT-3.8.4-6' : 'MQTT-3.8.4-8';
  test(`[MQTT-4.3.1-1] [MQTT-3.3.1-2] v${v}: QoS 0 is delivered with DUP=0 and no packet id`, async (t) => {
    const { port } = await broker(t);
    const topic = `q0/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'zero', qos: 0 }));
    const got = await nextPublish(s, v);
    assert.equal(got.qos, 0);
    assert.equal(got.dup, false);
    assert.equal(got.packetId, undefined);
    assert.equal(got.payload.toString(), 'zero');
    assert.equal(got.topic, topic, '[MQTT-3.3.2-3] the topic name matches the subscription');
  });

  test(`[MQTT-4.3.2-2] [${ackSameId}] v${v}: QoS 1 PUBLISH is answered by a PUBACK with the same packet id`, async (t) => {
    const { port } = await broker(t);
    const topic = `q1/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'one', qos: 1, packetId: 0x1234 }));
    const pa = await p.expect(T.PUBACK);
    assert.equal(pa.flags, 0, 'PUBACK flags reserved');
    const a = parseAck(pa);
    assert.equal(a.packetId, 0x1234);
    assert.equal(a.reasonCode, 0x00, 'success: there is a matching subscriber');
    const got = await nextPublish(s, v);
    assert.equal(got.qos, 1);
    assert.equal(got.dup, false, '[MQTT-4.3.2-1] first delivery has DUP=0');
    assert.ok(got.packetId !== undefined && got.packetId !== 0, 'non-zero packet id');
    assert.equal(got.payload.toString(), 'one');
  });

  test(`[MQTT-4.3.3-1] [MQTT-4.3.3-2] [MQTT-3.6.1-1] v${v}: QoS 2 flow in both directions`, async (t) => {
    const { port } = await broker(t);
    const topic = `q2/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'two', qos: 2, packetId: 77 }));
    const rec = await p.expect(T.PUBREC);
    assert.equal(rec.flags, 0);
    assert.equal(parseAck(rec).packetId, 77);
    p.send(ack(T.PUBREL, 77, v === 5 ? 0 : undefined));
    const comp = await p.expect(T.PUBCOMP);
    assert.equal(comp.flags, 0);
    assert.equal(parseAck(comp).packetId, 77);

    const got = await nextPublish(s, v);
    assert.equal(got.qos, 2);
    assert.equal(got.dup, false);
    const id = got.packetId ?? 0;
    assert.ok(id !== 0);
    s.send(ack(T.PUBREC, id));
    const rel = await s.expect(T.PUBREL);
    assert.equal(rel.flags, 0x02, '[MQTT-3.6.1-1] PUBREL fixed header flags are 0010');
    assert.equal(parseAck(rel).packetId, id, 'PUBREL carries the PUBLISH packet id');
    s.send(ack(T.PUBCOMP, id));
    assert.equal(await s.silentFor(300), undefined, 'no duplicate after PUBCOMP');
  });

  test(`[MQTT-4.3.3-2] v${v}: a QoS 2 PUBLISH resent with DUP=1 before PUBREL is delivered once`, async (t) => {
    const { port } = await broker(t);
    const topic = `q2dup/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'once', qos: 2, packetId: 5 }));
    assert.equal(parseAck(await p.expect(T.PUBREC)).packetId, 5);
    p.send(publish({ version: v, topic, payload: 'once', qos: 2, packetId: 5, dup: true }));
    assert.equal(parseAck(await p.expect(T.PUBREC)).packetId, 5, 'the resend is acknowledged with PUBREC again');
    p.send(ack(T.PUBREL, 5));
    await p.expect(T.PUBCOMP);
    const first = await nextPublish(s, v);
    await ackPublish(s, first);
    assert.equal(await s.silentFor(400), undefined, 'exactly one copy delivered');
  });

  test(`[MQTT-4.3.3-2] v${v}: after PUBCOMP the same packet id carries a new message`, async (t) => {
    const { port } = await broker(t);
    const topic = `reuse/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 0);
    const p = await raw(t, port, { version: v, clientId: uid() });
    for (const payload of ['first', 'second']) {
      p.send(publish({ version: v, topic, payload, qos: 2, packetId: 9 }));
      await p.expect(T.PUBREC);
      p.send(ack(T.PUBREL, 9));
      await p.expect(T.PUBCOMP);
      assert.equal((await nextPublish(s, v)).payload.toString(), payload);
    }
    // Same for QoS 1 after PUBACK.
    for (const payload of ['third', 'fourth']) {
      p.send(publish({ version: v, topic, payload, qos: 1, packetId: 9 }));
      await p.expect(T.PUBACK);
      assert.equal((await nextPublish(s, v)).payload.toString(), payload);
    }
  });

  test(`[${downgrade}] v${v}: delivery QoS is the minimum of the published and the granted QoS`, async (t) => {
    const { port } = await broker(t);
    const base = `down/${uid()}`;
    for (const granted of [0, 1, 2]) {
      for (const published of [0, 1, 2]) {
        const topic = `${base}/${granted}${published}`;
        const s = await raw(t, port, { version: v, clientId: uid() });
        await sub(s, v, topic, granted);
        const p = await raw(t, port, { version: v, clientId: uid() });
        p.send(publish({ version: v, topic, payload: 'x', qos: published, packetId: 3 }));
        const got = await nextPublish(s, v);
        assert.equal(got.qos, Math.min(granted, published), `granted ${granted}, published ${published}`);
        await ackPublish(s, got);
        if (published === 2) {
          await p.expect(T.PUBREC);
          p.send(ack(T.PUBREL, 3));
          await p.expect(T.PUBCOMP);
        } else if (published === 1) await p.expect(T.PUBACK);
        s.destroy();
        p.destroy();
      }
    }
  });

  test(`[MQTT-3.3.1-3] v${v}: the DUP flag of a forwarded PUBLISH is set independently of the incoming one`, async (t) => {
    const { port } = await broker(t);
    const topic = `dupin/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'x', qos: 1, packetId: 4, dup: true }));
    await p.expect(T.PUBACK);
    const got = await nextPublish(s, v);
    assert.equal(got.dup, false, 'first transmission to the subscriber has DUP=0');
  });

  test(`[${serverIds}] [${ordered}] v${v}: unacknowledged deliveries use distinct non-zero ids, in order`, async (t) => {
    const { port } = await broker(t);
    const topic = `ids/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const p = await raw(t, port, { version: v, clientId: uid() });
    for (let i = 1; i <= 8; i++) {
      p.send(publish({ version: v, topic, payload: `m${i}`, qos: 1, packetId: i }));
      await p.expect(T.PUBACK);
    }
    const ids = new Set<number>();
    for (let i = 1; i <= 8; i++) {
      const got = await nextPublish(s, v);
      assert.equal(got.payload.toString(), `m${i}`, 'messages from one publisher arrive in order');
      assert.ok(got.packetId !== undefined && got.packetId !== 0);
      assert.ok(!ids.has(got.packetId), `packet id ${got.packetId} reused while unacknowledged`);
      ids.add(got.packetId);
    }
  });
}

test('v5 PUBCOMP 0x92 answers a PUBREL for an unknown packet id (3.7.2.1)', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(ack(T.PUBREL, 4321, 0));
  const comp = parseAck(await c.expect(T.PUBCOMP));
  assert.equal(comp.packetId, 4321);
  assert.equal(comp.reasonCode, 0x92, 'Packet Identifier not found');
});

test('[MQTT-4.3.3-2] v4: a PUBREL for an unknown packet id is still answered with PUBCOMP', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 4, clientId: uid() });
  c.send(ack(T.PUBREL, 4321));
  assert.equal(parseAck(await c.expect(T.PUBCOMP)).packetId, 4321);
});

test('v5 PUBACK may carry 0x10 No matching subscribers; any other code is wrong (3.4.2.1)', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: `nobody/${uid()}`, payload: 'x', qos: 1, packetId: 1 }));
  const a = parseAck(await c.expect(T.PUBACK));
  assert.ok(a.reasonCode === 0x00 || a.reasonCode === 0x10, `reason 0x${a.reasonCode.toString(16)}`);
});

test('[MQTT-3.3.2-3] a wildcard subscriber receives the publisher topic name, not the filter', async (t) => {
  const { port } = await broker(t);
  const base = uid('w');
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, `${base}/+/x/#`, 0);
  const p = await raw(t, port, { version: 4, clientId: uid() });
  p.send(publish({ topic: `${base}/a/x/b/c`, payload: 'deep' }));
  assert.equal((await nextPublish(s, 4)).topic, `${base}/a/x/b/c`);
});

test('v5: a PUBLISH above the server Maximum QoS -> DISCONNECT 0x9B QoS not supported (3.2.2.3.4)', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: 'q', payload: 'x', qos: 2, packetId: 1 }));
  await expectErrorClose(c, 5, [0x9b]);
});

test('v4: with Maximum QoS 1 a QoS 2 PUBLISH is delivered at most at QoS 1 (granted QoS is capped)', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  const topic = `mq1/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  assert.deepEqual(await rawSubscribe(s, 4, 1, { topic, qos: 2 }), [1]);
  const p = await raw(t, port, { version: 4, clientId: uid() });
  p.send(publish({ topic, payload: 'x', qos: 1, packetId: 1 }));
  await p.expect(T.PUBACK);
  assert.equal((await nextPublish(s, 4)).qos, 1);
});

test('payload sizes around the Remaining Length byte boundaries arrive intact', async (t) => {
  const { port } = await broker(t);
  const topic = `len/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  // Remaining length = 2 + topic + 2 (packet id) + 1 (v5 property length) + payload.
  const overhead = 2 + Buffer.byteLength(topic) + 2 + 1;
  const sizes = [0, 127 - overhead, 128 - overhead, 16_383 - overhead, 16_384 - overhead, 300_000];
  for (const [i, n] of sizes.entries()) {
    const payload = Buffer.alloc(n, i + 1);
    p.send(publish({ version: 5, topic, payload, qos: 1, packetId: i + 1 }));
    await p.expect(T.PUBACK);
    const got = await nextPublish(s, 4);
    assert.equal(got.payload.length, n);
    assert.ok(got.payload.equals(payload), `payload of ${n} bytes changed`);
    await ackPublish(s, got);
  }
});

test('[MQTT-1.5.3-1] a 65535-byte topic and multi-byte UTF-8 topics are routed unchanged', async (t) => {
  const { port } = await broker(t);
  const prefix = uid('L');
  const long = `${prefix}/${'x'.repeat(65_535 - prefix.length - 1)}`;
  assert.equal(Buffer.byteLength(long), 65_535);
  const topics = ['température/°C/😀', 'ﬁlter/日本語', long];
  for (const topic of topics) {
    const s = await raw(t, port, { version: 4, clientId: uid() });
    await sub(s, 4, topic, 0);
    const p = await raw(t, port, { version: 4, clientId: uid() });
    p.send(publish({ topic, payload: 'u' }));
    const got = await nextPublish(s, 4);
    assert.ok(got.topicBytes.equals(Buffer.from(topic)), 'topic bytes unchanged');
    s.destroy();
    p.destroy();
  }
});

test('several packets in one TCP segment and a PUBLISH split byte by byte are all processed', async (t) => {
  const { port } = await broker(t);
  const topic = `seg/${uid()}`;
  const c = await socket(t, port);
  c.send(
    Buffer.concat([
      connect({ version: 4, clientId: uid() }),
      subscribe({ version: 4, packetId: 1 }, { topic, qos: 1 }),
      publish({ topic, payload: 'self', qos: 1, packetId: 2 }),
      pingreq(),
    ]),
  );
  const types = [];
  for (let i = 0; i < 5; i++) types.push((await c.next()).type);
  assert.deepEqual([...types].sort(), [T.CONNACK, T.PUBLISH, T.PUBACK, T.SUBACK, T.PINGRESP].sort());
  assert.equal(types[0], T.CONNACK);
  for (const b of publish({ topic, payload: 'bytewise', qos: 0 })) {
    c.send(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  const got = await nextPublish(c, 4);
  assert.equal(got.payload.toString(), 'bytewise');
});

for (const v of VERSIONS) {
  test(`[MQTT-4.6.0-2] [MQTT-4.6.0-3] v${v}: PUBACKs and PUBRECs are sent in the order the PUBLISHes arrived`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    const ids = [9, 3, 700, 1, 65_535, 42];
    c.send(Buffer.concat(ids.map((id, i) => publish({ version: v, topic: `ord/${i}`, payload: 'x', qos: 1, packetId: id }))));
    const acks = [];
    for (const _ of ids) acks.push(parseAck(await c.expect(T.PUBACK)).packetId);
    assert.deepEqual(acks, ids);
    c.send(Buffer.concat(ids.map((id, i) => publish({ version: v, topic: `ord/${i}`, payload: 'x', qos: 2, packetId: id }))));
    const recs = [];
    for (const _ of ids) recs.push(parseAck(await c.expect(T.PUBREC)).packetId);
    assert.deepEqual(recs, ids);
    c.send(Buffer.concat(ids.map((id) => ack(T.PUBREL, id))));
    const comps = [];
    for (const _ of ids) comps.push(parseAck(await c.expect(T.PUBCOMP)).packetId);
    assert.deepEqual(comps, ids);
  });

  test(`[MQTT-4.6.0-4] v${v}: the server sends PUBRELs in the order the PUBRECs arrived`, async (t) => {
    const { port } = await broker(t);
    const topic = `relord/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    for (let i = 1; i <= 4; i++) {
      p.send(publish({ version: v, topic, payload: `m${i}`, qos: 2, packetId: i }));
      await p.expect(T.PUBREC);
      p.send(ack(T.PUBREL, i));
      await p.expect(T.PUBCOMP);
    }
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await nextPublish(s, v));
    const order = [got[2], got[0], got[3], got[1]].map((m) => m?.packetId ?? 0);
    s.send(Buffer.concat(order.map((id) => ack(T.PUBREC, id))));
    const rels = [];
    for (const _ of order) rels.push(parseAck(await s.expect(T.PUBREL)).packetId);
    assert.deepEqual(rels, order);
  });
}

test('[MQTT-3.3.4-9] v5: PUBREC with a reason code >= 0x80 ends the QoS 2 flow: no PUBREL, the slot is freed', async (t) => {
  const { port } = await broker(t);
  const topic = `recfail/${uid()}`;
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
  s.send(ack(T.PUBREC, first.packetId ?? 0, 0x80));
  const next = await s.next();
  assert.equal(next.type, T.PUBLISH, `expected the next PUBLISH, got ${next.raw.toString('hex')}`);
  assert.equal(parsePublish(next, 5).payload.toString(), 'm2');
});

test('[MQTT-2.2.1-4] v5: a packet id awaiting PUBCOMP is not reused for another PUBLISH', async (t) => {
  const { port } = await broker(t);
  const topic = `idq2/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 2);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'q2', qos: 2, packetId: 1 }));
  await p.expect(T.PUBREC);
  p.send(ack(T.PUBREL, 1, 0));
  await p.expect(T.PUBCOMP);
  const held = await nextPublish(s, 5);
  s.send(ack(T.PUBREC, held.packetId ?? 0, 0));
  await s.expect(T.PUBREL); // no PUBCOMP: the id stays in use
  for (let i = 0; i < 20; i++) {
    p.send(publish({ version: 5, topic, payload: `n${i}`, qos: 1, packetId: 10 + i }));
    await p.expect(T.PUBACK);
    const m = await nextPublish(s, 5);
    assert.notEqual(m.packetId, held.packetId, `packet id ${String(m.packetId)} reused while awaiting PUBCOMP`);
    s.send(ack(T.PUBACK, m.packetId ?? 0, 0));
  }
});
