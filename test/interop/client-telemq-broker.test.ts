import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message, type MqttClient } from '../../src/client/index.js';
import { startBroker } from '../helpers/broker.js';
import { Proxy, PUBACK, PUBCOMP, PUBLISH, PUBREL, type WirePacket } from './client-proxy.js';

// The same client scenarios as against mosquitto, against the telemq broker.

function nextMessage(client: MqttClient): Promise<Message> {
  return new Promise((resolve) => client.once('message', resolve));
}

function publishTopic(p: WirePacket): string {
  let i = 1;
  while (((p.bytes[i] as number) & 0x80) !== 0) i++;
  const len = p.bytes.readUInt16BE(i + 1);
  return p.bytes.subarray(i + 3, i + 3 + len).toString();
}

for (const protocolVersion of [3, 4, 5] as const) {
  test(`telemq broker, v${protocolVersion}: QoS 0/1/2 publish and receive, events and iterator, unsubscribe`, async (t) => {
    const broker = await startBroker(t);
    const sub = await connect(broker.url, { protocolVersion, reconnect: false });
    t.after(() => sub.end());
    const pub = await connect(broker.url, { protocolVersion, reconnect: false, topicAliases: true });
    t.after(() => pub.end());
    assert.deepEqual(await sub.subscribe('t/+/x', { qos: 2 }), [2]);
    const iterator = sub.messages('t/#');
    for (const qos of [0, 1, 2] as const) {
      const received = nextMessage(sub);
      assert.equal((await pub.publish(`t/${qos}/x`, `hello ${qos}`, { qos })).reasonCode, 0);
      const msg = await received;
      assert.equal(msg.payload.toString(), `hello ${qos}`);
      assert.equal(msg.qos, qos);
      assert.equal((await iterator.next()).value?.topic, `t/${qos}/x`);
    }
    await iterator.return?.();
    assert.deepEqual(await sub.unsubscribe('t/+/x'), protocolVersion === 5 ? [0] : []);
  });
}

test('telemq broker, v5: after a cut, PUBLISH resent with DUP=1 and PUBREL resent in order; QoS 2 exactly once [MQTT-4.4.0-1] [MQTT-3.3.1-1]', async (t) => {
  const broker = await startBroker(t);
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const watcher = await connect(broker.url, { reconnect: false });
  t.after(() => watcher.end());
  await watcher.subscribe('r/#', { qos: 2 });
  const seen: Message[] = [];
  watcher.on('message', (m) => seen.push(m));
  const client = await connect(proxy.url, { clientId: 'resend-telemq', cleanStart: false, sessionExpiryInterval: 60, reconnect: { initialDelay: 20, maxDelay: 100 } });
  t.after(() => client.end());
  proxy.passDown = (p) => p.type !== PUBACK && p.type !== PUBCOMP;
  const flows = [client.publish('r/a', 'A', { qos: 1 }), client.publish('r/c', 'C', { qos: 2 }), client.publish('r/b', 'B', { qos: 1 })];
  const first = proxy.connections[0];
  assert.ok(first);
  await proxy.until(() => first.up.some((p) => p.type === PUBREL));
  const back = new Promise<boolean>((resolve) => client.once('connect', (c) => resolve(c.sessionPresent)));
  proxy.passDown = () => true;
  proxy.cut();
  assert.equal(await back, true);
  await Promise.all(flows);
  const second = proxy.connections[1];
  assert.ok(second);
  assert.deepEqual(
    second.up.filter((p) => p.type === PUBLISH || p.type === PUBREL).map((p) => (p.type === PUBREL ? 'PUBREL' : `PUBLISH ${publishTopic(p)} dup=${(p.flags >> 3) & 1}`)),
    ['PUBLISH r/a dup=1', 'PUBREL', 'PUBLISH r/b dup=1'],
  );
  await watcher.publish('r/z', 'end', { qos: 1 });
  while (!seen.some((m) => m.topic === 'r/z')) await nextMessage(watcher);
  assert.equal(seen.filter((m) => m.topic === 'r/c').length, 1);
});

test('telemq broker, v5: a session taken over by another connection (DISCONNECT 0x8E) is not fought for [MQTT-3.1.4-3]', async (t) => {
  const broker = await startBroker(t);
  const first = await connect(broker.url, { clientId: 'twin', reconnect: { initialDelay: 20, maxDelay: 100 } });
  t.after(() => first.end());
  const disconnect = new Promise<number | undefined>((resolve) => first.once('disconnect', (p) => resolve(p.reasonCode)));
  const closed = new Promise<void>((resolve) => first.once('close', resolve));
  const reconnects: number[] = [];
  first.on('reconnect', (n) => reconnects.push(n));
  const second = await connect(broker.url, { clientId: 'twin', reconnect: false });
  t.after(() => second.end());
  assert.equal(await disconnect, 0x8e);
  await closed;
  assert.deepEqual(reconnects, []);
  assert.equal(second.connected, true);
  await assert.rejects(first.publish('x', 'y'), { code: 'MQTT_ERR_CONNECTION_CLOSED' });
});
