/** SUBSCRIBE / UNSUBSCRIBE: SUBACK codes, wildcards, replacement, overlap, No Local, subscription identifiers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  P,
  T,
  parseDisconnect,
  parsePublish,
  parseSuback,
  propAll,
  publish,
  rawSubscribe,
  subscribe,
  unsubscribe,
  type Version,
} from '../../helpers/raw-client.js';
import { ackPublish, broker, nextPublish, raw, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

for (const v of VERSIONS) {
  test(`[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5] v${v}: one SUBACK, same packet id, one code per filter in order`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    c.send(subscribe({ version: v, packetId: 0x0a0b }, { topic: 'a/0', qos: 0 }, { topic: 'a/1', qos: 1 }, { topic: 'a/2', qos: 2 }));
    const p = await c.expect(T.SUBACK);
    assert.equal(p.flags, 0);
    const s = parseSuback(p, v);
    assert.equal(s.packetId, 0x0a0b);
    assert.deepEqual(s.codes, [0, 1, 2]);
  });

  test(`[MQTT-3.8.4-3] v${v}: a SUBSCRIBE for an existing filter replaces it (one copy, new QoS)`, async (t) => {
    const { port } = await broker(t);
    const topic = `rep/${uid()}`;
    const c = await raw(t, port, { version: v, clientId: uid() });
    await sub(c, v, topic, 2, 1);
    await sub(c, v, topic, 0, 2);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'x', qos: 1, packetId: 1 }));
    await p.expect(T.PUBACK);
    const got = await nextPublish(c, v);
    assert.equal(got.qos, 0, 'the replacing subscription QoS applies');
    assert.equal(await c.silentFor(300), undefined, 'only one copy');
  });

  test(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] v${v}: wildcard matching of + and #`, async (t) => {
    const { port } = await broker(t);
    const b = uid('m');
    const cases: Array<[filter: string, topic: string, matches: boolean]> = [
      [`${b}/#`, `${b}`, true],
      [`${b}/#`, `${b}/x/y/z`, true],
      [`${b}/+`, `${b}/x`, true],
      [`${b}/+`, `${b}/`, true],
      [`${b}/+`, `${b}`, false],
      [`${b}/+`, `${b}/x/y`, false],
      [`${b}/+/z`, `${b}/y/z`, true],
      [`+/${b}`, `/${b}`, true],
      [`${b}/+/+`, `${b}//`, true],
      [`${b}/x`, `${b}/X`, false],
    ];
    for (const [i, [filter, topic, matches]] of cases.entries()) {
      const c = await raw(t, port, { version: v, clientId: uid() });
      await sub(c, v, filter, 0);
      const p = await raw(t, port, { version: v, clientId: uid() });
      p.send(publish({ version: v, topic, payload: `case ${i}` }));
      const got = await c.silentFor(matches ? 2000 : 300);
      if (matches) {
        assert.ok(got !== undefined && got !== 'closed', `${filter} must match ${topic}`);
        assert.equal(parsePublish(got, v).topic, topic);
      } else {
        assert.equal(got, undefined, `${filter} must not match ${topic}`);
      }
      c.destroy();
      p.destroy();
    }
  });

  test(`[MQTT-4.7.1-2] v${v}: a filter with # not last is refused (failure code or close)`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    c.send(subscribe({ version: v, packetId: 3 }, { topic: 'a/#/b', qos: 0 }, { topic: 'a/b+', qos: 0 }, { topic: 'ok/+', qos: 0 }));
    const p = await c.silentFor(2000);
    if (p === 'closed') return;
    assert.ok(p !== undefined, 'no answer to the SUBSCRIBE');
    if (v === 5 && p.type === T.DISCONNECT) {
      assert.ok([0x81, 0x82, 0x8f].includes(parseDisconnect(p).reasonCode));
      await c.waitClose();
      return;
    }
    const s = parseSuback(p, v);
    const fail = v === 4 ? [0x80] : [0x8f, 0x80];
    assert.ok(fail.includes(s.codes[0] ?? -1), `'a/#/b' got 0x${(s.codes[0] ?? -1).toString(16)}`);
    assert.ok(fail.includes(s.codes[1] ?? -1), `'a/b+' got 0x${(s.codes[1] ?? -1).toString(16)}`);
    assert.equal(s.codes[2], 0, 'the valid filter in the same packet is granted');
  });

  test(`[MQTT-3.10.4-1] [MQTT-3.10.4-2] [MQTT-3.10.4-4] v${v}: UNSUBSCRIBE stops delivery; UNSUBACK same id`, async (t) => {
    const { port } = await broker(t);
    const topic = `unsub/${uid()}`;
    const c = await raw(t, port, { version: v, clientId: uid() });
    await sub(c, v, topic, 1);
    c.send(unsubscribe({ version: v, packetId: 0x0707 }, topic));
    const ua = await c.expect(T.UNSUBACK);
    assert.equal(ua.flags, 0);
    const u = parseSuback(ua, v);
    assert.equal(u.packetId, 0x0707);
    if (v === 4) assert.equal(ua.body.length, 2, 'v3 UNSUBACK has only the packet id');
    else assert.deepEqual(u.codes, [0x00]);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'x' }));
    assert.equal(await c.silentFor(400), undefined);
  });

  test(`[MQTT-3.10.4-5] v${v}: UNSUBSCRIBE of a filter never subscribed is still acknowledged`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid() });
    await sub(c, v, 'x/y', 0);
    c.send(unsubscribe({ version: v, packetId: 12 }, 'never/subscribed', 'x/+', 'x/y'));
    const u = parseSuback(await c.expect(T.UNSUBACK), v);
    assert.equal(u.packetId, 12);
    // v5: 0x11 No subscription existed; filters compare character by character ('x/+' is not 'x/y').
    if (v === 5) assert.deepEqual(u.codes, [0x11, 0x11, 0x00]);
  });

  test(`[${v === 4 ? 'MQTT-3.3.5-1' : 'MQTT-3.3.4-2'}] v${v}: overlapping subscriptions give one copy at the highest granted QoS`, async (t) => {
    const { port } = await broker(t);
    const b = uid('ov');
    const c = await raw(t, port, { version: v, clientId: uid() });
    await sub(c, v, `${b}/+`, 1, 1);
    await sub(c, v, `${b}/#`, 2, 2);
    await sub(c, v, `${b}/x`, 0, 3);
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic: `${b}/x`, payload: 'x', qos: 2, packetId: 1 }));
    const got = await nextPublish(c, v);
    assert.equal(got.qos, 2);
    await ackPublish(c, got);
    assert.equal(await c.silentFor(400), undefined, 'exactly one copy');
  });
}

test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] v5: the single copy for overlapping subscriptions carries every Subscription Identifier', async (t) => {
  const { port } = await broker(t);
  const b = uid('sid');
  const c = await raw(t, port, { version: 5, clientId: uid() });
  for (const [i, filter] of [`${b}/+`, `${b}/#`, `${b}/x`].entries()) {
    c.send(subscribe({ version: 5, packetId: i + 1, properties: [[P.SubscriptionIdentifier, 100 + i]] }, { topic: filter, qos: 1 }));
    assert.deepEqual(parseSuback(await c.expect(T.SUBACK), 5).codes, [1]);
  }
  await sub(c, 5, `${b}/+/#`, 1, 9); // no identifier
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic: `${b}/x`, payload: 'x', qos: 1, packetId: 1 }));
  const got = await nextPublish(c, 5);
  const ids = propAll(got.properties, P.SubscriptionIdentifier) as number[];
  assert.deepEqual([...ids].sort((a, z) => a - z), [100, 101, 102]);
  await ackPublish(c, got);
  assert.equal(await c.silentFor(300), undefined, 'one copy');
});

test('[MQTT-3.8.3-3] v5: No Local stops a client receiving its own publications', async (t) => {
  const { port } = await broker(t);
  const topic = `nl/${uid()}`;
  const id = uid();
  const c = await raw(t, port, { version: 5, clientId: id });
  assert.deepEqual(await rawSubscribe(c, 5, 1, { topic, qos: 1, noLocal: true }), [1]);
  const other = await raw(t, port, { version: 5, clientId: uid() });
  await sub(other, 5, topic, 1);
  c.send(publish({ version: 5, topic, payload: 'mine', qos: 1, packetId: 2 }));
  await c.expect(T.PUBACK);
  assert.equal((await nextPublish(other, 5)).payload.toString(), 'mine', 'others still get it');
  assert.equal(await c.silentFor(400), undefined, 'the publisher does not');
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'theirs' }));
  assert.equal((await nextPublish(c, 5)).payload.toString(), 'theirs');
});

test('v5: without No Local a client receives its own publications', async (t) => {
  const { port } = await broker(t);
  const topic = `nonl/${uid()}`;
  const c = await raw(t, port, { version: 5, clientId: uid() });
  await sub(c, 5, topic, 0);
  c.send(publish({ version: 5, topic, payload: 'echo' }));
  assert.equal((await nextPublish(c, 5)).payload.toString(), 'echo');
});

test('[MQTT-3.2.2-10] [MQTT-3.8.4-8] granted QoS is capped by the configured maximum QoS', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQoS: 1 } });
  for (const v of VERSIONS) {
    const c = await raw(t, port, { version: v, clientId: uid() });
    assert.deepEqual(await rawSubscribe(c, v, 1, { topic: 'cap/a', qos: 2 }, { topic: 'cap/b', qos: 0 }), [1, 0], `v${v}`);
  }
});

/** A disabled feature is refused either per filter in SUBACK or with a DISCONNECT, with the feature's code. */
async function expectFeatureRefused(c: Awaited<ReturnType<typeof raw>>, code: number, index: number): Promise<void> {
  const p = await c.next();
  if (p.type === T.DISCONNECT) {
    assert.equal(parseDisconnect(p).reasonCode, code);
    await c.waitClose();
    return;
  }
  const s = parseSuback(p, 5);
  assert.equal(s.codes[index], code, `SUBACK codes ${JSON.stringify(s.codes)}`);
}

