import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message, type MqttClient } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { Proxy, PINGREQ, PUBACK, PUBCOMP, PUBLISH, PUBREL, SUBSCRIBE, type WirePacket } from './client-proxy.js';

const fastReconnect = { initialDelay: 20, maxDelay: 100 };

function collect(client: MqttClient, into: Message[]): void {
  client.on('message', (m) => into.push(m));
}

function publishTopic(p: WirePacket): string {
  let i = 1;
  while (((p.bytes[i] as number) & 0x80) !== 0) i++;
  const len = p.bytes.readUInt16BE(i + 1);
  return p.bytes.subarray(i + 3, i + 3 + len).toString();
}

for (const protocolVersion of [4, 5] as const) {
  test(`v${protocolVersion}: after a cut, unacknowledged PUBLISH is resent with DUP=1 and PUBREL resent, in original order [MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-1]`, async (t) => {
    const broker = await startMosquitto(t);
    const proxy = await Proxy.start(broker.port);
    t.after(() => proxy.close());
    const watcher = await connect(broker.url, { reconnect: false });
    t.after(() => watcher.end());
    await watcher.subscribe('r/#', { qos: 2 });
    const seen: Message[] = [];
    collect(watcher, seen);

    const client = await connect(proxy.url, {
      protocolVersion,
      clientId: `resend-${protocolVersion}`,
      cleanStart: protocolVersion === 5,
      ...(protocolVersion === 5 ? { sessionExpiryInterval: 60 } : { cleanStart: false }),
      reconnect: fastReconnect,
    });
    t.after(() => client.end());
    // Lose every PUBACK and PUBCOMP: A and B stay unacknowledged, C waits in the PUBREL state.
    proxy.passDown = (p) => p.type !== PUBACK && p.type !== PUBCOMP;
    const a = client.publish('r/a', 'A', { qos: 1 });
    const c = client.publish('r/c', 'C', { qos: 2 });
    const b = client.publish('r/b', 'B', { qos: 1 });
    const first = proxy.connections[0];
    assert.ok(first);
    await proxy.until(() => first.up.some((p) => p.type === PUBREL));

    const reconnected = new Promise((resolve) => client.once('connect', resolve));
    proxy.passDown = () => true;
    proxy.cut();
    await reconnected;
    const results = await Promise.all([a, c, b]);
    assert.deepEqual(results.map((r) => r.reasonCode), [0, 0, 0]);

    const second = proxy.connections[1];
    assert.ok(second);
    const resent = second.up.filter((p) => p.type === PUBLISH || p.type === PUBREL);
    assert.deepEqual(
      resent.map((p) => (p.type === PUBREL ? 'PUBREL' : `PUBLISH ${publishTopic(p)} dup=${(p.flags >> 3) & 1}`)),
      ['PUBLISH r/a dup=1', 'PUBREL', 'PUBLISH r/b dup=1'],
    );
    // The PUBREL re-uses the packet id of C's original PUBLISH [MQTT-4.4.0-1].
    const cFirst = first.up.find((p) => p.type === PUBLISH && publishTopic(p) === 'r/c');
    assert.ok(cFirst);
    const rel = resent[1];
    assert.ok(rel);
    assert.equal(rel.bytes.readUInt16BE(2), results[1]?.packetId);

    await watcher.publish('r/z', 'end', { qos: 1 });
    while (!seen.some((m) => m.topic === 'r/z')) await new Promise((resolve) => watcher.once('message', resolve));
    // Exactly once for the QoS 2 message, at least once for QoS 1.
    assert.equal(seen.filter((m) => m.topic === 'r/c').length, 1);
    assert.ok(seen.some((m) => m.topic === 'r/a'));
    assert.ok(seen.some((m) => m.topic === 'r/b'));
  });
}

test('resubscribes when the broker kept no session (Session Present 0) [MQTT-3.2.2-5]', async (t) => {
  const broker = await startMosquitto(t);
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { protocolVersion: 4, reconnect: fastReconnect });
  t.after(() => client.end());
  await client.subscribe('resub/#', { qos: 1 });
  const back = new Promise<boolean>((resolve) => client.once('connect', (c) => resolve(c.sessionPresent)));
  proxy.cut();
  assert.equal(await back, false);
  await proxy.until(() => (proxy.connections[1]?.up ?? []).some((p) => p.type === SUBSCRIBE));
  // Wait for the SUBACK by a round trip: QoS 1 to ourselves.
  const got = new Promise<Message>((resolve) => client.once('message', resolve));
  await client.publish('resub/x', 'again', { qos: 1 });
  assert.equal((await got).payload.toString(), 'again');
});

test('offline queue: publish while disconnected is queued in order and bounded', async (t) => {
  const broker = await startMosquitto(t);
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const watcher = await connect(broker.url, { reconnect: false });
  t.after(() => watcher.end());
  await watcher.subscribe('q/#', { qos: 1 });
  const seen: string[] = [];
  watcher.on('message', (m) => seen.push(m.payload.toString()));
  const client = await connect(proxy.url, { reconnect: fastReconnect, offlineQueueLimit: 3 });
  t.after(() => client.end());
  const offline = new Promise((resolve) => client.once('offline', resolve));
  proxy.refuse = true;
  proxy.cut();
  await offline;
  assert.equal(client.connected, false);
  const queued = [client.publish('q/1', '1', { qos: 1 }), client.publish('q/2', '2', { qos: 0 }), client.publish('q/3', '3', { qos: 2 })];
  await assert.rejects(client.publish('q/4', '4', { qos: 1 }), { code: 'MQTT_ERR_QUEUE_FULL' });
  proxy.refuse = false;
  await Promise.all(queued);
  while (seen.length < 3) await new Promise((resolve) => watcher.once('message', resolve));
  assert.deepEqual(seen, ['1', '2', '3']);
});

test('keep alive: PINGREQ when idle, and a silent connection is detected as dead and replaced [MQTT-3.1.2-23]', async (t) => {
  const broker = await startMosquitto(t);
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { keepAlive: 1, reconnect: fastReconnect });
  t.after(() => client.end());
  const first = proxy.connections[0];
  assert.ok(first);
  await proxy.until(() => first.up.some((p) => p.type === PINGREQ));
  const offline = new Promise<Error | undefined>((resolve) => client.once('offline', resolve));
  const back = new Promise((resolve) => client.once('connect', resolve));
  proxy.blackhole = true;
  await offline;
  proxy.blackhole = false;
  await back;
  assert.equal(client.connected, true);
  assert.equal(proxy.connections.length, 2);
});

test('packet ids never collide across many concurrent flows [MQTT-2.2.1-3]', async (t) => {
  const broker = await startMosquitto(t);
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { reconnect: false });
  t.after(() => client.end());
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => client.publish('ids', String(i), { qos: (1 + (i % 2)) as 1 | 2 })));
  assert.equal(results.length, 300);
  // While in flight, no two PUBLISH carried the same id.
  const first = proxy.connections[0];
  assert.ok(first);
  const ids = first.up.filter((p) => p.type === PUBLISH).map((p) => {
    let i = 1;
    while (((p.bytes[i] as number) & 0x80) !== 0) i++;
    const topicLen = p.bytes.readUInt16BE(i + 1);
    return p.bytes.readUInt16BE(i + 3 + topicLen);
  });
  assert.equal(ids.length, 300);
  assert.equal(new Set(ids).size, 300);
});
