import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DisconnectPacket, PubackPacket, PublishPacket } from '../../../src/protocol/index.js';
import type { Store } from '../../../src/broker/persistence/store.js';
import { GatedStore, setup } from './harness.js';

test('QoS 0/1/2 routing with downgrade to the granted QoS [MQTT-3.8.4-8]', () => {
  const { client } = setup();
  const sub = client(5);
  sub.connect({ clientId: 'sub' });
  sub.subscribe('a/+', 1);
  const pub = client(5);
  pub.connect({ clientId: 'pub' });
  pub.publish('a/b', 'zero', 0);
  assert.deepEqual(pub.publish('a/b', 'two', 2, { packetId: 7 }), [{ type: 'pubrec', packetId: 7 }]);
  const got = sub.messages();
  assert.deepEqual(got.map((m) => [m.payload.toString(), m.qos]), [['zero', 0], ['two', 1]]);
  assert.equal(got[1]?.packetId !== undefined, true);
  assert.equal(got[1]?.dup, false);
});

test('[MQTT-4.3.2-4] QoS 1: PUBACK with the same packet id', () => {
  const { client } = setup();
  const c = client(4);
  c.connect();
  assert.deepEqual(c.publish('t', 'x', 1, { packetId: 42 }), [{ type: 'puback', packetId: 42 }]);
});

test('[MQTT-4.3.3-10] QoS 2: a resent PUBLISH before PUBREL is acknowledged but not delivered again', () => {
  const { client } = setup();
  const sub = client(4);
  sub.connect({ clientId: 'sub' });
  sub.subscribe('t', 2);
  const pub = client(4);
  pub.connect({ clientId: 'pub', cleanStart: false });
  pub.publish('t', 'once', 2, { packetId: 5 });
  // The publisher loses its connection and resends with DUP on a new one.
  pub.drop();
  const pub2 = client(4);
  pub2.connect({ clientId: 'pub', cleanStart: false });
  assert.deepEqual(pub2.publish('t', 'once', 2, { packetId: 5, dup: true }), [{ type: 'pubrec', packetId: 5 }]);
  pub2.in({ type: 'pubrel', packetId: 5 });
  assert.deepEqual(pub2.sent(), [{ type: 'pubcomp', packetId: 5 }]);
  assert.equal(sub.messages().length, 1);
  // [MQTT-4.3.3-12] after PUBCOMP the same id is a new message.
  pub2.publish('t', 'again', 2, { packetId: 5 });
  assert.equal(sub.messages().length, 1);
});

test('[MQTT-4.3.3-11] PUBREL for an unknown id: v5 PUBCOMP 0x92', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  c.in({ type: 'pubrel', packetId: 9 });
  assert.deepEqual(c.sent(), [{ type: 'pubcomp', packetId: 9, reasonCode: 0x92 }]);
});

test('QoS 2 outgoing: PUBREC -> PUBREL [MQTT-4.3.3-3], PUBCOMP frees the id', () => {
  const { client, core } = setup();
  const sub = client(5);
  sub.connect({ clientId: 'sub' });
  sub.subscribe('t', 2);
  const pub = client(5);
  pub.connect({ clientId: 'pub' });
  pub.publish('t', 'x', 2);
  const [m] = sub.messages();
  const id = m?.packetId as number;
  sub.in({ type: 'pubrec', packetId: id });
  assert.deepEqual(sub.sent(), [{ type: 'pubrel', packetId: id }]);
  assert.equal(core.sessions.get('sub')?.outgoing.get(id)?.state, 'pubrel');
  sub.in({ type: 'pubcomp', packetId: id });
  assert.equal(core.sessions.get('sub')?.outgoing.size, 0);
});