test('v5: wildcard subscriptions disabled -> 0xA2 Wildcard Subscriptions not supported (3.2.2.3.11)', async (t) => {
  const { port } = await broker(t, { mqtt: { wildcardSubscriptionAvailable: false } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1 }, { topic: 'plain', qos: 0 }, { topic: 'wild/#', qos: 0 }));
  await expectFeatureRefused(c, 0xa2, 1);
});

test('v5: subscription identifiers disabled -> 0xA1 Subscription Identifiers not supported (3.2.2.3.12)', async (t) => {
  const { port } = await broker(t, { mqtt: { subscriptionIdentifierAvailable: false } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1, properties: [[P.SubscriptionIdentifier, 5]] }, { topic: 'x', qos: 0 }));
  await expectFeatureRefused(c, 0xa1, 0);
});

test('[MQTT-3.8.4-3] v4: re-subscribing to an existing filter re-sends the retained messages', async (t) => {
  const { port } = await broker(t);
  const topic = `resub/${uid()}`;
  const p = await raw(t, port, { version: 4, clientId: uid() });
  p.send(publish({ topic, payload: 'r', qos: 1, packetId: 1, retain: true }));
  await p.expect(T.PUBACK);
  const c = await raw(t, port, { version: 4, clientId: uid() });
  await sub(c, 4, topic, 0, 1);
  assert.equal((await nextPublish(c, 4)).retain, true);
  await sub(c, 4, topic, 0, 2);
  const again = await nextPublish(c, 4);
  assert.equal(again.payload.toString(), 'r');
  assert.equal(again.retain, true);
});

