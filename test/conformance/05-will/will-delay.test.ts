/** v5 Will Delay Interval: the Will goes out when the delay or the session ends, whichever is first, never early. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, disconnect, type ConnectOptions } from '../../helpers/raw-client.js';
import { broker, delay, nextPublish, raw, sub, uid } from '../support.js';

test('[MQTT-3.1.2-8] v5: with a Will Delay Interval the Will is sent when the delay ends, never early', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, {
    version: 5,
    clientId: uid(),
    clean: true,
    properties: [[P.SessionExpiryInterval, 60]],
    will: { topic, payload: 'late', qos: 1, properties: [[P.WillDelayInterval, 1]] },
  });
  const closedAt = Date.now();
  w.destroy();
  const got = await nextPublish(s, 5, 3500);
  const after = Date.now() - closedAt;
  assert.equal(got.payload.toString(), 'late');
  assert.ok(after >= 950, `Will sent after ${after} ms, before its 1 s delay`);
});

test('[MQTT-3.1.2-8] v5: the Will goes out when the session ends before the Will Delay Interval', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, {
    version: 5,
    clientId: uid(),
    properties: [[P.SessionExpiryInterval, 1]],
    will: { topic, payload: 'session over', qos: 1, properties: [[P.WillDelayInterval, 30]] },
  });
  const closedAt = Date.now();
  w.destroy();
  const got = await nextPublish(s, 5, 3500);
  assert.equal(got.payload.toString(), 'session over');
  assert.ok(Date.now() - closedAt >= 950, 'not before the session expired');
});

test('[MQTT-3.1.2-8] v5: session expiry 0 ends the session at once, so a delayed Will goes out immediately', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, {
    version: 5,
    clientId: uid(),
    will: { topic, payload: 'now', qos: 1, properties: [[P.WillDelayInterval, 30]] },
  });
  w.destroy();
  assert.equal((await nextPublish(s, 5, 1500)).payload.toString(), 'now');
});

test('[MQTT-3.1.3-9] v5: reconnecting within the Will Delay Interval cancels the Will', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const id = uid();
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const o: ConnectOptions = {
    version: 5,
    clientId: id,
    clean: false,
    properties: [[P.SessionExpiryInterval, 60]],
    will: { topic, payload: 'should not', qos: 1, properties: [[P.WillDelayInterval, 1]] },
  };
  const w = await raw(t, port, o);
  w.destroy();
  await delay(200);
  const back = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  assert.equal(await s.silentFor(1600), undefined, 'the Will must not be sent');
  back.send(disconnect(0x00));
});

test('v5: a normal DISCONNECT 0x00 with a Will Delay discards the Will even after the delay', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, {
    version: 5,
    clientId: uid(),
    properties: [[P.SessionExpiryInterval, 1]],
    will: { topic, payload: 'no', qos: 1, properties: [[P.WillDelayInterval, 1]] },
  });
  w.send(disconnect(0x00));
  await w.waitClose();
  assert.equal(await s.silentFor(1500), undefined);
});

test('[MQTT-3.1.3-9] v5: a takeover (Clean Start 0) within the Will Delay Interval does not publish the Will', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const id = uid();
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const o: ConnectOptions = {
    version: 5,
    clientId: id,
    clean: false,
    properties: [[P.SessionExpiryInterval, 60]],
    will: { topic, payload: 'should not', qos: 1, properties: [[P.WillDelayInterval, 5]] },
  };
  const first = await raw(t, port, o);
  const second = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  await first.waitClose();
  assert.equal(await s.silentFor(800), undefined, 'the Will must not be sent on takeover within its delay');
  second.send(disconnect(0x00));
});
