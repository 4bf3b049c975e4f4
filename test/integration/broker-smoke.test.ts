/** End-to-end smoke tests over TCP with MQTT.js, for MQTT 3.1.1 and 5.0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as mqttConnect, connectAsync, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { nextEvent, startBroker } from '../helpers/broker.js';

async function connect(t: { after(fn: () => unknown): void }, url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await connectAsync(url, { reconnectPeriod: 0, ...opts });
  t.after(() => c.endAsync(true));
  return c;
}

function nextMessage(c: MqttClient): Promise<[string, Buffer, IPublishPacket]> {
  return nextEvent(c, 'message') as Promise<[string, Buffer, IPublishPacket]>;
}

for (const protocolVersion of [4, 5] as const) {
  const v = protocolVersion === 4 ? '3.1.1' : '5.0';

  test(`MQTT ${v}: publish and subscribe at QoS 0, 1 and 2 with downgrade`, async (t) => {
    const { url } = await startBroker(t);
    const sub = await connect(t, url, { protocolVersion, clientId: 'sub' });
    const granted = await sub.subscribeAsync('q/#', { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    const pub = await connect(t, url, { protocolVersion, clientId: 'pub' });
    for (const qos of [0, 1, 2] as const) {
      const got = nextMessage(sub);
      await pub.publishAsync(`q/${qos}`, `m${qos}`, { qos });
      const [topic, payload, packet] = await got;
      assert.equal(topic, `q/${qos}`);
      assert.equal(payload.toString(), `m${qos}`);
      assert.equal(packet.qos, Math.min(qos, 1));
    }
  });

  test(`MQTT ${v}: retained message delivered on subscribe with RETAIN=1, cleared by an empty payload`, async (t) => {
    const { url } = await startBroker(t);
    const pub = await connect(t, url, { protocolVersion, clientId: 'pub' });
    await pub.publishAsync('r/1', 'kept', { qos: 1, retain: true });
    const sub = await connect(t, url, { protocolVersion, clientId: 'sub' });
    const got = nextMessage(sub);
    await sub.subscribeAsync('r/+', { qos: 1 });
    const [, payload, packet] = await got;
    assert.equal(payload.toString(), 'kept');
    assert.equal(packet.retain, true);
    await pub.publishAsync('r/1', '', { qos: 1, retain: true });
    const late = await connect(t, url, { protocolVersion, clientId: 'late' });
    let received = 0;
    late.on('message', () => received++);
    await late.subscribeAsync('r/+', { qos: 1 });
    // A round trip through the broker after the SUBACK: any retained message would have arrived before it.
    const echo = nextMessage(late);
    await late.subscribeAsync('echo', { qos: 1 });
    await late.publishAsync('echo', 'x', { qos: 1 });
    await echo;
    assert.equal(received, 1);
  });

  test(`MQTT ${v}: the will is published when a client's connection drops`, async (t) => {
    const { url } = await startBroker(t);
    const watcher = await connect(t, url, { protocolVersion, clientId: 'watcher' });
    await watcher.subscribeAsync('will/#', { qos: 1 });
    const doomed = await connectAsync(url, {
      protocolVersion,
      clientId: 'doomed',
      reconnectPeriod: 0,
      will: { topic: 'will/doomed', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    const got = nextMessage(watcher);
    doomed.stream.destroy();
    const [topic, payload] = await got;
    assert.equal(topic, 'will/doomed');
    assert.equal(payload.toString(), 'gone');
    await doomed.endAsync(true);
  });

  test(`MQTT ${v}: a persistent session keeps subscriptions and queued QoS 1 messages while offline`, async (t) => {
    const { url } = await startBroker(t);
    const opts: IClientOptions = { protocolVersion, clientId: 'persist', clean: false };
    if (protocolVersion === 5) opts.properties = { sessionExpiryInterval: 60 };
    const first = await connectAsync(url, { ...opts, reconnectPeriod: 0 });
    await first.subscribeAsync('p/#', { qos: 1 });
    await first.endAsync();
    const pub = await connect(t, url, { protocolVersion, clientId: 'pub' });
    await pub.publishAsync('p/1', 'while-away', { qos: 1 });
    // Listen before the CONNACK arrives: the queued message follows it immediately.
    const second = mqttConnect(url, { ...opts, reconnectPeriod: 0 });
    t.after(() => second.endAsync(true));
    const got = nextMessage(second);
    const [, payload] = await got;
    assert.equal(payload.toString(), 'while-away');
  });
}

test('MQTT 5.0: subscription identifiers, user properties and a takeover disconnect with 0x8E', async (t) => {
  const { url } = await startBroker(t);
  const sub = await connect(t, url, { protocolVersion: 5, clientId: 'sub' });
  await sub.subscribeAsync('a/+', { qos: 1, properties: { subscriptionIdentifier: 12 } });
  const pub = await connect(t, url, { protocolVersion: 5, clientId: 'pub' });
  const got = nextMessage(sub);
  await pub.publishAsync('a/b', 'x', { qos: 1, properties: { userProperties: { k: 'v' }, contentType: 'text/plain' } });
  const [, , packet] = await got;
  assert.deepEqual(packet.properties?.subscriptionIdentifier, 12);
  assert.deepEqual({ ...packet.properties?.userProperties }, { k: 'v' });
  assert.equal(packet.properties?.contentType, 'text/plain');
  const disconnected = nextEvent(sub, 'disconnect') as Promise<[{ reasonCode?: number }]>;
  const usurper = await connect(t, url, { protocolVersion: 5, clientId: 'sub' });
  const [d] = await disconnected;
  assert.equal(d.reasonCode, 0x8e);
  assert.ok(usurper.connected);
});

test('MQTT 5.0: broker close sends DISCONNECT 0x8B (server shutting down) to connected clients', async (t) => {
  const { broker, url } = await startBroker(t);
  const c = await connect(t, url, { protocolVersion: 5, clientId: 'c' });
  const disconnected = nextEvent(c, 'disconnect') as Promise<[{ reasonCode?: number }]>;
  await broker.close();
  const [d] = await disconnected;
  assert.equal(d.reasonCode, 0x8b);
});

test('MQTT 5.0: Broker.disconnectClient sends DISCONNECT 0x98 and publishes the will', async (t) => {
  const { broker, url } = await startBroker(t);
  const watcher = await connect(t, url, { protocolVersion: 5, clientId: 'watcher' });
  await watcher.subscribeAsync('will');
  const c = await connect(t, url, { protocolVersion: 5, clientId: 'kicked', will: { topic: 'will', payload: Buffer.from('kicked'), qos: 0, retain: false } });
  const disconnected = nextEvent(c, 'disconnect') as Promise<[{ reasonCode?: number }]>;
  const will = nextMessage(watcher);
  assert.equal(broker.disconnectClient('kicked'), true);
  assert.equal(broker.disconnectClient('nobody'), false);
  const [d] = await disconnected;
  assert.equal(d.reasonCode, 0x98);
  assert.equal((await will)[1].toString(), 'kicked');
});
