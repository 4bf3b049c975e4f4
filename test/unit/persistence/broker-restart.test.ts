/**
 * A whole broker on SQLite storage, stopped and started again on the same file: persistent sessions (v5 Session
 * Expiry and v3.1.1 Clean Session 0) keep their subscriptions and get the QoS 1/2 messages queued while offline;
 * retained messages are still there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBroker, type Broker } from '../../../src/broker/index.js';
import { openStorage, type Storage } from '../../../src/broker/persistence/open.js';
import { SqliteRetainedStore } from '../../../src/broker/persistence/sqlite-retained.js';
import { SqliteDatabase, SqliteStore } from '../../../src/broker/persistence/sqlite-store.js';
import { silentLogger, type Logger } from '../../../src/shared/logger.js';
import { recordingLogger } from '../../helpers/log-recorder.js';
import { shiftedBrokers, tempDir } from './helpers.js';

async function start(t: TestContext, path: string, logger: Logger = silentLogger): Promise<{ broker: Broker; storage: Storage; url: string }> {
  const storage = await openStorage({ type: 'sqlite', path, durability: 'batch', cleanupIntervalMs: 0 }, logger);
  const broker = createBroker(
    { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], sys: { enabled: false } },
    { store: storage.store, retained: storage.retained },
  );
  await broker.start();
  t.after(async () => {
    await broker.close(100);
    await storage.close();
  });
  return { broker, storage, url: `mqtt://127.0.0.1:${broker.addresses()[0]?.port ?? 0}` };
}

async function client(t: TestContext, url: string, options: IClientOptions): Promise<{ c: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...options });
  t.after(() => c.end(true));
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, sessionPresent: connack.sessionPresent };
}

function messages(c: MqttClient, n: number): Promise<Array<{ topic: string; payload: string; retain: boolean }>> {
  const out: Array<{ topic: string; payload: string; retain: boolean }> = [];
  return new Promise((resolve) => {
    c.on('message', (topic, payload, packet) => {
      out.push({ topic, payload: payload.toString(), retain: packet.retain });
      if (out.length === n) resolve(out);
    });
  });
}

test('restart: persistent sessions, their subscriptions and queued QoS 1/2 messages, and retained messages survive', async (t) => {
  const path = join(tempDir(t), 'data', 'telemq.db');
  const first = await start(t, path);
  const v5 = { clientId: 'restart-v5', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 3600 } };
  const v4 = { clientId: 'restart-v4', protocolVersion: 4 as const, clean: false };
  for (const o of [v5, v4]) {
    const { c } = await client(t, first.url, o);
    await c.subscribeAsync({ 'q/#': { qos: 2 } });
    await c.endAsync();
  }
  const pub = (await client(t, first.url, { clientId: 'restart-pub', protocolVersion: 5 })).c;
  await pub.publishAsync('q/1', 'one', { qos: 1 });
  await pub.publishAsync('q/2', 'two', { qos: 2 });
  await pub.publishAsync('ret/x', 'kept', { qos: 1, retain: true });
  await pub.publishAsync('ret/y', 'cleared', { qos: 1, retain: true });
  await pub.publishAsync('ret/y', '', { qos: 1, retain: true });
  await pub.endAsync();
  await first.broker.close(100);
  await first.storage.close();

  const second = await start(t, path);
  const subs: MqttClient[] = [];
  for (const o of [v5, v4]) {
    const c = mqtt.connect(second.url, { reconnectPeriod: 0, ...o });
    t.after(() => c.end(true));
    const got = messages(c, 2);
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => c.once('connect', resolve));
    // [MQTT-3.2.2-3] the stored session is resumed: Session Present 1.
    assert.equal(connack.sessionPresent, true, `${o.clientId}: session present after restart`);
    // MQTT.js hands a QoS 2 message over at PUBREL, so the arrival order of QoS 1 and 2 may differ.
    assert.deepEqual(
      (await got).map((m) => `${m.topic}=${m.payload}`).sort(),
      ['q/1=one', 'q/2=two'],
      `${o.clientId}: queued messages delivered`,
    );
    c.removeAllListeners('message');
    subs.push(c);
  }
  // The subscriptions themselves survived: a new publish reaches both clients without resubscribing.
  const live = subs.map((c) => messages(c, 1));
  second.broker.publish({ topic: 'q/3', payload: 'three', qos: 1 });
  for (const l of live) assert.deepEqual((await l).map((m) => m.payload), ['three']);
  const { c: reader } = await client(t, second.url, { clientId: 'restart-reader', protocolVersion: 5 });
  const retained = messages(reader, 1);
  await reader.subscribeAsync('ret/#', { qos: 1 });
  assert.deepEqual(await retained, [{ topic: 'ret/x', payload: 'kept', retain: true }]);
});

test('[MQTT-4.1.0-2] restart: a session whose expiry passed while the broker was down is gone; a longer one is resumed', async (t) => {
  // The broker is "down" for 5 s without the test waiting for it.
  const brokers = shiftedBrokers(t);
  const first = await brokers.start();
  for (const [clientId, sessionExpiryInterval] of [
    ['short', 2],
    ['long', 60],
  ] as const) {
    const { c } = await client(t, first.url, { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval } });
    await c.subscribeAsync('x', { qos: 1 });
    await c.endAsync();
  }
  await first.stop();
  brokers.shift(5000);
  const second = await brokers.start();
  for (const [clientId, present] of [
    ['short', false],
    ['long', true],
  ] as const) {
    const { c, sessionPresent } = await client(t, second.url, { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    // [MQTT-3.1.2-23] the session is kept after the connection closed; [MQTT-4.1.0-2] and discarded once expired,
    // the broker's downtime included.
    assert.equal(sessionPresent, present, `${clientId}: session present = ${present}`);
    await c.endAsync();
  }
});

test('a stopped broker leaves no session-expiry or will timer behind to fire into its closed store', async (t) => {
  const path = join(tempDir(t), 'data', 'telemq.db');
  const { logger, lines } = recordingLogger(['warn', 'error']);
  const first = await start(t, path, logger);
  // [MQTT-3.1.3-9] a will waiting 1 s, in a session that expires 1 s after the connection is lost.
  const { c } = await client(t, first.url, {
    clientId: 'timers',
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 1 },
    will: { topic: 'w', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
  });
  c.stream.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  await first.broker.close(100);
  await first.storage.close();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(lines.map((l) => l.msg), [], 'nothing written after close');
});
