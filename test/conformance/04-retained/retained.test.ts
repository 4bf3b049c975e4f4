/** Retained messages: store, replace, clear, RETAIN flag on delivery, v5 Retain Handling / As Published / expiry. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, parsePublish, prop, publish, rawSubscribe, type Version } from '../../helpers/raw-client.js';
import { broker, delay, expectErrorClose, nextPublish, pub1, raw, rawAny, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

for (const v of VERSIONS) {
  const R =
    v === 4
      ? { store: 'MQTT-3.3.1-5', onSub: 'MQTT-3.3.1-8', live: 'MQTT-3.3.1-9', clear: 'MQTT-3.3.1-10', notStored: 'MQTT-3.3.1-11', keep: 'MQTT-3.3.1-12' }
      : { store: 'MQTT-3.3.1-5', onSub: 'MQTT-3.3.1-9', live: 'MQTT-3.3.1-12', clear: 'MQTT-3.3.1-6', notStored: 'MQTT-3.3.1-7', keep: 'MQTT-3.3.1-8' };

  test(`[${R.store}] [${R.onSub}] v${v}: a retained message is sent to a new subscriber with RETAIN=1`, async (t) => {
    const { port } = await broker(t);
    const topic = `ret/${uid()}`;
    const p = await raw(t, port, { version: v, clientId: uid() });
    p.send(publish({ version: v, topic, payload: 'kept', qos: 1, packetId: 1, retain: true }));
    await p.expect(T.PUBACK);
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const got = await nextPublish(s, v);
    assert.equal(got.retain, true);
    assert.equal(got.qos, 1);
    assert.equal(got.payload.toString(), 'kept');
  });

  test(`[${R.store}] v${v}: a new retained message replaces the old one; wildcard subscribers get each topic's`, async (t) => {
    const { port } = await broker(t);
    const b = `rep/${uid()}`;
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1Retained(p, v, `${b}/a`, 'old', 1);
    await pub1Retained(p, v, `${b}/a`, 'new', 2);
    await pub1Retained(p, v, `${b}/b`, 'bee', 3);
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, `${b}/#`, 0);
    const got = [await nextPublish(s, v), await nextPublish(s, v)].map((m) => `${m.topic}=${m.payload.toString()}`).sort();
    assert.deepEqual(got, [`${b}/a=new`, `${b}/b=bee`]);
    assert.equal(await s.silentFor(300), undefined);
  });

  test(`[${R.clear}] [${R.notStored}] v${v}: an empty retained payload clears the topic and is delivered live`, async (t) => {
    const { port } = await broker(t);
    const topic = `clr/${uid()}`;
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1Retained(p, v, topic, 'something', 1);
    const live = await raw(t, port, { version: v, clientId: uid() });
    await sub(live, v, topic, 0);
    assert.equal((await nextPublish(live, v)).payload.toString(), 'something');
    await pub1Retained(p, v, topic, '', 2);
    const cleared = await nextPublish(live, v);
    assert.equal(cleared.payload.length, 0, 'existing subscribers get the empty message as normal');
    const late = await raw(t, port, { version: v, clientId: uid() });
    await sub(late, v, topic, 0);
    assert.equal(await late.silentFor(400), undefined, 'nothing retained any more');
  });

  test(`[${R.keep}] v${v}: a non-retained publish neither stores nor replaces the retained message`, async (t) => {
    const { port } = await broker(t);
    const topic = `keep/${uid()}`;
    const p = await raw(t, port, { version: v, clientId: uid() });
    await pub1Retained(p, v, topic, 'retained', 1);
    await pub1(p, v, topic, 'transient', 2);
    await pub1(p, v, `${topic}/other`, 'transient', 3);
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, `${topic}/#`, 0);
    assert.equal((await nextPublish(s, v)).payload.toString(), 'retained');
    assert.equal(await s.silentFor(300), undefined);
  });
}

test('[MQTT-3.3.1-9] v4: a retained message forwarded to an existing subscription has RETAIN=0', async (t) => {
  const { port } = await broker(t);
  const topic = `live/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 0);
  const p = await raw(t, port, { version: 4, clientId: uid() });
  await pub1Retained(p, 4, topic, 'x', 1);
  assert.equal((await nextPublish(s, 4)).retain, false);
});

test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] v5: Retain As Published controls RETAIN on live delivery', async (t) => {
  const { port } = await broker(t);
  const topic = `rap/${uid()}`;
  const plain = await raw(t, port, { version: 5, clientId: uid() });
  assert.deepEqual(await rawSubscribe(plain, 5, 1, { topic, qos: 0 }), [0]);
  const asPub = await raw(t, port, { version: 5, clientId: uid() });
  assert.deepEqual(await rawSubscribe(asPub, 5, 1, { topic, qos: 0, retainAsPublished: true }), [0]);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1Retained(p, 5, topic, 'x', 1);
  assert.equal((await nextPublish(plain, 5)).retain, false, 'RAP=0: RETAIN cleared');
  assert.equal((await nextPublish(asPub, 5)).retain, true, 'RAP=1: RETAIN as published');
});

test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] v5: Retain Handling 0, 1 and 2', async (t) => {
  const { port } = await broker(t);
  const topic = `rh/${uid()}`;
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1Retained(p, 5, topic, 'r', 1);
  const c = await raw(t, port, { version: 5, clientId: uid() });

  // 0: sent at every subscribe, even one that replaces an existing subscription.
  assert.deepEqual(await rawSubscribe(c, 5, 1, { topic, qos: 0, retainHandling: 0 }), [0]);
  assert.equal((await nextPublish(c, 5)).retain, true);
  assert.deepEqual(await rawSubscribe(c, 5, 2, { topic, qos: 0, retainHandling: 0 }), [0]);
  assert.equal((await nextPublish(c, 5)).retain, true, 'RH=0 resends on a repeated subscribe');

  // 1: only if the subscription did not exist.
  assert.deepEqual(await rawSubscribe(c, 5, 3, { topic, qos: 0, retainHandling: 1 }), [0]);
  assert.equal(await c.silentFor(300), undefined, 'RH=1 on an existing subscription sends nothing');
  const fresh = await raw(t, port, { version: 5, clientId: uid() });
  assert.deepEqual(await rawSubscribe(fresh, 5, 1, { topic, qos: 0, retainHandling: 1 }), [0]);
  assert.equal((await nextPublish(fresh, 5)).payload.toString(), 'r', 'RH=1 on a new subscription sends it');

  // 2: never.
  const never = await raw(t, port, { version: 5, clientId: uid() });
  assert.deepEqual(await rawSubscribe(never, 5, 1, { topic, qos: 0, retainHandling: 2 }), [0]);
  assert.equal(await never.silentFor(300), undefined, 'RH=2 sends nothing');
  await pub1(p, 5, topic, 'live', 2);
  assert.equal((await nextPublish(never, 5)).payload.toString(), 'live', 'but live messages flow');
});

test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] v5: retained messages expire; the delivered expiry is decremented', async (t) => {
  const { port } = await broker(t);
  const b = `rexp/${uid()}`;
  const p = await raw(t, port, { version: 5, clientId: uid() });
  p.send(publish({ version: 5, topic: `${b}/short`, payload: 's', qos: 1, packetId: 1, retain: true, properties: [[P.MessageExpiryInterval, 1]] }));
  await p.expect(T.PUBACK);
  p.send(publish({ version: 5, topic: `${b}/long`, payload: 'l', qos: 1, packetId: 2, retain: true, properties: [[P.MessageExpiryInterval, 60]] }));
  await p.expect(T.PUBACK);
  await delay(2100);
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, `${b}/#`, 1);
  const got = await nextPublish(s, 5);
  assert.equal(got.topic, `${b}/long`, 'the expired retained message is gone');
  const left = prop(got.properties, P.MessageExpiryInterval);
  assert.equal(typeof left, 'number');
  assert.ok((left as number) <= 58 && (left as number) >= 1, `expiry ${String(left)} should be 60 minus ~2 s`);
  assert.equal(await s.silentFor(300), undefined);
});

test('v5: PUBLISH with RETAIN=1 when retain is unavailable -> DISCONNECT 0x9A (3.2.2.3.5)', async (t) => {
  const { port } = await broker(t, { mqtt: { retainAvailable: false } });
  const { client, connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(connack.properties, P.RetainAvailable), 0);
  client.send(publish({ version: 5, topic: 'x', payload: 'y', qos: 0, retain: true }));
  await expectErrorClose(client, 5, [0x9a]);
});

test('[MQTT-3.3.1-8] v4: a retained message sent on subscribe is at min(published, granted) QoS', async (t) => {
  const { port } = await broker(t);
  const topic = `rq/${uid()}`;
  const p = await raw(t, port, { version: 4, clientId: uid() });
  p.send(publish({ topic, payload: 'q2', qos: 2, packetId: 1, retain: true }));
  await p.expect(T.PUBREC);
  p.send(Buffer.from([0x62, 2, 0, 1]));
  await p.expect(T.PUBCOMP);
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 1);
  const got = parsePublish(await s.expect(T.PUBLISH), 4);
  assert.equal(got.qos, 1);
  assert.equal(got.retain, true);
});

async function pub1Retained(c: Awaited<ReturnType<typeof raw>>, v: Version, topic: string, payload: string, id: number): Promise<void> {
  c.send(publish({ version: v, topic, payload, qos: 1, packetId: id, retain: true }));
  await c.expect(T.PUBACK);
}
