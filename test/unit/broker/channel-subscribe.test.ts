import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DisconnectPacket, Packet, PublishPacket, SubackPacket } from '../../../src/protocol/index.js';
import { setup } from './harness.js';

const suback = (ps: Packet[]): SubackPacket => ps.find((p): p is SubackPacket => p.type === 'suback') as SubackPacket;
const publishes = (ps: Packet[]): PublishPacket[] => ps.filter((p): p is PublishPacket => p.type === 'publish');

test('[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.9.3-1] SUBACK: same packet id, one code per filter in order', () => {
  const { client } = setup({ limits: { maximumQoS: 1 } });
  const c = client(5);
  c.connect();
  c.in({
    type: 'subscribe',
    packetId: 77,
    subscriptions: [
      { topicFilter: 'a', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      { topicFilter: 'a/#/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      { topicFilter: '$share//x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      { topicFilter: 'b/+', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  });
  // QoS 2 requested, 1 granted (the configured maximum); invalid filter and share name: 0x8F.
  assert.deepEqual(c.sent(), [{ type: 'suback', packetId: 77, reasonCodes: [1, 0x8f, 0x8f, 0] }]);
});

test('v3.1.1 SUBACK failure code is 0x80', () => {
  const { client } = setup();
  const c = client(4);
  c.connect();
  assert.deepEqual(suback(c.subscribe('a/#/b', 1)).reasonCodes, [0x80]);
});

test('an authorizer refusal gives 0x87 (v5) / 0x80 (v3)', () => {
  const { client } = setup({ authorizer: { canPublish: () => true, canSubscribe: (r) => r.topicFilter !== 'secret' } });
  const a = client(5);
  a.connect({ clientId: 'a' });
  assert.deepEqual(suback(a.subscribe('secret', 0)).reasonCodes, [0x87]);
  const b = client(4);
  b.connect({ clientId: 'b' });
  assert.deepEqual(suback(b.subscribe('secret', 0)).reasonCodes, [0x80]);
});

test('UNSUBACK: v5 0x00 for a removed subscription, 0x11 when none existed; v3 has no codes', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  c.subscribe('a');
  c.in({ type: 'unsubscribe', packetId: 3, topicFilters: ['a', 'b'] });
  assert.deepEqual(c.sent(), [{ type: 'unsuback', packetId: 3, reasonCodes: [0, 0x11] }]);
  const d = client(4);
  d.connect({ clientId: 'd' });
  d.in({ type: 'unsubscribe', packetId: 4, topicFilters: ['x'] });
  assert.deepEqual(d.sent(), [{ type: 'unsuback', packetId: 4, reasonCodes: [] }]);
});

test('[MQTT-3.3.1-5] [MQTT-3.3.1-6] retained: set, replace, clear with an empty payload', () => {
  const { client, core } = setup();
  const p = client(4);
  p.connect();
  p.publish('r', 'one', 0, { retain: true });
  p.publish('r', 'two', 0, { retain: true });
  assert.equal(core.retained.get('r')?.payload.toString(), 'two');
  p.publish('r', '', 0, { retain: true });
  assert.equal(core.retained.get('r'), undefined);
});

test('(3.1.1: [MQTT-3.3.1-8]) retained messages are sent on subscribe with RETAIN=1, at min(QoS)', () => {
  const { client } = setup();
  const p = client(4);
  p.connect({ clientId: 'p' });
  p.publish('r/a', 'A', 1, { retain: true });
  p.publish('r/b', 'B', 0, { retain: true });
  const s = client(4);
  s.connect({ clientId: 's' });
  const out = s.subscribe('r/+', 2);
  assert.equal(out[0]?.type, 'suback'); // SUBACK first, then the retained messages
  const got = publishes(out).map((m) => [m.topic, m.retain, m.qos]).sort();
  assert.deepEqual(got, [['r/a', true, 1], ['r/b', true, 0]]);
});

test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0, 1 and 2', () => {
  const { client } = setup();
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('r', 'x', 0, { retain: true });
  const s = client(5);
  s.connect({ clientId: 's' });
  assert.equal(publishes(s.subscribe('r', 0, { retainHandling: 0 })).length, 1);
  assert.equal(publishes(s.subscribe('r', 0, { retainHandling: 0 })).length, 1); // re-subscribe: sent again
  assert.equal(publishes(s.subscribe('r', 0, { retainHandling: 1 })).length, 0); // existed already
  assert.equal(publishes(s.subscribe('r/#', 0, { retainHandling: 1 })).length, 1); // new subscription
  assert.equal(publishes(s.subscribe('+', 0, { retainHandling: 2 })).length, 0);
});

test('retained messages are not sent to shared subscriptions (MQTT 5.0 4.8.2)', () => {
  const { client } = setup();
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('r', 'x', 0, { retain: true });
  const s = client(5);
  s.connect({ clientId: 's' });
  assert.equal(publishes(s.subscribe('$share/g/r', 0)).length, 0);
});

test('retained messages expire: not sent after the Message Expiry Interval, sent with the remaining interval before', () => {
  const { client, clock } = setup();
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('r/a', 'short', 0, { retain: true, properties: { messageExpiryInterval: 2 } });
  p.publish('r/b', 'long', 0, { retain: true, properties: { messageExpiryInterval: 60 } });
  clock.advance(10_000);
  const s = client(5);
  s.connect({ clientId: 's' });
  const got = publishes(s.subscribe('r/#'));
  assert.deepEqual(got.map((m) => [m.payload.toString(), m.properties?.messageExpiryInterval]), [['long', 50]]);
});

test('shared subscriptions: each message goes to one member, round robin', () => {
  const { client } = setup();
  const a = client(5);
  a.connect({ clientId: 'a' });
  a.subscribe('$share/g/t', 1);
  const b = client(5);
  b.connect({ clientId: 'b' });
  b.subscribe('$share/g/t', 1);
  const p = client(5);
  p.connect({ clientId: 'p' });
  for (let i = 0; i < 4; i++) p.publish('t', String(i), 1, { packetId: i + 1 });
  const ga = a.messages().map((m) => m.payload.toString());
  const gb = b.messages().map((m) => m.payload.toString());
  assert.equal(ga.length, 2);
  assert.equal(gb.length, 2);
  assert.deepEqual([...ga, ...gb].sort(), ['0', '1', '2', '3']);
});

test('shared subscriptions: messages a leaving member did not acknowledge go to another member', () => {
  const { client } = setup();
  const a = client(5);
  a.connect({ clientId: 'a' });
  a.subscribe('$share/g/t', 1);
  const b = client(5);
  b.connect({ clientId: 'b' });
  b.subscribe('$share/g/t', 1);
  const p = client(5);
  p.connect({ clientId: 'p' });
  p.publish('t', 'm1', 1, { packetId: 1 });
  p.publish('t', 'm2', 1, { packetId: 2 });
  const ga = a.messages();
  const gb = b.messages();
  assert.equal(ga.length + gb.length, 2);
  const [leaver, stayer, lost] = ga.length > 0 ? [a, b, ga] : [b, a, gb];
  leaver.drop(); // session expiry 0: the session ends
  assert.deepEqual(stayer.messages().map((m) => m.payload.toString()), lost.map((m) => m.payload.toString()));
});

test('[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  const [d] = c.subscribe('$share/g/t', 0, { noLocal: true }) as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x82);
});

test('disabled features: v5 gets DISCONNECT 0xA2 / 0x9E / 0xA1, v3 gets SUBACK 0x80', () => {
  const limits = { wildcardSubscriptionAvailable: false, sharedSubscriptionAvailable: false, subscriptionIdentifierAvailable: false };
  const { client } = setup({ limits });
  const cases: Array<[string, object, number]> = [
    ['a/+', {}, 0xa2],
    ['$share/g/a', {}, 0x9e],
    ['a', { properties: { subscriptionIdentifiers: [5] } }, 0xa1],
  ];
  for (const [filter, opts, code] of cases) {
    const c = client(5);
    c.connect({ clientId: filter });
    const [d] = c.subscribe(filter, 0, opts) as DisconnectPacket[];
    assert.equal(d?.reasonCode, code, filter);
  }
  const v3 = client(4);
  v3.connect({ clientId: 'v3' });
  assert.deepEqual(suback(v3.subscribe('a/#', 0)).reasonCodes, [0x80]);
});

test('subscriptions of a persistent session survive reconnects', () => {
  const { client } = setup();
  const s = client(4);
  s.connect({ clientId: 's', cleanStart: false });
  s.subscribe('t', 0);
  s.drop();
  const s2 = client(4);
  s2.connect({ clientId: 's', cleanStart: false });
  const p = client(4);
  p.connect({ clientId: 'p' });
  p.publish('t', 'x');
  assert.equal(s2.messages().length, 1);
});