test('v5: re-subscribing with a new Subscription Identifier replaces the old one', async (t) => {
  const { port } = await broker(t);
  const topic = `resid/${uid()}`;
  const c = await raw(t, port, { version: 5, clientId: uid() });
  for (const [i, id] of [5, 6].entries()) {
    c.send(subscribe({ version: 5, packetId: i + 1, properties: [[P.SubscriptionIdentifier, id]] }, { topic, qos: 0 }));
    await c.expect(T.SUBACK);
  }
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'x' }));
  assert.deepEqual(propAll((await nextPublish(c, 5)).properties, P.SubscriptionIdentifier), [6]);
});

test('[MQTT-3.3.4-3] v5: retained messages sent on subscribe carry the Subscription Identifier', async (t) => {
  const { port } = await broker(t);
  const topic = `rsid/${uid()}`;
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic, payload: 'r', qos: 1, packetId: 1, retain: true }));
  await p.expect(T.PUBACK);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1, properties: [[P.SubscriptionIdentifier, 77]] }, { topic, qos: 0 }));
  await c.expect(T.SUBACK);
  const m = await nextPublish(c, 5);
  assert.equal(m.retain, true);
  assert.deepEqual(propAll(m.properties, P.SubscriptionIdentifier), [77]);
});

test('[MQTT-4.7.1-2] [MQTT-4.7.1-3] root-level wildcard matching (+/+ matches "/", # matches "/x")', async (t) => {
  const { port } = await broker(t);
  for (const [filter, topic] of [['+/+', '/'], ['#', '/x'], ['/#', '/'], ['+', 'x']] as const) {
    const c = await raw(t, port, { version: 4, clientId: uid() });
    await sub(c, 4, filter, 0);
    const p = await raw(t, port, { version: 4, clientId: uid() });
    p.send(publish({ topic, payload: 'x' }));
    assert.equal((await nextPublish(c, 4)).topic, topic, `${filter} must match ${topic}`);
    c.destroy();
    p.destroy();
  }
});

test('[MQTT-3.8.3-3] v5: own message matching a No Local and a normal subscription comes once, via the normal one only', async (t) => {
  const { port } = await broker(t);
  const b = uid('nlo');
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(subscribe({ version: 5, packetId: 1, properties: [[P.SubscriptionIdentifier, 1]] }, { topic: `${b}/#`, qos: 2, noLocal: true }));
  await c.expect(T.SUBACK);
  c.send(subscribe({ version: 5, packetId: 2, properties: [[P.SubscriptionIdentifier, 2]] }, { topic: `${b}/x`, qos: 0 }));
  await c.expect(T.SUBACK);
  c.send(publish({ version: 5, topic: `${b}/x`, payload: 'own', qos: 1, packetId: 3 }));
  const got = [];
  for (;;) {
    const p = await c.silentFor(400);
    if (p === undefined || p === 'closed') break;
    if (p.type === T.PUBLISH) got.push(parsePublish(p, 5));
  }
  assert.equal(got.length, 1, 'one copy');
  assert.equal(got[0]?.qos, 0, 'at the QoS of the subscription that applies');
  assert.deepEqual(propAll(got[0]?.properties ?? [], P.SubscriptionIdentifier), [2], 'only the applying subscription id');
});
