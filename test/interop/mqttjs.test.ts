/** Interop: MQTT.js (npm `mqtt`) as 3.1.1 and 5.0 client against the telemq broker. */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { startBroker } from '../helpers/broker.js';

let seq = 0;
const uid = (p: string): string => `${p}${process.pid}x${++seq}`;

type Version = 4 | 5;

async function client(t: TestContext, url: string, version: Version, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  t.after(() => c.endAsync(true));
  return c;
}

interface Msg {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

/** Collects messages until `count` arrived (resolves) or timeoutMs passed (rejects). */
function expectMessages(c: mqtt.MqttClient, count: number, timeoutMs = 3000): Promise<Msg[]> {
  return new Promise((resolve, reject) => {
    const got: Msg[] = [];
    const onMsg = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      got.push({ topic, payload: payload.toString(), packet });
      if (got.length === count) {
        clearTimeout(timer);
        c.off('message', onMsg);
        resolve(got);
      }
    };
    const timer = setTimeout(() => {
      c.off('message', onMsg);
      reject(new Error(`expected ${count} messages, got ${got.length}: ${got.map((m) => m.payload).join(', ')}`));
    }, timeoutMs);
    c.on('message', onMsg);
  });
}

/** Everything that arrives within ms. */
function quietly(c: mqtt.MqttClient, ms: number): Promise<Msg[]> {
  return new Promise((resolve) => {
    const got: Msg[] = [];
    const onMsg = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      got.push({ topic, payload: payload.toString(), packet });
    };
    c.on('message', onMsg);
    setTimeout(() => {
      c.off('message', onMsg);
      resolve(got);
    }, ms);
  });
}

for (const v of [4, 5] as const) {
  test(`MQTT.js v${v}: QoS 0, 1 and 2 end to end, downgraded to the granted QoS`, async (t) => {
    const { url } = await startBroker(t);
    const base = uid('js/qos/');
    const s = await client(t, url, v);
    const granted = await s.subscribeAsync({ [`${base}/q2`]: { qos: 2 }, [`${base}/q1`]: { qos: 1 } });
    assert.deepEqual(granted.map((g) => g.qos), [2, 1]);
    const p = await client(t, url, v);
    const got = expectMessages(s, 4);
    await p.publishAsync(`${base}/q2`, 'zero', { qos: 0 });
    await p.publishAsync(`${base}/q2`, 'one', { qos: 1 });
    await p.publishAsync(`${base}/q2`, 'two', { qos: 2 });
    await p.publishAsync(`${base}/q1`, 'two-down', { qos: 2 });
    const msgs = await got;
    const byPayload = new Map(msgs.map((m) => [m.payload, m.packet.qos]));
    assert.deepEqual(Object.fromEntries(byPayload), { zero: 0, one: 1, two: 2, 'two-down': 1 });
  });

  test(`MQTT.js v${v}: persistent session keeps subscriptions and queues QoS 1/2 messages while offline`, async (t) => {
    const { url } = await startBroker(t);
    const topic = uid('js/sess/');
    const clientId = uid('jsess');
    const persistent: mqtt.IClientOptions =
      v === 5 ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } } : { clientId, clean: false };
    const a = await client(t, url, v, persistent);
    await a.subscribeAsync(topic, { qos: 2 });
    await a.endAsync();
    const p = await client(t, url, v);
    await p.publishAsync(topic, 'q1 offline', { qos: 1 });
    await p.publishAsync(topic, 'q2 offline', { qos: 2 });
    await p.publishAsync(topic, 'q0 offline', { qos: 0 });
    const b = mqtt.connect(url, { protocolVersion: v, reconnectPeriod: 0, ...persistent });
    t.after(() => b.endAsync(true));
    const got = expectMessages(b, 2);
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      b.once('connect', resolve);
      b.once('error', reject);
    });
    assert.equal(connack.sessionPresent, true);
    const msgs = await got;
    assert.deepEqual(msgs.map((m) => m.payload).sort(), ['q1 offline', 'q2 offline']);
    const extra = await quietly(b, 300);
    assert.ok(extra.every((m) => m.payload === 'q0 offline'), 'QoS 0 may be dropped or delivered, nothing else');
  });

  test(`MQTT.js v${v}: retained set, replaced, delivered with retain flag, cleared`, async (t) => {
    const { url } = await startBroker(t);
    const topic = uid('js/ret/');
    const p = await client(t, url, v);
    await p.publishAsync(topic, 'first', { qos: 1, retain: true });
    await p.publishAsync(topic, 'second', { qos: 1, retain: true });
    const s = await client(t, url, v);
    const got = expectMessages(s, 1);
    await s.subscribeAsync(topic, { qos: 1 });
    const [m] = await got;
    assert.equal(m?.payload, 'second');
    assert.equal(m?.packet.retain, true);
    await p.publishAsync(topic, '', { qos: 1, retain: true });
    await s.endAsync();
    const late = await client(t, url, v);
    await late.subscribeAsync(topic, { qos: 1 });
    assert.deepEqual(await quietly(late, 400), []);
  });

  test(`MQTT.js v${v}: shared subscription distributes among members`, async (t) => {
    const { url } = await startBroker(t);
    const topic = uid('js/share/');
    const a = await client(t, url, v);
    const b = await client(t, url, v);
    await a.subscribeAsync(`$share/workers/${topic}`, { qos: 1 });
    await b.subscribeAsync(`$share/workers/${topic}`, { qos: 1 });
    const ga = quietly(a, 1500);
    const gb = quietly(b, 1500);
    const p = await client(t, url, v);
    for (let i = 0; i < 10; i++) await p.publishAsync(topic, `job${i}`, { qos: 1 });
    const [ra, rb] = await Promise.all([ga, gb]);
    const all = [...ra, ...rb].map((m) => m.payload).sort();
    assert.deepEqual(all, Array.from({ length: 10 }, (_, i) => `job${i}`).sort(), 'each job exactly once');
    assert.ok(ra.length > 0 && rb.length > 0, `both members got work (${ra.length}/${rb.length})`);
    assert.ok([...ra, ...rb].every((m) => m.topic === topic));
  });

  test(`MQTT.js v${v}: last will on an abnormal disconnect`, async (t) => {
    const { url } = await startBroker(t);
    const topic = uid('js/will/');
    const s = await client(t, url, v);
    await s.subscribeAsync(topic, { qos: 1 });
    const w = await client(t, url, v, { will: { topic, payload: Buffer.from('bye'), qos: 1, retain: false } });
    const got = expectMessages(s, 1);
    w.stream.destroy();
    const [m] = await got;
    assert.equal(m?.payload, 'bye');
  });
}