test('[MQTT-3.3.4-9] the broker sends no more than the client Receive Maximum; the rest waits, nothing is dropped', () => {
  const { client } = setup();
  const sub = client(5);
  sub.connect({ clientId: 'sub', properties: { receiveMaximum: 2 } });
  sub.subscribe('t', 1);
  const pub = client(5);
  pub.connect({ clientId: 'pub' });
  for (let i = 0; i < 5; i++) pub.publish('t', String(i), 1, { packetId: i + 1 });
  let got = sub.messages();
  assert.deepEqual(got.map((m) => m.payload.toString()), ['0', '1']);
  sub.in({ type: 'puback', packetId: got[0]?.packetId as number });
  got = sub.messages();
  assert.deepEqual(got.map((m) => m.payload.toString()), ['2']);
  sub.in({ type: 'puback', packetId: 2 });
  sub.in({ type: 'puback', packetId: got[0]?.packetId as number });
  assert.deepEqual(sub.messages().map((m) => m.payload.toString()), ['3', '4']);
});

test('[MQTT-3.3.4-7] more QoS 2 messages in flight than our Receive Maximum: DISCONNECT 0x93', () => {
  const { client } = setup({ limits: { receiveMaximum: 2 } });
  const c = client(5);
  c.connect();
  c.publish('t', 'a', 2, { packetId: 1 });
  c.publish('t', 'b', 2, { packetId: 2 });
  const [d] = c.publish('t', 'c', 2, { packetId: 3 }) as DisconnectPacket[];
  assert.equal(d?.type, 'disconnect');
  assert.equal(d?.reasonCode, 0x93);
});

test('[MQTT-3.2.2-11] a PUBLISH above Maximum QoS: DISCONNECT 0x9B', () => {
  const { client } = setup({ limits: { maximumQoS: 1 } });
  const c = client(5);
  c.connect();
  const [d] = c.publish('t', 'x', 2) as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x9b);
  assert.ok(c.closed);
});

test('[MQTT-3.2.2-14] RETAIN=1 when retain is unavailable: DISCONNECT 0x9A', () => {
  const { client } = setup({ limits: { retainAvailable: false } });
  const c = client(5);
  c.connect();
  const [d] = c.publish('t', 'x', 0, { retain: true }) as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x9a);
});

test('MQTT 5.0 4.7.2: a client PUBLISH to a $ topic is not delivered; v5 QoS 1 gets PUBACK 0x87', () => {
  const { client } = setup();
  const sub = client(5);
  sub.connect({ clientId: 'sub' });
  sub.subscribe('$SYS/#', 0);
  const pub = client(5);
  pub.connect({ clientId: 'pub' });
  assert.deepEqual(pub.publish('$SYS/fake', 'x', 1, { packetId: 3 }), [{ type: 'puback', packetId: 3, reasonCode: 0x87 }]);
  assert.equal(sub.messages().length, 0);
  const v3 = client(4);
  v3.connect({ clientId: 'v3' });
  // [MQTT-3.3.5-2] (3.1.1) a v3 client gets a normal acknowledgement.
  assert.deepEqual(v3.publish('$x', 'x', 1, { packetId: 4 }), [{ type: 'puback', packetId: 4 }]);
});

test('an authorizer that throws refuses the publish; no exception escapes', () => {
  const { client } = setup({
    authorizer: {
      canPublish: () => {
        throw new Error('boom');
      },
      canSubscribe: () => true,
    },
  });
  const c = client(5);
  c.connect();
  assert.deepEqual(c.publish('t', 'x', 1, { packetId: 1 }), [{ type: 'puback', packetId: 1, reasonCode: 0x87 }]);
});

test('[MQTT-3.8.3-3] No Local: a client does not receive its own messages', () => {
  const { client } = setup();
  const c = client(5);
  c.connect({ clientId: 'me' });
  c.subscribe('t', 0, { noLocal: true });
  c.publish('t', 'x');
  assert.equal(c.messages().length, 0);
  const other = client(5);
  other.connect({ clientId: 'other' });
  other.publish('t', 'y');
  assert.equal(c.messages().length, 1);
});

test('[MQTT-3.3.4-2] [MQTT-3.3.4-4] overlapping subscriptions: one copy, highest QoS, every Subscription Identifier', () => {
  const { client } = setup();
  const c = client(5);
  c.connect({ clientId: 'sub' });
  c.subscribe('a/#', 0, { properties: { subscriptionIdentifiers: [1] } });
  c.subscribe('a/+', 1, { properties: { subscriptionIdentifiers: [2] }, packetId: 2 });
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('a/b', 'x', 1);
  const got = c.messages();
  assert.equal(got.length, 1);
  assert.equal(got[0]?.qos, 1);
  assert.deepEqual([...(got[0]?.properties?.subscriptionIdentifiers ?? [])].sort(), [1, 2]);
});

