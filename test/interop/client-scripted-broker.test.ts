import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message } from '../../src/client/index.js';
import type { Packet } from '../../src/protocol/index.js';
import { scriptedBroker } from '../helpers/scripted-broker.js';

const publish = (packetId: number, dup: boolean, text: string): Packet => ({ type: 'publish', topic: 'q2', payload: Buffer.from(text), qos: 2, retain: false, dup, packetId });

for (const version of [4, 5] as const) {
  test(`v${version}: incoming QoS 2 is delivered once per packet id until PUBREL, then the id is new [MQTT-4.3.3-10] [MQTT-4.3.3-11]`, async (t) => {
    const broker = await scriptedBroker(t, version);
    const client = await connect(broker.url, { protocolVersion: version, reconnect: false });
    t.after(() => client.end());
    const got: Message[] = [];
    client.on('message', (m) => got.push(m));
    const types = (): string[] => broker.received.filter((p) => p.type !== 'connect').map((p) => `${p.type}:${'packetId' in p ? p.packetId : ''}`);
    broker.send(publish(7, false, 'first'));
    broker.send(publish(7, true, 'first again'));
    await broker.until(() => types().length === 2);
    broker.send({ type: 'pubrel', packetId: 7 });
    await broker.until(() => types().length === 3);
    broker.send(publish(7, false, 'second'));
    await broker.until(() => types().length === 4);
    assert.deepEqual(types(), ['pubrec:7', 'pubrec:7', 'pubcomp:7', 'pubrec:7']);
    assert.deepEqual(got.map((m) => [m.payload.toString(), m.dup]), [['first', false], ['second', false]]);
  });
}

test('v5: incoming Topic Alias within our maximum is resolved; one above it closes with DISCONNECT 0x94 [MQTT-3.3.2-10]', async (t) => {
  const broker = await scriptedBroker(t, 5);
  const client = await connect(broker.url, { reconnect: false, properties: { topicAliasMaximum: 2 } });
  t.after(() => client.end());
  const got: string[] = [];
  client.on('message', (m) => got.push(`${m.topic}=${m.payload.toString()}`));
  const errors: string[] = [];
  client.on('error', (e) => errors.push((e as { code?: string }).code ?? ''));
  const base = { type: 'publish', qos: 0, retain: false, dup: false } as const;
  broker.send({ ...base, topic: 'plant/a', payload: Buffer.from('1'), properties: { topicAlias: 1 } });
  broker.send({ ...base, topic: '', payload: Buffer.from('2'), properties: { topicAlias: 1 } });
  broker.send({ ...base, topic: '', payload: Buffer.from('3'), properties: { topicAlias: 3 } });
  await broker.until(() => broker.received.some((p) => p.type === 'disconnect'));
  assert.deepEqual(got, ['plant/a=1', 'plant/a=2']);
  const disconnect = broker.received.find((p) => p.type === 'disconnect');
  assert.equal(disconnect?.type === 'disconnect' ? disconnect.reasonCode : undefined, 0x94);
  assert.deepEqual(errors, ['MQTT_ERR_TOPIC_ALIAS_INVALID']);
});

test('v5: a PUBACK with a failure reason code rejects publish() with it', async (t) => {
  const broker = await scriptedBroker(t, 5);
  const client = await connect(broker.url, { reconnect: false });
  t.after(() => client.end());
  const result = client.publish('secret', 'x', { qos: 1 });
  await broker.until(() => broker.received.some((p) => p.type === 'publish'));
  const sent = broker.received.find((p) => p.type === 'publish');
  assert.ok(sent?.type === 'publish' && sent.packetId !== undefined);
  broker.send({ type: 'puback', packetId: sent.packetId, reasonCode: 0x87, properties: { reasonString: 'acl' } });
  await assert.rejects(result, { code: 'MQTT_ERR_REFUSED', reasonCode: 0x87, message: 'PUBLISH refused: not authorized (0x87): acl' });
});
