import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync } from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import { RawClient, T, connect, subscribe } from '../helpers/raw-client.js';

test('$SYS/broker/... topics are published (retained) and a subscriber to # does not get them [MQTT-4.7.2-1]', async (t) => {
  const { url } = await startBroker(t, { sys: { enabled: true, interval: 60 } });
  const all = await connectAsync(url, { protocolVersion: 4, clientId: 'all', reconnectPeriod: 0 });
  t.after(() => all.endAsync(true));
  const fromHash: string[] = [];
  all.on('message', (topic) => fromHash.push(topic));
  await all.subscribeAsync('#', { qos: 0 });
  const sys = await connectAsync(url, { protocolVersion: 5, clientId: 'sys', reconnectPeriod: 0 });
  t.after(() => sys.endAsync(true));
  const values = new Map<string, string>();
  const wanted = ['version', 'uptime', 'clients/connected', 'messages/received', 'bytes/sent', 'subscriptions/count', 'retained messages/count'];
  const done = new Promise<void>((resolve) => {
    sys.on('message', (topic, payload) => {
      values.set(topic.replace('$SYS/broker/', ''), payload.toString());
      if (wanted.every((w) => values.has(w))) resolve();
    });
  });
  await sys.subscribeAsync('$SYS/broker/#', { qos: 0 });
  await done;
  assert.match(values.get('version') ?? '', /^telemq \d+\.\d+\.\d+/);
  assert.match(values.get('uptime') ?? '', /^\d+ seconds$/);
  // A client may not publish to $SYS: the retained value stays the broker's.
  await sys.publishAsync('$SYS/broker/version', 'forged', { qos: 1, retain: true }).catch(() => undefined);
  const check = await connectAsync(url, { protocolVersion: 5, clientId: 'check', reconnectPeriod: 0 });
  t.after(() => check.endAsync(true));
  const version = new Promise<string>((resolve) => check.on('message', (_t, p) => resolve(p.toString())));
  await check.subscribeAsync('$SYS/broker/version');
  assert.match(await version, /^telemq /);
  assert.deepEqual(fromHash, []);
});

test('$SYS/broker/limits/<kind> and connections/... count limits hit and connections closed for abuse', async (t) => {
  const { broker, url, port } = await startBroker(t, { sys: { enabled: true, interval: 1 }, mqtt: { maximumTopicLevels: 3 } });
  // One protocol error: garbage instead of CONNECT.
  const bad = await RawClient.connect(port);
  bad.send(Buffer.from([0x00, 0x00]));
  await bad.waitClose();
  // One limit: a filter with more levels than allowed gets SUBACK 0x80 (v3.1.1).
  const deep = await RawClient.connect(port);
  t.after(() => deep.destroy());
  deep.send(connect({ version: 4, clientId: 'deep' }));
  await deep.expect(T.CONNACK);
  deep.send(subscribe({ version: 4 }, { topic: 'a/b/c/d' }));
  const suback = await deep.expect(T.SUBACK);
  assert.equal(suback.body[2], 0x80);
  // One refused CONNECT: an empty client id without clean session.
  const refused = await RawClient.connect(port);
  refused.send(connect({ version: 4, clientId: '', clean: false }));
  await refused.waitClose();
  assert.equal(broker.limitsHit.topicLevels, 1);

  const sys = await connectAsync(url, { protocolVersion: 5, clientId: 'sys', reconnectPeriod: 0 });
  t.after(() => sys.endAsync(true));
  const values = new Map<string, string>();
  const want: Record<string, string> = {
    'limits/topicLevels': '1',
    'limits/connections': '0',
    'limits/publishRate': '0',
    'connections/protocol errors': '1',
    'connections/closed before connect': '1',
  };
  // The retained values may predate the events: wait for the next publication (every second).
  const done = new Promise<void>((resolve) => {
    sys.on('message', (topic, payload) => {
      values.set(topic.replace('$SYS/broker/', ''), payload.toString());
      if (Object.entries(want).every(([k, v]) => values.get(k) === v)) resolve();
    });
  });
  await sys.subscribeAsync('$SYS/broker/#', { qos: 0 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`$SYS values not seen: ${JSON.stringify(Object.fromEntries(values))}`)), 5000);
  });
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
  // One topic per limit kind.
  for (const kind of Object.keys(broker.limitsHit)) assert.ok(values.has(`limits/${kind}`), `limits/${kind}`);
});
