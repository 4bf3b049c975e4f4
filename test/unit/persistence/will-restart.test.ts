/**
 * A v5 will waiting for its Will Delay Interval while the broker restarts on the same SQLite file: it goes out when
 * its delay runs out or its session ends, whichever comes first, downtime included [MQTT-3.1.3-9]; never when the
 * client came back in time; and it leaves the stored session once published or cancelled [MQTT-3.1.2-10].
 * A persistent "watcher" session subscribed to will/# sees every will, also one published while it is offline.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { openSqlite, shiftedBrokers } from './helpers.js';

async function connect(t: TestContext, url: string, options: IClientOptions): Promise<{ c: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, protocolVersion: 5, ...options });
  t.after(() => c.end(true));
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, sessionPresent: connack.sessionPresent };
}

/** A client whose session (Clean Start 0) outlives its connection and whose will waits `willDelayInterval` s. */
function willClient(clientId: string, sessionExpiryInterval: number, willDelayInterval: number): IClientOptions {
  return {
    clientId,
    clean: false,
    properties: { sessionExpiryInterval },
    will: { topic: `will/${clientId}`, payload: Buffer.from(`${clientId} is gone`), qos: 1, retain: false, properties: { willDelayInterval } },
  };
}

const WATCHER: IClientOptions = { clientId: 'watcher', clean: false, properties: { sessionExpiryInterval: 3600 } };

/** Creates the watcher's session and its will/# subscription, then leaves it offline. */
async function createWatcher(t: TestContext, url: string): Promise<void> {
  const { c } = await connect(t, url, WATCHER);
  await c.subscribeAsync('will/#', { qos: 1 });
  await c.endAsync();
}

interface Arrival {
  payload: string;
  at: number;
}