test('MQTT.js v5: properties, No Local, subscription identifiers and topic aliases', async (t) => {
  const { url } = await startBroker(t);
  const topic = uid('js/v5/');
  const s = await client(t, url, 5, { properties: { topicAliasMaximum: 10 } });
  await s.subscribeAsync(topic, { qos: 1, properties: { subscriptionIdentifier: 42 } });
  await s.subscribeAsync(`${topic}/#`, { qos: 1, nl: true });
  const p = await client(t, url, 5, { properties: { topicAliasMaximum: 10 } });
  const got = expectMessages(s, 3);
  const props: mqtt.IClientPublishOptions['properties'] = {
    contentType: 'application/json',
    responseTopic: `${topic}/reply`,
    correlationData: Buffer.from('c-1'),
    userProperties: { site: 'north', line: ['a', 'b'] },
    messageExpiryInterval: 60,
    payloadFormatIndicator: true,
  };
  for (let i = 0; i < 3; i++) await p.publishAsync(topic, `{"i":${i}}`, { qos: 1, properties: props });
  const msgs = await got;
  for (const [i, m] of msgs.entries()) {
    assert.equal(m.topic, topic, 'MQTT.js resolves broker-assigned aliases back to the topic');
    assert.equal(m.payload, `{"i":${i}}`);
    const pr = m.packet.properties ?? {};
    assert.equal(pr.contentType, 'application/json');
    assert.equal(pr.responseTopic, `${topic}/reply`);
    assert.deepEqual(pr.correlationData, Buffer.from('c-1'));
    assert.deepEqual({ ...pr.userProperties }, { site: 'north', line: ['a', 'b'] });
    assert.equal(pr.payloadFormatIndicator, true);
    assert.ok((pr.messageExpiryInterval ?? 0) > 0 && (pr.messageExpiryInterval ?? 0) <= 60);
    const sid = pr.subscriptionIdentifier;
    assert.deepEqual(Array.isArray(sid) ? sid : [sid], [42]);
  }
  // No Local: the subscriber's own publication on topic/x is not echoed through the nl subscription.
  await s.publishAsync(`${topic}/x`, 'own', { qos: 1 });
  assert.deepEqual(await quietly(s, 400), []);
});

test('MQTT.js v5: session takeover disconnects the old client with reason 0x8E', async (t) => {
  const { url } = await startBroker(t);
  const clientId = uid('jstake');
  const a = await client(t, url, 5, { clientId });
  const disconnected = new Promise<mqtt.IDisconnectPacket>((resolve) => a.once('disconnect', resolve));
  await client(t, url, 5, { clientId });
  const d = await disconnected;
  assert.equal(d.reasonCode, 0x8e);
});

test('MQTT.js v4 and v5 clients exchange messages on one broker', async (t) => {
  const { url } = await startBroker(t);
  const topic = uid('js/mixed/');
  const old = await client(t, url, 4);
  const modern = await client(t, url, 5);
  await old.subscribeAsync(topic, { qos: 2 });
  await modern.subscribeAsync(topic, { qos: 2 });
  const g1 = expectMessages(old, 2);
  const g2 = expectMessages(modern, 2);
  await old.publishAsync(topic, 'from v4', { qos: 2 });
  await modern.publishAsync(topic, 'from v5', { qos: 2, properties: { userProperties: { k: 'v' } } });
  assert.deepEqual((await g1).map((m) => m.payload), ['from v4', 'from v5']);
  const m5 = await g2;
  assert.deepEqual(m5.map((m) => m.payload), ['from v4', 'from v5']);
  // mqtt-packet builds user properties on a null-prototype object.
  assert.deepEqual({ ...m5[1]?.packet.properties?.userProperties }, { k: 'v' });
});
