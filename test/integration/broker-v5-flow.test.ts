/** MQTT 5.0 flow features against MQTT.js: broker-assigned topic aliases and the client's Receive Maximum. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync } from 'mqtt';
import { startBroker } from '../helpers/broker.js';

test('[MQTT-3.3.2-11] broker-assigned topic aliases are resolved by MQTT.js (Topic Alias Maximum 2)', async (t) => {
  const { url } = await startBroker(t);
  const sub = await connectAsync(url, { protocolVersion: 5, clientId: 'alias-sub', reconnectPeriod: 0, properties: { topicAliasMaximum: 2 } });
  t.after(() => sub.endAsync(true));
  const got: Array<[string, string, number | undefined]> = [];
  const all = new Promise<void>((resolve) => {
    sub.on('message', (topic, payload, packet) => {
      got.push([topic, payload.toString(), packet.properties?.topicAlias]);
      if (got.length === 6) resolve();
    });
  });
  await sub.subscribeAsync('al/#', { qos: 1 });
  const pub = await connectAsync(url, { protocolVersion: 5, clientId: 'alias-pub', reconnectPeriod: 0 });
  t.after(() => pub.endAsync(true));
  for (const topic of ['al/a', 'al/b', 'al/c', 'al/a', 'al/b', 'al/c']) await pub.publishAsync(topic, topic, { qos: 1 });
  await all;
  assert.deepEqual(got.map(([topic, payload]) => [topic, payload]), [
    ['al/a', 'al/a'], ['al/b', 'al/b'], ['al/c', 'al/c'], ['al/a', 'al/a'], ['al/b', 'al/b'], ['al/c', 'al/c'],
  ]);
  // Two aliases were available: al/a and al/b got them, al/c was always sent in full.
  assert.deepEqual(got.map(([, , alias]) => alias), [1, 2, undefined, 1, 2, undefined]);
});

test('[MQTT-3.3.4-9] a v5 client with Receive Maximum 1 gets every QoS 1 message, one in flight at a time', async (t) => {
  const { url } = await startBroker(t);
  const sub = await connectAsync(url, { protocolVersion: 5, clientId: 'rm-sub', reconnectPeriod: 0, properties: { receiveMaximum: 1 } });
  t.after(() => sub.endAsync(true));
  const got: string[] = [];
  const all = new Promise<void>((resolve) => {
    sub.on('message', (_topic, payload) => {
      got.push(payload.toString());
      if (got.length === 50) resolve();
    });
  });
  await sub.subscribeAsync('rm', { qos: 1 });
  const pub = await connectAsync(url, { protocolVersion: 5, clientId: 'rm-pub', reconnectPeriod: 0 });
  t.after(() => pub.endAsync(true));
  await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publishAsync('rm', String(i), { qos: 1 })));
  await all;
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => String(i)));
});