/** Reconnects the watcher; its inbox records every will with its arrival time, queued ones included. */
async function watch(t: TestContext, url: string): Promise<{ got: Arrival[]; waitFor(n: number, ms: number): Promise<void> }> {
  const got: Arrival[] = [];
  let wake: (() => void) | undefined;
  const c = mqtt.connect(url, { reconnectPeriod: 0, protocolVersion: 5, ...WATCHER });
  t.after(() => c.end(true));
  c.on('message', (_topic, payload) => {
    got.push({ payload: payload.toString(), at: Date.now() });
    wake?.();
  });
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => c.once('connect', resolve));
  assert.equal(connack.sessionPresent, true, 'the watcher session survived the restart');
  return {
    got,
    /** Resolves once `n` messages are in, or after `ms` with whatever came: the caller asserts. */
    async waitFor(n, ms) {
      const deadline = Date.now() + ms;
      while (got.length < n && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deadline - Date.now());
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}

/** The network connection breaks without DISCONNECT: the will is due [MQTT-3.1.2-8]. @returns when. */
function drop(c: MqttClient): number {
  const at = Date.now();
  c.stream.destroy();
  return at;
}

// Timers may fire a millisecond early against Date.now(); later is a matter of load, so that bound is looser.
const EARLY_MS = 10;
const LATE_MS = 350;

test('[MQTT-3.1.3-9] restart within the Will Delay Interval: the will goes out when the delay ends, not before, not later', async (t) => {
  const b = shiftedBrokers(t);
  const first = await b.start();
  await createWatcher(t, first.url);
  const { c } = await connect(t, first.url, willClient('a', 60, 2));
  const droppedAt = drop(c);
  await sleep(500);
  await first.stop();

  const second = await b.start();
  const restartedAt = Date.now();
  const inbox = await watch(t, second.url);
  await inbox.waitFor(1, 3000);
  const will = inbox.got[0];
  assert.equal(will?.payload, 'a is gone', 'the will survived the restart');
  assert.ok(will.at - droppedAt >= 2000 - EARLY_MS, `not before the delay: ${will.at - droppedAt} ms after the drop`);
  // Re-armed with what was left of the delay (~1.5 s), not with the whole delay again.
  assert.ok(will.at - droppedAt < 2000 + LATE_MS, `on time: ${will.at - droppedAt} ms after the drop, ${will.at - restartedAt} ms after the restart`);
  await inbox.waitFor(2, 300);
  assert.equal(inbox.got.length, 1, 'published once');
});

test('[MQTT-3.1.3-9] [MQTT-3.1.2-10] reconnecting after a restart but within the delay cancels the will, also for the next restart', async (t) => {
  const b = shiftedBrokers(t);
  const first = await b.start();
  await createWatcher(t, first.url);
  const { c } = await connect(t, first.url, willClient('b', 60, 2));
  const droppedAt = drop(c);
  await sleep(500);
  await first.stop();

  const second = await b.start();
  const inbox = await watch(t, second.url);
  const back = await connect(t, second.url, { clientId: 'b', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.equal(back.sessionPresent, true);
  assert.ok(Date.now() - droppedAt < 2000, 'the test reconnected within the delay');
  await back.c.endAsync();
  await inbox.waitFor(1, droppedAt + 2000 + LATE_MS - Date.now());
  assert.deepEqual(inbox.got, [], 'no will after a reconnect in time');
  await second.stop();

  // The cancelled will left the file: a third broker has nothing to publish.
  const file = openSqlite(t, { path: b.path, durability: 'batch' });
  const stored = file.store.loadSessions().find((s) => s.record.clientId === 'b');
  assert.ok(stored, 'the session of b is still stored');
  assert.equal(stored.will, undefined, 'and has no will');
  file.store.close();
  const third = await b.start();
  const again = await watch(t, third.url);
  await again.waitFor(1, 300);
  assert.deepEqual(again.got, [], 'still no will after another restart');
});

test('[MQTT-3.1.3-9] a will that fell due while the broker was down goes out right after the restart, also when its session expired meanwhile', async (t) => {
  const b = shiftedBrokers(t);
  const first = await b.start();
  await createWatcher(t, first.url);
  // 'c' keeps its session; the session of 'gone' (3 s) ends during the downtime too.
  await connect(t, first.url, willClient('c', 60, 2));
  await connect(t, first.url, willClient('gone', 3, 2));
  // A shutdown is no DISCONNECT from the client: both wills start waiting, and are stored.
  await first.stop();
  b.shift(5000);

  const second = await b.start();
  const restartedAt = Date.now();
  const inbox = await watch(t, second.url);
  await inbox.waitFor(2, 1000);
  assert.deepEqual(inbox.got.map((m) => m.payload).sort(), ['c is gone', 'gone is gone']);
  for (const m of inbox.got) assert.ok(m.at - restartedAt < 1000, `promptly: ${m.at - restartedAt} ms after the restart`);
  await inbox.waitFor(3, 300);
  assert.equal(inbox.got.length, 2, 'each published once');
  const c = await connect(t, second.url, { clientId: 'c', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.equal(c.sessionPresent, true, 'the session of c outlives its will');
  const gone = await connect(t, second.url, { clientId: 'gone', clean: false, properties: { sessionExpiryInterval: 60 } });
  // [MQTT-4.1.0-2] the expired session was not resumed.
  assert.equal(gone.sessionPresent, false, 'the session of gone ended');
});

test('[MQTT-3.1.3-9] session expiry shorter than the Will Delay Interval: after a restart the will goes out when the session ends', async (t) => {
  const b = shiftedBrokers(t);
  const first = await b.start();
  await createWatcher(t, first.url);
  const { c } = await connect(t, first.url, willClient('d', 2, 60));
  const droppedAt = drop(c);
  await sleep(500);
  await first.stop();

  const second = await b.start();
  const inbox = await watch(t, second.url);
  await inbox.waitFor(1, 3000);
  const will = inbox.got[0];
  assert.equal(will?.payload, 'd is gone', 'the will went out with the end of the session');
  assert.ok(will.at - droppedAt >= 2000 - EARLY_MS, `not before the session ended: ${will.at - droppedAt} ms after the drop`);
  assert.ok(will.at - droppedAt < 2000 + LATE_MS, `when it ended, not after the 60 s delay: ${will.at - droppedAt} ms`);
  const d = await connect(t, second.url, { clientId: 'd', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.equal(d.sessionPresent, false, 'the session ended');
});
