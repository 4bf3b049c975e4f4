/** Shared subscriptions ($share/group/filter): distribution, retained, hand-over of unacknowledged messages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  P,
  T,
  ack,
  parseDisconnect,
  parsePublish,
  parseSuback,
  publish,
  subscribe,
  unsubscribe,
  type RawPacket,
  type Version,
} from '../../helpers/raw-client.js';
import { broker, expectErrorClose, nextPublish, pub1, raw, sub, uid } from '../support.js';

async function drain(c: Awaited<ReturnType<typeof raw>>, v: Version, quietMs: number): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    const p = await c.silentFor(quietMs);
    if (p === undefined || p === 'closed') return got;
    const m = parsePublish(p, v);
    got.push(m.payload.toString());
    if (m.qos === 1 && m.packetId !== undefined) c.send(ack(T.PUBACK, m.packetId));
  }
}

for (const v of [4, 5] as const) {
  test(`[MQTT-4.8.2-1] [MQTT-4.8.2-2] v${v}: each message of a shared subscription goes to exactly one group member`, async (t) => {
    const { port } = await broker(t);
    const topic = `sh/${uid()}`;
    const group = `g${uid()}`;
    const a = await raw(t, port, { version: v, clientId: uid() });
    const b = await raw(t, port, { version: v, clientId: uid() });
    await sub(a, v, `$share/${group}/${topic}`, 1);
    await sub(b, v, `$share/${group}/${topic}`, 1);
    const plain = await raw(t, port, { version: v, clientId: uid() });
    await sub(plain, v, topic, 0);
    const p = await raw(t, port, { version: v, clientId: uid() });
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(`m${i}`);
      await pub1(p, v, topic, `m${i}`, i + 1);
    }
    const [ga, gb, gp] = await Promise.all([drain(a, v, 400), drain(b, v, 400), drain(plain, v, 400)]);
    assert.deepEqual([...ga, ...gb].sort(), [...sent].sort(), 'every message exactly once across the group');
    assert.ok(ga.length > 0 && gb.length > 0, `distributed among members (a got ${ga.length}, b got ${gb.length})`);
    assert.deepEqual(gp, sent, 'a non-shared subscriber still gets its own copy of everything');
  });
}

test('[MQTT-4.8.2-2] v5: two groups on the same filter each get every message once', async (t) => {
  const { port } = await broker(t);
  const topic = `sh2/${uid()}`;
  const g1 = await raw(t, port, { version: 5, clientId: uid() });
  const g2 = await raw(t, port, { version: 5, clientId: uid() });
  await sub(g1, 5, `$share/one/${topic}`, 0);
  await sub(g2, 5, `$share/two/${topic}`, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 0; i < 3; i++) p.send(publish({ version: 5, topic, payload: `${i}` }));
  assert.deepEqual(await drain(g1, 5, 400), ['0', '1', '2']);
  assert.deepEqual(await drain(g2, 5, 400), ['0', '1', '2']);
});

test('v5: retained messages are not sent to a new shared subscription (4.8.2)', async (t) => {
  const { port } = await broker(t);
  const topic = `shr/${uid()}`;
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'retained', qos: 1, packetId: 1, retain: true }));
  await p.expect(T.PUBACK);
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, `$share/g/${topic}`, 1);
  assert.equal(await s.silentFor(400), undefined);
});

test('v5: an unacknowledged QoS 1 message of a member whose session ends is given to another member (4.8.2)', async (t) => {
  const { port } = await broker(t);
  const topic = `sho/${uid()}`;
  const filter = `$share/g/${topic}`;
  const a = await raw(t, port, { version: 5, clientId: uid() });
  await sub(a, 5, filter, 1);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1(p, 5, topic, 'only-a', 1);
  const m = await nextPublish(a, 5);
  assert.equal(m.payload.toString(), 'only-a');
  const b = await raw(t, port, { version: 5, clientId: uid() });
  await sub(b, 5, filter, 1);
  a.destroy(); // session expiry 0: the session ends with the connection, no PUBACK sent
  const got = await nextPublish(b, 5, 3000);
  assert.equal(got.payload.toString(), 'only-a');
});

test('[MQTT-3.8.3-4] v5: No Local on a shared subscription is a Protocol Error', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1 }, { topic: '$share/g/x', qos: 0, noLocal: true }));
  await expectErrorClose(c, 5, [0x82]);
});

test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] invalid share names are refused', async (t) => {
  const { port } = await broker(t);
  for (const v of [4, 5] as const) {
    for (const filter of ['$share/g', '$share//x', '$share/g+/x', '$share/g#/x', '$share/g/']) {
      const c = await raw(t, port, { version: v, clientId: uid() });
      c.send(subscribe({ version: v, packetId: 1 }, { topic: filter, qos: 0 }));
      const p: RawPacket | 'closed' | undefined = await c.silentFor(2000);
      assert.ok(p !== undefined, `no answer to SUBSCRIBE ${filter}`);
      if (p === 'closed') continue;
      if (p.type === T.DISCONNECT) {
        assert.ok([0x81, 0x82, 0x8f].includes(parseDisconnect(p).reasonCode), filter);
        continue;
      }
      const codes = parseSuback(p, v).codes;
      assert.ok((codes[0] ?? 0) >= 0x80, `v${v} ${filter} granted 0x${(codes[0] ?? 0).toString(16)}`);
      c.destroy();
    }
  }
});

test('v5: shared subscriptions disabled -> 0x9E Shared Subscriptions not supported (3.2.2.3.13)', async (t) => {
  const { port } = await broker(t, { mqtt: { sharedSubscriptionAvailable: false } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1 }, { topic: 'ok', qos: 0 }, { topic: '$share/g/x', qos: 0 }));
  const p = await c.next();
  if (p.type === T.DISCONNECT) {
    assert.equal(parseDisconnect(p).reasonCode, 0x9e);
    await c.waitClose();
  } else assert.deepEqual(parseSuback(p, 5).codes, [0x00, 0x9e]);
});

test('v5: a shared subscription honours the granted QoS and its Subscription Identifier', async (t) => {
  const { port } = await broker(t);
  const topic = `shq/${uid()}`;
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1, properties: [[P.SubscriptionIdentifier, 11]] }, { topic: `$share/g/${topic}`, qos: 1 }));
  assert.deepEqual(parseSuback(await c.expect(T.SUBACK), 5).codes, [1]);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'x', qos: 2, packetId: 1 }));
  const m = await nextPublish(c, 5);
  assert.equal(m.qos, 1);
  assert.equal(m.topic, topic, 'the topic name, not the share filter');
  assert.deepEqual(m.properties.filter((x) => x.id === P.SubscriptionIdentifier).map((x) => x.value), [11]);
});

test('[MQTT-3.10.4-1] UNSUBSCRIBE of a shared subscription removes only that member', async (t) => {
  const { port } = await broker(t);
  const topic = `shu/${uid()}`;
  const a = await raw(t, port, { version: 5, clientId: uid() });
  const b = await raw(t, port, { version: 5, clientId: uid() });
  await sub(a, 5, `$share/g/${topic}`, 0);
  await sub(b, 5, `$share/g/${topic}`, 0);
  a.send(unsubscribe({ version: 5, packetId: 2 }, `$share/g/${topic}`));
  assert.deepEqual(parseSuback(await a.expect(T.UNSUBACK), 5).codes, [0x00]);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 0; i < 4; i++) p.send(publish({ version: 5, topic, payload: `${i}` }));
  assert.deepEqual(await drain(b, 5, 400), ['0', '1', '2', '3']);
  assert.deepEqual(await drain(a, 5, 100), []);
});

test('[MQTT-4.8.2-2] a shared subscription filter may contain wildcards', async (t) => {
  const { port } = await broker(t);
  const b = uid('shw');
  const a = await raw(t, port, { version: 5, clientId: uid() });
  await sub(a, 5, `$share/g/${b}/+/x/#`, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic: `${b}/1/x/2/3`, payload: 'deep' }));
  p.send(publish({ version: 5, topic: `${b}/1/y`, payload: 'no' }));
  assert.deepEqual(await drain(a, 5, 400), ['deep']);
});
