import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { Proxy, PUBACK, PUBLISH } from './client-proxy.js';

// mosquitto announces max_inflight_messages as Receive Maximum and max_packet_size as Maximum Packet Size (v5).
const limits = ['max_inflight_messages 3', 'max_packet_size 1000'];

test('v5: never more QoS 1/2 PUBLISH in flight than the broker\'s Receive Maximum [MQTT-3.3.4-7]', async (t) => {
  const broker = await startMosquitto(t, { extraConfig: limits });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { reconnect: false });
  t.after(() => client.end());
  // Hold back the PUBACKs: the quota stays used up.
  const held: Buffer[] = [];
  proxy.passDown = (p) => {
    if (p.type !== PUBACK) return true;
    held.push(p.bytes);
    return false;
  };
  const flows = Array.from({ length: 10 }, (_, i) => client.publish('rm', String(i), { qos: 1 }));
  const conn = proxy.connections[0];
  assert.ok(conn);
  await proxy.until(() => held.length === 3);
  // A round trip (PINGREQ/PINGRESP is not held) proves the client had its chance to send more.
  await client.subscribe('rm-probe');
  assert.equal(conn.up.filter((p) => p.type === PUBLISH).length, 3);
  proxy.passDown = () => true;
  for (const bytes of held) conn.client.write(bytes);
  const results = await Promise.all(flows);
  assert.equal(results.length, 10);
  assert.equal(conn.up.filter((p) => p.type === PUBLISH).length, 10);
});

test('v5: a PUBLISH above the broker\'s Maximum Packet Size is refused locally, the connection stays [MQTT-3.2.2-15]', async (t) => {
  const broker = await startMosquitto(t, { extraConfig: limits });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { reconnect: false });
  t.after(() => client.end());
  await assert.rejects(client.publish('big', Buffer.alloc(2000), { qos: 1 }), { code: 'MQTT_ERR_PACKET_TOO_LARGE' });
  await assert.rejects(client.publish('big', Buffer.alloc(2000), { qos: 0 }), { code: 'MQTT_ERR_PACKET_TOO_LARGE' });
  const ok = await client.publish('small', Buffer.alloc(100), { qos: 1 });
  // 0x10 No matching subscribers: a success code, the promise resolves with it.
  assert.equal(ok.reasonCode, 0x10);
  assert.equal(client.connected, true);
  const conn = proxy.connections[0];
  assert.ok(conn);
  assert.equal(conn.up.filter((p) => p.type === PUBLISH).length, 1, 'only the small PUBLISH went out');
});

test('v5: with topicAliases, a repeated topic goes out as an alias with an empty topic name [MQTT-3.3.2-8] [MQTT-3.3.2-9]', async (t) => {
  const broker = await startMosquitto(t, { extraConfig: ['max_topic_alias 2'] });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { reconnect: false, topicAliases: true });
  t.after(() => client.end());
  await client.subscribe('alias/#', { qos: 1 });
  const got: string[] = [];
  client.on('message', (m) => got.push(`${m.topic}=${m.payload.toString()}`));
  for (const topic of ['alias/a', 'alias/a', 'alias/b', 'alias/c', 'alias/c', 'alias/a']) await client.publish(topic, topic, { qos: 1 });
  while (got.length < 6) await new Promise((resolve) => client.once('message', resolve));
  assert.deepEqual(got, ['alias/a', 'alias/a', 'alias/b', 'alias/c', 'alias/c', 'alias/a'].map((x) => `${x}=${x}`));
  const conn = proxy.connections[0];
  assert.ok(conn);
  // Topic name length (the two bytes after the fixed header) per PUBLISH: 0 when the alias stands in for it.
  const lengths = conn.up.filter((p) => p.type === PUBLISH).map((p) => p.bytes.readUInt16BE(2));
  // a: full + alias 1; a: alias only; b: full + alias 2; c: no alias left (maximum 2), full twice; a: alias only.
  assert.deepEqual(lengths, [7, 0, 7, 7, 7, 0]);
});