test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps RETAIN on forwarded messages; otherwise it is cleared', () => {
  const { client } = setup();
  const keep = client(5);
  keep.connect({ clientId: 'keep' });
  keep.subscribe('t', 0, { retainAsPublished: true });
  const clear = client(5);
  clear.connect({ clientId: 'clear' });
  clear.subscribe('t', 0);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'x', 0, { retain: true });
  assert.equal(keep.messages()[0]?.retain, true);
  assert.equal(clear.messages()[0]?.retain, false);
});

test('v5 properties pass through unchanged [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20]', () => {
  const { client } = setup();
  const s = client(5);
  s.connect({ clientId: 's' });
  s.subscribe('t');
  const p = client(5);
  p.connect({ clientId: 'p' });
  const properties = {
    payloadFormatIndicator: 1,
    contentType: 'text/plain',
    responseTopic: 'reply/here',
    correlationData: Buffer.from([1, 2, 3]),
    userProperties: [['b', '2'], ['a', '1'], ['b', '3']] as Array<[string, string]>,
  };
  p.publish('t', 'x', 0, { properties });
  assert.deepEqual(s.messages()[0]?.properties, properties);
});

test('[MQTT-3.3.2-6] Message Expiry Interval is forwarded minus the time waited; [MQTT-3.3.2-5] expired messages are dropped', () => {
  const { client, clock } = setup();
  const s = client(5);
  s.connect({ clientId: 's', cleanStart: false, properties: { sessionExpiryInterval: 3600 } });
  s.subscribe('t', 1);
  s.drop();
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'short', 1, { properties: { messageExpiryInterval: 5 } });
  p.publish('t', 'long', 1, { packetId: 2, properties: { messageExpiryInterval: 100 } });
  clock.advance(10_000);
  const s2 = client(5);
  const got = s2
    .connect({ clientId: 's', cleanStart: false, properties: { sessionExpiryInterval: 3600 } })
    .filter((p): p is PublishPacket => p.type === 'publish');
  assert.deepEqual(got.map((m) => m.payload.toString()), ['long']);
  assert.equal(got[0]?.properties?.messageExpiryInterval, 90);
});

test('topic alias from the client: set, then used with an empty topic; unknown alias and 0 are errors', () => {
  const { client } = setup({ limits: { topicAliasMaximum: 2 } });
  const s = client(5);
  s.connect({ clientId: 's' });
  s.subscribe('long/topic');
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('long/topic', 'a', 0, { properties: { topicAlias: 1 } });
  p.publish('', 'b', 0, { properties: { topicAlias: 1 } });
  assert.deepEqual(s.messages().map((m) => [m.topic, m.payload.toString(), m.properties?.topicAlias]), [
    ['long/topic', 'a', undefined],
    ['long/topic', 'b', undefined],
  ]);
  const [d] = p.publish('x', 'c', 0, { properties: { topicAlias: 3 } }) as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x94); // [MQTT-3.3.2-9]
  const q = client(5);
  q.connect({ clientId: 'q' });
  const [d2] = q.publish('', 'c', 0, { properties: { topicAlias: 2 } }) as DisconnectPacket[];
  assert.equal(d2?.reasonCode, 0x82);
});

test('[MQTT-3.3.2-11] the broker assigns topic aliases within the client Topic Alias Maximum', () => {
  const { client } = setup();
  const s = client(5);
  s.connect({ clientId: 's', properties: { topicAliasMaximum: 1 } });
  s.subscribe('#');
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('a', '1');
  p.publish('a', '2');
  p.publish('b', '3');
  assert.deepEqual(s.messages().map((m) => [m.topic, m.properties?.topicAlias]), [
    ['a', 1],
    ['', 1],
    ['b', undefined],
  ]);
});

