import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConnackPacket, DisconnectPacket, Packet, PublishPacket } from '../../../src/protocol/index.js';
import { setup, will } from './harness.js';

const publishes = (ps: Packet[]): PublishPacket[] => ps.filter((p): p is PublishPacket => p.type === 'publish');

test('[MQTT-3.2.2-2] [MQTT-3.2.2-3] Session Present: 0 on clean start, 1 when a session is resumed', () => {
  const { client } = setup();
  const a = client(4);
  assert.equal((a.connect({ clientId: 'x', cleanStart: false })[0] as ConnackPacket).sessionPresent, false);
  a.drop();
  const b = client(4);
  assert.equal((b.connect({ clientId: 'x', cleanStart: false })[0] as ConnackPacket).sessionPresent, true);
  b.drop();
  const c = client(4);
  // [MQTT-3.1.2-4] Clean Start discards the session.
  assert.equal((c.connect({ clientId: 'x', cleanStart: true })[0] as ConnackPacket).sessionPresent, false);
});

test('v3 Clean Session 1 and v5 Session Expiry 0: the session ends with the connection', () => {
  const { client, core } = setup();
  const a = client(4);
  a.connect({ clientId: 'v3' });
  a.subscribe('t', 1);
  a.drop();
  const b = client(5);
  b.connect({ clientId: 'v5', cleanStart: false });
  b.subscribe('t', 1);
  b.drop();
  assert.equal(core.sessions.size, 0);
  assert.equal(core.tree.count, 0);
});

test('v5 Session Expiry Interval: the session survives until the interval passes', () => {
  const { client, clock, core } = setup();
  const a = client(5);
  a.connect({ clientId: 's', properties: { sessionExpiryInterval: 10 } });
  a.drop();
  clock.advance(9_000);
  assert.ok(core.sessions.has('s'));
  clock.advance(1_000);
  assert.ok(!core.sessions.has('s'));
});

test('maximumSessionExpiryInterval caps the requested interval and CONNACK says so', () => {
  const { client } = setup({ limits: { maximumSessionExpiryInterval: 60 } });
  const [connack] = client(5).connect({ properties: { sessionExpiryInterval: 3600 } }) as ConnackPacket[];
  assert.equal(connack?.properties?.sessionExpiryInterval, 60);
});

test('[MQTT-3.1.4-3] takeover: the old connection gets DISCONNECT 0x8E and is closed; its will is published', () => {
  const { client } = setup();
  const watcher = client(5);
  watcher.connect({ clientId: 'w' });
  watcher.subscribe('will');
  const old = client(5);
  old.connect({ clientId: 'dup', will: will('will', 'gone') });
  const fresh = client(5);
  const [connack] = fresh.connect({ clientId: 'dup' }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0);
  const [d] = old.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x8e);
  assert.ok(old.closed);
  assert.deepEqual(watcher.messages().map((m) => m.payload.toString()), ['gone']);
});

test('[MQTT-3.1.2-8] the will is published when the connection is lost; [MQTT-3.14.4-3] not after DISCONNECT 0x00', () => {
  const { client } = setup();
  const w = client(4);
  w.connect({ clientId: 'w' });
  w.subscribe('will/#', 1);
  const a = client(4);
  a.connect({ clientId: 'a', will: will('will/a', 'lost', { qos: 1 }) });
  a.drop();
  const b = client(4);
  b.connect({ clientId: 'b', will: will('will/b', 'bye') });
  b.in({ type: 'disconnect' });
  b.drop();
  const got = w.messages();
  assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.qos]), [['will/a', 'lost', 1]]);
});

test('v5 DISCONNECT 0x04 (Disconnect with Will Message) publishes the will', () => {
  const { client } = setup();
  const w = client(5);
  w.connect({ clientId: 'w' });
  w.subscribe('will');
  const a = client(5);
  a.connect({ clientId: 'a', will: will('will', 'asked') });
  a.in({ type: 'disconnect', reasonCode: 0x04 });
  a.drop();
  assert.deepEqual(w.messages().map((m) => m.payload.toString()), ['asked']);
});

test('a retained will is stored as the retained message of its topic', () => {
  const { client, core } = setup();
  const a = client(4);
  a.connect({ clientId: 'a', will: will('status/a', 'offline', { retain: true }) });
  a.drop();
  assert.equal(core.retained.get('status/a')?.payload.toString(), 'offline');
});

test('[MQTT-3.1.3-9] Will Delay: not published before the delay; not at all when the client reconnects in time', () => {
  const { client, clock } = setup();
  const w = client(5);
  w.connect({ clientId: 'w' });
  w.subscribe('will');
  const props = { sessionExpiryInterval: 100 };
  const a = client(5);
  a.connect({ clientId: 'a', properties: props, will: will('will', 'late', { properties: { willDelayInterval: 5 } }) });
  a.drop();
  clock.advance(4_999);
  assert.equal(w.messages().length, 0);
  clock.advance(1);
  assert.deepEqual(w.messages().map((m) => m.payload.toString()), ['late']);
  const b = client(5);
  b.connect({ clientId: 'b', properties: props, will: will('will', 'never', { properties: { willDelayInterval: 5 } }) });
  b.drop();
  clock.advance(2_000);
  const b2 = client(5);
  b2.connect({ clientId: 'b', cleanStart: false, properties: props });
  clock.advance(10_000);
  assert.equal(w.messages().length, 0);
});

