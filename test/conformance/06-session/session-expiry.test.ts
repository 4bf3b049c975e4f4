/** v5 session expiry (CONNECT, DISCONNECT, server maximum) and the per-session queue limit. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, ack, disconnect, parsePublish, prop, type ConnectOptions, type Version } from '../../helpers/raw-client.js';
import { broker, delay, pub1, raw, rawAny, sub, uid } from '../support.js';

/** Persistent-session connect options: v3 CleanSession=0, v5 Clean Start=0 with a session expiry. */
function persistent(v: Version, clientId: string, expiry = 60): ConnectOptions {
  return v === 5
    ? { version: v, clientId, clean: false, properties: [[P.SessionExpiryInterval, expiry]] }
    : { version: v, clientId, clean: false };
}

test('[MQTT-3.1.2-23] v5: Session Expiry Interval 0 ends the session when the connection closes', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const a = await raw(t, port, { version: 5, clientId: id, clean: false });
  a.destroy();
  await delay(100);
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: false });
  assert.equal(b.connack.sessionPresent, false);
});

test('[MQTT-3.1.2-23] v5: a session expires after its Session Expiry Interval', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const a = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 1]] });
  a.destroy();
  await delay(300);
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 1]] });
  assert.equal(b.connack.sessionPresent, true, 'still there before expiry');
  b.client.destroy();
  await delay(1600);
  const c = await rawAny(t, port, { version: 5, clientId: id, clean: false });
  assert.equal(c.connack.sessionPresent, false, 'gone after expiry');
});

test('v5: DISCONNECT can set a new Session Expiry Interval (3.14.2.2.2)', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const a = await raw(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  a.send(disconnect(0x00, [[P.SessionExpiryInterval, 0]]));
  await a.waitClose();
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: false });
  assert.equal(b.connack.sessionPresent, false, 'expiry 0 from DISCONNECT ended the session');
});

test('queue limit: an offline session keeps at most maximumQueuedMessages, dropping per queueOverflow', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQueuedMessages: 3, queueOverflow: 'dropOldest' } });
  const id = uid();
  const topic = `ql/${uid()}`;
  const a = await raw(t, port, persistent(4, id));
  await sub(a, 4, topic, 1);
  a.send(disconnect());
  await a.waitClose();
  const p = await raw(t, port, { version: 4, clientId: uid() });
  for (let i = 1; i <= 5; i++) await pub1(p, 4, topic, `m${i}`, i);
  const b = await raw(t, port, persistent(4, id));
  const got: string[] = [];
  for (;;) {
    const m = await b.silentFor(500);
    if (m === undefined || m === 'closed') break;
    const pm = parsePublish(m, 4);
    got.push(pm.payload.toString());
    b.send(ack(T.PUBACK, pm.packetId ?? 0));
  }
  assert.deepEqual(got, ['m3', 'm4', 'm5'], 'dropOldest keeps the newest three');
});

test('v5: a Session Expiry Interval above the server maximum is lowered and announced in CONNACK (3.2.2.3.2)', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumSessionExpiryInterval: 1 } });
  const id = uid();
  const a = await rawAny(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 3600]] });
  assert.equal(prop(a.connack.properties, P.SessionExpiryInterval), 1, 'the server tells the client the value it uses');
  a.client.destroy();
  await delay(1700);
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: false });
  assert.equal(b.connack.sessionPresent, false, 'the session expired after the server maximum');
});

test('queue limit: dropNewest keeps the oldest maximumQueuedMessages', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQueuedMessages: 2, queueOverflow: 'dropNewest' } });
  const id = uid();
  const topic = `qn/${uid()}`;
  const a = await raw(t, port, persistent(4, id));
  await sub(a, 4, topic, 1);
  a.send(disconnect());
  await a.waitClose();
  const p = await raw(t, port, { version: 4, clientId: uid() });
  for (let i = 1; i <= 4; i++) await pub1(p, 4, topic, `m${i}`, i);
  const b = await raw(t, port, persistent(4, id));
  const got: string[] = [];
  for (;;) {
    const m = await b.silentFor(500);
    if (m === undefined || m === 'closed') break;
    const pm = parsePublish(m, 4);
    got.push(pm.payload.toString());
    b.send(ack(T.PUBACK, pm.packetId ?? 0));
  }
  assert.deepEqual(got, ['m1', 'm2']);
});

test('[MQTT-3.1.2-4] [MQTT-3.1.2-23] v5: Clean Start 1 with a Session Expiry Interval starts a new session that outlives the connection', async (t) => {
  const { port } = await broker(t);
  const id = uid();
  const topic = `cs1/${uid()}`;
  const a = await rawAny(t, port, { version: 5, clientId: id, clean: true, properties: [[P.SessionExpiryInterval, 60]] });
  assert.equal(a.connack.sessionPresent, false);
  await sub(a.client, 5, topic, 1);
  a.client.destroy();
  await delay(100);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  await pub1(p, 5, topic, 'kept', 1);
  const b = await rawAny(t, port, { version: 5, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60]] });
  assert.equal(b.connack.sessionPresent, true);
  const m = parsePublish(await b.client.expect(T.PUBLISH), 5);
  assert.equal(m.payload.toString(), 'kept');
});

test('queue limit: dropped messages are counted in $SYS/broker/messages/dropped', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumQueuedMessages: 1, queueOverflow: 'dropOldest' }, sys: { enabled: true, interval: 1 } });
  const id = uid();
  const topic = `qd/${uid()}`;
  const a = await raw(t, port, persistent(4, id));
  await sub(a, 4, topic, 1);
  a.send(disconnect());
  await a.waitClose();
  const p = await raw(t, port, { version: 4, clientId: uid() });
  for (let i = 1; i <= 4; i++) await pub1(p, 4, topic, `m${i}`, i);
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, '$SYS/broker/messages/dropped', 0);
  const deadline = Date.now() + 2500;
  let dropped = 0;
  while (dropped < 3) {
    assert.ok(Date.now() < deadline, `messages/dropped stayed at ${dropped}, expected at least 3`);
    const m = parsePublish(await s.expect(T.PUBLISH, deadline - Date.now()), 4);
    dropped = Number(m.payload.toString());
  }
});
