/** Sessions: clean session / clean start, Session Present, expiry, takeover, offline queue, redelivery with DUP. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, ack, disconnect, parseAck, parseDisconnect, parsePublish, publish, type ConnectOptions, type Version } from '../../helpers/raw-client.js';
import { ackPublish, broker, delay, nextPublish, pub1, raw, rawAny, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

/** Persistent-session connect options: v3 CleanSession=0, v5 Clean Start=0 with a session expiry. */
function persistent(v: Version, clientId: string, expiry = 60): ConnectOptions {
  return v === 5
    ? { version: v, clientId, clean: false, properties: [[P.SessionExpiryInterval, expiry]] }
    : { version: v, clientId, clean: false };
}

for (const v of VERSIONS) {
  const R =
    v === 4
      ? { cleanSP: 'MQTT-3.2.2-1', resumeSP: 'MQTT-3.2.2-2', newSP: 'MQTT-3.2.2-3', discard: 'MQTT-3.1.2-6', store: 'MQTT-3.1.2-5', takeover: 'MQTT-3.1.4-2', ordered: 'MQTT-4.6.0-6' }
      : { cleanSP: 'MQTT-3.2.2-2', resumeSP: 'MQTT-3.2.2-3', newSP: 'MQTT-3.2.2-3', discard: 'MQTT-3.1.2-4', store: 'MQTT-3.1.2-23', takeover: 'MQTT-3.1.4-3', ordered: 'MQTT-4.6.0-5' };

  test(`[${R.newSP}]${R.newSP === R.resumeSP ? '' : ` [${R.resumeSP}]`} v${v}: Session Present is 0 for a new session and 1 when resumed`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const a = await rawAny(t, port, persistent(v, id));
    assert.equal(a.connack.sessionPresent, false, 'no session existed');
    a.client.destroy();
    await delay(100);
    const b = await rawAny(t, port, persistent(v, id));
    assert.equal(b.connack.sessionPresent, true, 'the stored session is resumed');
  });

  test(`[${R.cleanSP}] [${R.discard}] v${v}: a clean connect discards the old session and has Session Present 0`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `cs/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 1);
    a.destroy();
    await delay(100);
    const b = await rawAny(t, port, { version: v, clientId: id, clean: true });
    assert.equal(b.connack.sessionPresent, false);
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1(p, v, topic, 'x', 1);
    assert.equal(await b.client.silentFor(400), undefined, 'the old subscription is gone');
    b.client.destroy();
    await delay(100);
    const c = await rawAny(t, port, persistent(v, id));
    assert.equal(c.connack.sessionPresent, false, 'the clean session did not persist either');
  });

  test(`[${R.store}] [${R.ordered}] v${v}: subscriptions and QoS 1/2 messages are kept for an offline session, in order`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `off/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 2);
    a.send(v === 5 ? disconnect(0) : disconnect());
    await a.waitClose();
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1(p, v, topic, 'q1-a', 1);
    p.send(publish({ version: v, topic, payload: 'q2-b', qos: 2, packetId: 2 }));
    await p.expect(T.PUBREC);
    p.send(ack(T.PUBREL, 2));
    await p.expect(T.PUBCOMP);
    await pub1(p, v, topic, 'q1-c', 3);
    await pub1(p, v, topic, 'q1-d', 4);
    const { client, connack } = await rawAny(t, port, persistent(v, id));
    assert.equal(connack.sessionPresent, true);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await nextPublish(client, v));
    // Order is only defined per topic and QoS.
    assert.deepEqual(got.filter((m) => m.qos === 1).map((m) => m.payload.toString()), ['q1-a', 'q1-c', 'q1-d']);
    assert.deepEqual(got.filter((m) => m.qos === 2).map((m) => m.payload.toString()), ['q2-b']);
    for (const m of got) await ackPublish(client, m);
    assert.equal(await client.silentFor(300), undefined);
  });

  test(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] v${v}: unacknowledged PUBLISH packets are resent on reconnect with DUP=1, same ids, in order`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `redo/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 1);
    const p = await raw(t, port, { version: v, clientId: uid() });
    for (let i = 1; i <= 3; i++) await pub1(p, v, topic, `m${i}`, i);
    const first = [await nextPublish(a, v), await nextPublish(a, v), await nextPublish(a, v)];
    assert.deepEqual(first.map((m) => m.dup), [false, false, false]);
    a.destroy(); // no PUBACKs
    await delay(100);
    const b = await raw(t, port, persistent(v, id));
    const again = [await nextPublish(b, v), await nextPublish(b, v), await nextPublish(b, v)];
    assert.deepEqual(again.map((m) => m.payload.toString()), ['m1', 'm2', 'm3']);
    assert.deepEqual(again.map((m) => m.dup), [true, true, true], 'DUP=1 on redelivery');
    assert.deepEqual(again.map((m) => m.packetId), first.map((m) => m.packetId), 'original packet ids');
    for (const m of again) b.send(ack(T.PUBACK, m.packetId ?? 0));
    assert.equal(await b.silentFor(300), undefined, 'nothing more after the acks');
  });

  test(`[MQTT-4.4.0-1] [MQTT-4.3.3-1] v${v}: a PUBREL not yet completed is resent on reconnect, not the PUBLISH`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `rel/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'q2', qos: 2, packetId: 1 }));
    await p.expect(T.PUBREC);
    p.send(ack(T.PUBREL, 1));
    await p.expect(T.PUBCOMP);
    const m = await nextPublish(a, v);
    const pid = m.packetId ?? 0;
    a.send(ack(T.PUBREC, pid));
    await a.expect(T.PUBREL);
    a.destroy(); // no PUBCOMP
    await delay(100);
    const b = await raw(t, port, persistent(v, id));
    const rel = await b.expect(T.PUBREL);
    assert.equal(rel.flags, 0x02);
    assert.equal(parseAck(rel).packetId, pid);
    b.send(ack(T.PUBCOMP, pid));
    assert.equal(await b.silentFor(300), undefined, 'the PUBLISH is not resent after PUBREL');
  });

  test(`[MQTT-4.3.3-2] v${v}: a QoS 2 PUBLISH resent with DUP after the publisher reconnects is delivered once`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `pdup/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 2);
    const a = await raw(t, port, persistent(v, id));
    a.send(publish({ version: v, topic, payload: 'exactly once', qos: 2, packetId: 42 }));
    await a.expect(T.PUBREC);
    a.destroy(); // PUBREL never sent
    await delay(100);
    const b = await raw(t, port, persistent(v, id));
    b.send(publish({ version: v, topic, payload: 'exactly once', qos: 2, packetId: 42, dup: true }));
    assert.equal(parseAck(await b.expect(T.PUBREC)).packetId, 42);
    b.send(ack(T.PUBREL, 42));
    assert.equal(parseAck(await b.expect(T.PUBCOMP)).packetId, 42);
    let count = 0;
    for (;;) {
      const m = await s.silentFor(600);
      if (m === undefined) break;
      assert.notEqual(m, 'closed', 'subscriber connection closed');
      if (m === 'closed') break;
      count += 1;
      const pm = parsePublish(m, v);
      if (pm.packetId !== undefined) {
        s.send(ack(T.PUBREC, pm.packetId));
        await s.expect(T.PUBREL);
        s.send(ack(T.PUBCOMP, pm.packetId));
      }
    }
    assert.equal(count, 1, 'delivered exactly once');
  });

  test(`[${R.takeover}] v${v}: a second connection with the same client id closes the first`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `take/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 1);
    const b = await rawAny(t, port, persistent(v, id));
    assert.equal(b.connack.code, 0);
    assert.equal(b.connack.sessionPresent, true, 'the session continues on the new connection');
    const unread = await a.waitClose();
    if (v === 5) {
      const d = unread.find((p) => p.type === T.DISCONNECT);
      assert.ok(d, 'v5: the old connection gets a DISCONNECT');
      assert.equal(parseDisconnect(d).reasonCode, 0x8e, 'Session taken over');
    }
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1(p, v, topic, 'to the new one', 1);
    assert.equal((await nextPublish(b.client, v)).payload.toString(), 'to the new one');
  });
}

test('[MQTT-4.4.0-1] v5: on takeover the new connection gets the unacknowledged messages again with DUP=1', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const topic = `tko/${uid()}`;
  const a = await raw(t, port, persistent(5, id));
  await sub(a, 5, topic, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1(p, 5, topic, 'inflight', 1);
  const first = await nextPublish(a, 5);
  const b = await raw(t, port, persistent(5, id));
  const again = await nextPublish(b, 5);
  assert.equal(again.payload.toString(), 'inflight');
  assert.equal(again.dup, true);
  assert.equal(again.packetId, first.packetId);
});

test('[MQTT-3.1.4-3] [MQTT-3.2.2-2] v5: a takeover with Clean Start=1 closes the old connection and starts fresh', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const topic = `tkc/${uid()}`;
  const a = await raw(t, port, persistent(5, id));
  await sub(a, 5, topic, 1);
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: true });
  assert.equal(b.connack.sessionPresent, false);
  const unread = await a.waitClose();
  const d = unread.find((x) => x.type === T.DISCONNECT);
  assert.ok(d, 'the old connection gets a DISCONNECT');
  assert.equal(parseDisconnect(d).reasonCode, 0x8e);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1(p, 5, topic, 'x', 1);
  assert.equal(await b.client.silentFor(300), undefined, 'the old subscription went with the old session');
});

for (const v of VERSIONS) {
  test(`[MQTT-4.4.0-1] [MQTT-3.3.1-1] v${v}: a QoS 2 PUBLISH not yet PUBREC'd is resent with DUP=1 and completes once`, async (t) => {
    const { port } = await broker(t);
    const id = uid();
    const topic = `redo2/${uid()}`;
    const a = await raw(t, port, persistent(v, id));
    await sub(a, v, topic, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'q2 resend', qos: 2, packetId: 1 }));
    await p.expect(T.PUBREC);
    p.send(ack(T.PUBREL, 1));
    await p.expect(T.PUBCOMP);
    const first = await nextPublish(a, v);
    assert.equal(first.dup, false);
    a.destroy(); // no PUBREC
    await delay(100);
    const b = await raw(t, port, persistent(v, id));
    const again = await nextPublish(b, v);
    assert.equal(again.payload.toString(), 'q2 resend');
    assert.equal(again.qos, 2);
    assert.equal(again.dup, true);
    assert.equal(again.packetId, first.packetId);
    await ackPublish(b, again);
    assert.equal(await b.silentFor(300), undefined);
  });
}