test('Will Delay longer than the session: the will goes out when the session ends, never early', () => {
  const { client, clock } = setup();
  const w = client(5);
  w.connect({ clientId: 'w' });
  w.subscribe('will');
  const a = client(5);
  a.connect({ clientId: 'a', properties: { sessionExpiryInterval: 3 }, will: will('will', 'end', { properties: { willDelayInterval: 60 } }) });
  a.drop();
  clock.advance(2_999);
  assert.equal(w.messages().length, 0);
  clock.advance(1);
  assert.deepEqual(w.messages().map((m) => m.payload.toString()), ['end']);
});

test('the will is published on a keep-alive timeout and on a protocol error', () => {
  const { client } = setup();
  const w = client(5);
  w.connect({ clientId: 'w' });
  w.subscribe('will/+');
  const a = client(5);
  a.connect({ clientId: 'a', keepAlive: 1, will: will('will/a', 'timeout') });
  a.channel.handleKeepAliveTimeout(0);
  a.drop();
  const b = client(5);
  b.connect({ clientId: 'b', will: will('will/b', 'error') });
  b.connect({ clientId: 'b' }); // a second CONNECT
  b.drop();
  assert.deepEqual(w.messages().map((m) => m.payload.toString()), ['timeout', 'error']);
});

test('offline persistent session: QoS 1/2 messages are queued, QoS 0 are not; delivered on reconnect', () => {
  const { client } = setup();
  const s = client(4);
  s.connect({ clientId: 's', cleanStart: false });
  s.subscribe('t', 2);
  s.drop();
  const p = client(4);
  p.connect({ clientId: 'p' });
  p.publish('t', 'q0', 0);
  p.publish('t', 'q1', 1, { packetId: 1 });
  p.publish('t', 'q2', 2, { packetId: 2 });
  const got = publishes(client(4).connect({ clientId: 's', cleanStart: false }));
  assert.deepEqual(got.map((m) => [m.payload.toString(), m.qos, m.dup]), [['q1', 1, false], ['q2', 2, false]]);
});

test('[MQTT-4.4.0-1] unacknowledged PUBLISH resent with DUP=1 and PUBREL resent, in the original order', () => {
  const { client } = setup();
  const s = client(5);
  s.connect({ clientId: 's', properties: { sessionExpiryInterval: 60 } });
  s.subscribe('t', 2);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'a', 2, { packetId: 1 });
  p.publish('t', 'b', 1, { packetId: 2 });
  p.publish('t', 'c', 2, { packetId: 3 });
  const first = s.messages();
  assert.equal(first.length, 3);
  const idA = first[0]?.packetId as number;
  s.in({ type: 'pubrec', packetId: idA }); // 'a' moves on to PUBREL
  s.drop();
  const again = client(5).connect({ clientId: 's', cleanStart: false, properties: { sessionExpiryInterval: 60 } }).slice(1);
  assert.deepEqual(
    again.map((x) => (x.type === 'publish' ? ['publish', x.payload.toString(), x.dup, x.packetId] : [x.type, (x as { packetId: number }).packetId])),
    [
      ['pubrel', idA],
      ['publish', 'b', true, first[1]?.packetId],
      ['publish', 'c', true, first[2]?.packetId],
    ],
  );
});

test('queue limit, dropOldest: the oldest queued message is dropped and counted', () => {
  const { client, core } = setup({ limits: { maximumQueuedMessages: 2, queueOverflow: 'dropOldest' } });
  const s = client(4);
  s.connect({ clientId: 's', cleanStart: false });
  s.subscribe('t', 1);
  s.drop();
  const p = client(4);
  p.connect({ clientId: 'p' });
  for (const x of ['1', '2', '3']) p.publish('t', x, 1);
  assert.equal(core.stats.messagesDropped, 1);
  const got = publishes(client(4).connect({ clientId: 's', cleanStart: false }));
  assert.deepEqual(got.map((m) => m.payload.toString()), ['2', '3']);
});

test('queue limit, dropNewest: new messages are dropped once the queue is full', () => {
  const { client, core } = setup({ limits: { maximumQueuedMessages: 2, queueOverflow: 'dropNewest' } });
  const s = client(4);
  s.connect({ clientId: 's', cleanStart: false });
  s.subscribe('t', 1);
  s.drop();
  const p = client(4);
  p.connect({ clientId: 'p' });
  for (const x of ['1', '2', '3']) p.publish('t', x, 1);
  assert.equal(core.stats.messagesDropped, 1);
  const got = publishes(client(4).connect({ clientId: 's', cleanStart: false }));
  assert.deepEqual(got.map((m) => m.payload.toString()), ['1', '2']);
});

test('DISCONNECT may not raise a Session Expiry Interval of 0 (protocol error 0x82)', () => {
  const { client } = setup();
  const c = client(5);
  c.connect({ clientId: 'c' });
  c.in({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 10 } });
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x82);
});

test('DISCONNECT can shorten the session expiry interval', () => {
  const { client, clock, core } = setup();
  const c = client(5);
  c.connect({ clientId: 'c', properties: { sessionExpiryInterval: 100 } });
  c.in({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 1 } });
  c.drop();
  clock.advance(1_000);
  assert.equal(core.sessions.has('c'), false);
});

test('QoS 1 messages arriving while a persistent session closes are kept for the next connection', () => {
  const { client } = setup();
  const s = client(4);
  s.connect({ clientId: 's', cleanStart: false });
  s.subscribe('t', 1);
  s.in({ type: 'disconnect' }); // closing; the socket has not closed yet
  const p = client(4);
  p.connect({ clientId: 'p' });
  p.publish('t', 'in-between', 1);
  s.drop();
  const got = publishes(client(4).connect({ clientId: 's', cleanStart: false }));
  assert.deepEqual(got.map((m) => m.payload.toString()), ['in-between']);
});