test('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the client Maximum Packet Size is not sent to it', () => {
  const { client, core } = setup();
  const small = client(5);
  small.connect({ clientId: 'small', properties: { maximumPacketSize: 64 } });
  small.subscribe('t', 1);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'x'.repeat(100), 1);
  p.publish('t', 'ok', 1, { packetId: 2 });
  assert.deepEqual(small.messages().map((m) => m.payload.toString()), ['ok']);
  // Discarded as if delivered: nothing stays in flight for it.
  assert.equal(core.sessions.get('small')?.outgoing.size, 1);
});

test('[MQTT-3.1.2-25] [MQTT-3.3.2-11] a PUBLISH dropped for the client Maximum Packet Size sets no topic alias', () => {
  const { client } = setup();
  const s = client(5);
  s.connect({ clientId: 's', properties: { topicAliasMaximum: 2, maximumPacketSize: 64 } });
  s.subscribe('#');
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('a', 'x'.repeat(100));
  p.publish('a', 'ok');
  // The client never saw the dropped packet, so the alias must be set by the first one it does see.
  assert.deepEqual(s.messages().map((m) => [m.topic, m.properties?.topicAlias, m.payload.toString()]), [['a', 1, 'ok']]);
});

test('ack only after commit: with an asynchronous store the PUBACK follows an await action', async () => {
  const store = new GatedStore();
  const { client } = setup({ store });
  const s = client(5);
  s.connect({ clientId: 's', cleanStart: false, properties: { sessionExpiryInterval: 60 } });
  s.subscribe('t', 1);
  s.drop();
  const p = client(5);
  p.connect({ clientId: 'p' });
  store.gate = new Promise<void>((r) => (store.release = r));
  p.in({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 9 });
  const tail = p.actions.slice(-2);
  assert.equal(tail[0]?.type, 'await');
  assert.deepEqual(tail[1], { type: 'send', packet: { type: 'puback', packetId: 9 } });
  store.release();
  await (tail[0] as { promise: Promise<void> }).promise;
  // QoS 0 has no acknowledgement to hold back: no await action.
  const before = p.actions.length;
  p.publish('t', 'y', 0);
  assert.equal(p.actions.length, before);
});

/** Records the sentNow hint of every putOutgoing. */
class Recording extends GatedStore {
  readonly sentNow: Array<[string, boolean | undefined]> = [];
  override putOutgoing(...a: Parameters<Store['putOutgoing']>): Promise<void> | undefined {
    this.sentNow.push([a[0], a[2]]);
    return super.putOutgoing(...a);
  }
}

test('a QoS 1 delivery is put as sent now only when nothing holds the subscriber\'s output back', async () => {
  const store = new Recording();
  const { client } = setup({ store });
  const durable = { cleanStart: false, properties: { sessionExpiryInterval: 60 } };
  const free = client(5);
  free.connect({ clientId: 'free', ...durable });
  free.subscribe('t', 1);
  const held = client(5);
  held.connect({ clientId: 'held', ...durable });
  held.subscribe('t', 1);
  held.held = true;
  const gone = client(5);
  gone.connect({ clientId: 'gone', ...durable });
  gone.subscribe('t', 1);
  gone.drop();
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'x', 1);
  assert.deepEqual(store.sentNow.sort(), [['free', true], ['held', false]]);
  // 'gone' reconnects while its session write is pending: the queued message goes out behind that commit.
  store.sentNow.length = 0;
  store.gate = new Promise<void>((r) => (store.release = r));
  const back = client(5);
  back.connect({ clientId: 'gone', ...durable });
  assert.deepEqual(store.sentNow, [['gone', false]]);
  store.release();
});

