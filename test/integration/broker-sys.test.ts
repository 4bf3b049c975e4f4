import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync } from 'mqtt';
import { startBroker } from '../helpers/broker.js';

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
