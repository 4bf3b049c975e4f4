import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ConnectionRefusedError, type Message, type MqttClient } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';

function nextMessage(client: MqttClient): Promise<Message> {
  return new Promise((resolve) => client.once('message', resolve));
}

for (const protocolVersion of [3, 4, 5] as const) {
  test(`v${protocolVersion}: publish QoS 0/1/2 and receive through mosquitto, events and async iterator`, async (t) => {
    const broker = await startMosquitto(t);
    const sub = await connect(broker.url, { protocolVersion, reconnect: false });
    t.after(() => sub.end());
    const pub = await connect(broker.url, { protocolVersion, reconnect: false });
    t.after(() => pub.end());
    assert.deepEqual(await sub.subscribe('t/+/x', { qos: 2 }), [2]);
    const iterator = sub.messages('t/#');
    for (const qos of [0, 1, 2] as const) {
      const received = nextMessage(sub);
      const result = await pub.publish(`t/${qos}/x`, `hello ${qos}`, { qos });
      assert.equal(result.reasonCode, 0);
      if (qos > 0) assert.equal(typeof result.packetId, 'number');
      const msg = await received;
      assert.equal(msg.topic, `t/${qos}/x`);
      assert.equal(msg.payload.toString(), `hello ${qos}`);
      assert.equal(msg.qos, qos);
      const fromIterator = await iterator.next();
      assert.equal(fromIterator.done, false);
      assert.equal(fromIterator.value?.topic, `t/${qos}/x`);
    }
    await iterator.return?.();
    assert.deepEqual(await sub.unsubscribe('t/+/x'), protocolVersion === 5 ? [0] : []);
  });
}

test('retained message and the will: a client that dies leaves its will [MQTT-3.1.2-8]', async (t) => {
  const broker = await startMosquitto(t);
  const watcher = await connect(broker.url, { reconnect: false });
  t.after(() => watcher.end());
  await watcher.subscribe('will/#', { qos: 1 });
  const doomed = await connect(broker.url, {
    reconnect: false,
    will: { topic: 'will/doomed', payload: 'gone', qos: 1 },
    properties: { receiveMaximum: 10 },
  });
  await doomed.publish('retained/a', 'kept', { qos: 1, retain: true });
  const will = nextMessage(watcher);
  // A DISCONNECT with reason 0x04 asks the broker to publish the will [MQTT-3.14.2-1].
  await doomed.end({ reasonCode: 0x04 });
  const msg = await will;
  assert.equal(msg.topic, 'will/doomed');
  assert.equal(msg.payload.toString(), 'gone');
  const late = await connect(broker.url, { reconnect: false });
  t.after(() => late.end());
  const retained = nextMessage(late);
  await late.subscribe('retained/#');
  const r = await retained;
  assert.equal(r.retain, true);
  assert.equal(r.payload.toString(), 'kept');
});

for (const protocolVersion of [4, 5] as const) {
  test(`v${protocolVersion}: a refused CONNECT rejects with the CONNACK code`, async (t) => {
    const broker = await startMosquitto(t, { denyAnonymous: true });
    const error = await connect(broker.url, { protocolVersion, reconnect: false }).then(
      () => assert.fail('connect should fail'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof ConnectionRefusedError);
    assert.equal(error.code, 'MQTT_ERR_CONNECTION_REFUSED');
    assert.equal(error.reasonCode, 0x87);
    if (protocolVersion === 5) {
      assert.equal(error.returnCode, 0x87);
      assert.match(error.message, /^Connection refused: not authorized \(CONNACK 0x87\)/);
    } else {
      assert.equal(error.returnCode, 0x05);
      assert.match(error.message, /^Connection refused: not authorized \(CONNACK 0x05\)/);
    }
  });
}

test('v5: user properties and correlation data travel; a generated ClientID has 23 characters', async (t) => {
  const broker = await startMosquitto(t);
  const client = await connect(broker.url, { reconnect: false });
  t.after(() => client.end());
  assert.match(client.clientId, /^telemq-[0-9a-f]{16}$/);
  await client.subscribe('props', { qos: 1 });
  const received = nextMessage(client);
  await client.publish('props', Buffer.from([0, 1, 2]), {
    qos: 1,
    properties: { userProperties: [['a', 'b']], correlationData: Buffer.from('id-1'), contentType: 'application/octet-stream' },
  });
  const msg = await received;
  assert.deepEqual([...msg.payload], [0, 1, 2]);
  assert.deepEqual(msg.properties?.userProperties, [['a', 'b']]);
  assert.equal(msg.properties?.correlationData?.toString(), 'id-1');
  assert.equal(msg.properties?.contentType, 'application/octet-stream');
});

test('v5: outgoing Topic Aliases, and publish refuses an invalid topic name [MQTT-3.3.2-2]', async (t) => {
  const broker = await startMosquitto(t);
  const client = await connect(broker.url, { reconnect: false, topicAliases: true });
  t.after(() => client.end());
  await client.subscribe('alias/topic', { qos: 1 });
  const got: string[] = [];
  client.on('message', (m) => got.push(`${m.topic}=${m.payload.toString()}`));
  for (let i = 0; i < 3; i++) await client.publish('alias/topic', String(i), { qos: 1 });
  await client.publish('alias/topic', 'end', { qos: 1 });
  while (got.length < 4) await nextMessage(client);
  assert.deepEqual(got, ['alias/topic=0', 'alias/topic=1', 'alias/topic=2', 'alias/topic=end']);
  await assert.rejects(client.publish('a/+/b', 'x'), { code: 'MQTT_ERR_TOPIC_NAME_INVALID' });
});