test('a message moved from the queue or from an ended shared-subscription member is never put as sent now', () => {
  const store = new Recording();
  const { client } = setup({ store });
  const durable = { cleanStart: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 1 } };
  const s = client(5);
  s.connect({ clientId: 's', ...durable });
  s.subscribe('t', 1);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'one', 1);
  p.publish('t', 'two', 1, { packetId: 2 }); // queued: Receive Maximum 1
  const [first] = s.messages();
  s.in({ type: 'puback', packetId: first?.packetId as number });
  assert.deepEqual(s.messages().map((m) => m.payload.toString()), ['two']);
  // The queued row's delete and the new in-flight row must land in one commit.
  assert.deepEqual(store.sentNow, [['s', true], ['s', false]]);

  store.sentNow.length = 0;
  const m1 = client(5);
  m1.connect({ clientId: 'm1', cleanStart: false, properties: { sessionExpiryInterval: 60 } });
  m1.subscribe('$share/g/x', 1);
  const m2 = client(5);
  m2.connect({ clientId: 'm2', cleanStart: false, properties: { sessionExpiryInterval: 60 } });
  m2.subscribe('$share/g/x', 1);
  p.publish('x', 'shared', 1, { packetId: 3 });
  const [owner] = store.sentNow;
  assert.equal(owner?.[1], true);
  const [holder, other] = owner?.[0] === 'm1' ? [m1, m2] : [m2, m1];
  assert.equal(holder.messages().length, 1);
  // MQTT 5.0 4.8.2: the holder's session ends (Clean Start takes it over) before it acknowledged: the other member
  // gets the message, and its row is written with the old one's removal.
  const again = client(5);
  again.connect({ clientId: owner?.[0] as string, cleanStart: true });
  assert.deepEqual(other.messages().map((m) => m.payload.toString()), ['shared']);
  assert.deepEqual(store.sentNow.slice(1), [[owner?.[0] === 'm1' ? 'm2' : 'm1', false]]);
});

test('QoS 0 to a v3 subscriber carries no properties; PUBACK to v3 has no reason code', () => {
  const { client } = setup();
  const s = client(4);
  s.connect({ clientId: 's' });
  s.subscribe('t', 1);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'x', 1, { properties: { userProperties: [['k', 'v']] } });
  const [m] = s.messages() as PublishPacket[];
  assert.equal(m?.properties, undefined);
  s.in({ type: 'puback', packetId: m?.packetId as number });
  assert.deepEqual(s.sent() as PubackPacket[], []);
});

test('ack only after commit: PUBREC, PUBREL and PUBCOMP each wait for their store write', () => {
  const store = new GatedStore();
  const { client } = setup({ store });
  // Sessions that outlive their connection: only those are written to the store.
  const durable = { cleanStart: false, properties: { sessionExpiryInterval: 60 } };
  const sub = client(5);
  sub.connect({ clientId: 'sub', ...durable });
  sub.subscribe('t', 2);
  const pub = client(5);
  pub.connect({ clientId: 'pub', ...durable });
  store.gate = new Promise<void>((r) => (store.release = r));
  const kinds = (from: number, c: typeof pub): string[] =>
    c.actions.slice(from).map((a) => (a.type === 'send' ? a.packet.type : a.type));
  let mark = pub.actions.length;
  pub.in({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 1 });
  assert.deepEqual(kinds(mark, pub), ['await', 'pubrec']);
  mark = pub.actions.length;
  pub.in({ type: 'pubrel', packetId: 1 });
  assert.deepEqual(kinds(mark, pub), ['await', 'pubcomp']);
  const id = (sub.messages()[0] as PublishPacket).packetId as number;
  mark = sub.actions.length;
  sub.in({ type: 'pubrec', packetId: id });
  assert.deepEqual(kinds(mark, sub), ['await', 'pubrel']);
  store.release();
});

test('a session with expiry 0 is never written to the store, so its QoS 1/2 acks wait for nothing', () => {
  const store = new GatedStore();
  const { client } = setup({ store });
  store.gate = new Promise<void>((r) => (store.release = r));
  const sub = client(5);
  sub.connect({ clientId: 'sub' });
  sub.subscribe('t', 2);
  const pub = client(4);
  pub.connect({ clientId: 'pub' });
  const kinds = (c: typeof pub): string[] => c.actions.map((a) => (a.type === 'send' ? a.packet.type : a.type));
  pub.in({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 1 });
  pub.in({ type: 'pubrel', packetId: 1 });
  const id = (sub.messages()[0] as PublishPacket).packetId as number;
  sub.in({ type: 'pubrec', packetId: id });
  sub.in({ type: 'pubcomp', packetId: id });
  assert.deepEqual(kinds(pub), ['authenticate', 'connack', 'keepAlive', 'pubrec', 'pubcomp']);
  assert.ok(!kinds(sub).includes('await'));
  assert.equal(store.inner.loadSessions().length, 0);
  store.release();
});
