import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, encodedLength, InvalidPacketError, type Packet, type ProtocolVersion } from '../../../src/protocol/index.js';

const pub = (extra: Record<string, unknown>): Packet =>
  ({ type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, ...extra }) as Packet;
const sub = (s: Record<string, unknown>): Packet =>
  ({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0, ...s }] }) as Packet;
const connect = (extra: Record<string, unknown>, v: ProtocolVersion = 4): Packet =>
  ({ type: 'connect', protocolName: v === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: v, cleanStart: true, keepAlive: 0, clientId: 'c', ...extra }) as Packet;

const invalid: Array<[string, Packet, ProtocolVersion]> = [
  ['QoS 1 PUBLISH without packetId', pub({ qos: 1 }), 4],
  ['[MQTT-2.3.1-5] QoS 0 PUBLISH with a packetId (v3.1.1)', pub({ packetId: 1 }), 4],
  ['[MQTT-2.2.1-2] QoS 0 PUBLISH with a packetId (v5)', pub({ packetId: 1 }), 5],
  ['[MQTT-2.3.1-1] packetId 0', pub({ qos: 1, packetId: 0 }), 4],
  ['[MQTT-2.2.1-3] v5 SUBSCRIBE packetId 0', { ...(sub({}) as object), packetId: 0 } as Packet, 5],
  ['[MQTT-2.2.1-5] v5 PUBACK packetId 0', { type: 'puback', packetId: 0 }, 5],
  ['[MQTT-2.3.1-7] v3.1.1 SUBACK packetId 0', { type: 'suback', packetId: 0, reasonCodes: [0] }, 4],
  ['packetId 65536', pub({ qos: 2, packetId: 65536 }), 5],
  ['packetId 1.5', pub({ qos: 1, packetId: 1.5 }), 5],
  ['[MQTT-3.3.1-4] PUBLISH qos 3', pub({ qos: 3, packetId: 1 }), 4],
  ['[MQTT-3.3.1-2] DUP on QoS 0', pub({ dup: true }), 4],
  ['[MQTT-3.3.2-2] topic with +', pub({ topic: 'a/+' }), 4],
  ['[MQTT-3.3.2-2] topic with # after non-ASCII', pub({ topic: 'ü/#' }), 5],
  ['[MQTT-4.7.3-1] empty topic in v3.1.1', pub({ topic: '' }), 4],
  ['empty topic in v5 without Topic Alias', pub({ topic: '' }), 5],
  ['[MQTT-1.5.3-1] lone surrogate in topic (v3.1.1)', pub({ topic: 'a\ud800' }), 4],
  ['[MQTT-1.5.3-2] U+0000 in topic (v3.1.1)', pub({ topic: 'a\u0000' }), 4],
  ['[MQTT-1.5.4-1] lone low surrogate in topic (v5)', pub({ topic: '\udc00a' }), 5],
  ['[MQTT-1.5.4-2] U+0000 in topic (v5)', pub({ topic: '\u0000' }), 5],
  ['[MQTT-1.5.4-2] U+0000 in a User Property name (v5)', pub({ properties: { userProperties: [['k\u0000', 'v']] } }), 5],
  ['[MQTT-1.5.4-1] lone surrogate in a client identifier (v5)', connect({ clientId: 'c\ud800' }, 5), 5],
  ['[MQTT-1.5.3-2] U+0000 in a user name (v3.1.1)', connect({ username: 'u\u0000' }), 4],
  ['topic longer than 65535 bytes', pub({ topic: 'é'.repeat(40000) }), 4],
  ['payload that is not a Buffer', pub({ payload: 'text' }), 4],
  ['unknown property name', pub({ properties: { topicAliass: 1 } }), 5],
  ['Session Expiry Interval in PUBLISH', pub({ properties: { sessionExpiryInterval: 1 } }), 5],
  ['[MQTT-3.3.2-8] Topic Alias 0', pub({ properties: { topicAlias: 0 } }), 5],
  ['Payload Format Indicator 2', pub({ properties: { payloadFormatIndicator: 2 } }), 5],
  ['Message Expiry Interval above 2^32-1', pub({ properties: { messageExpiryInterval: 2 ** 32 } }), 5],
  ['Subscription Identifier 0', pub({ properties: { subscriptionIdentifiers: [0] } }), 5],
  ['Subscription Identifier above the VBI range', pub({ properties: { subscriptionIdentifiers: [268_435_456] } }), 5],
  ['userProperties not an array', pub({ properties: { userProperties: { a: 'b' } } }), 5],
  ['userProperties entry not a pair', pub({ properties: { userProperties: [['a']] } }), 5],
  ['Correlation Data that is a string', pub({ properties: { correlationData: 'x' } }), 5],
  ['[MQTT-3.8.3-3] SUBSCRIBE without subscriptions', { type: 'subscribe', packetId: 1, subscriptions: [] }, 4],
  ['[MQTT-3.8.3-2] v5 SUBSCRIBE without subscriptions', { type: 'subscribe', packetId: 1, subscriptions: [] }, 5],
  ['subscription QoS 3', sub({ qos: 3 }), 4],
  ['Retain Handling 3', sub({ retainHandling: 3 }), 5],
  ['two Subscription Identifiers in SUBSCRIBE', { ...(sub({}) as object), properties: { subscriptionIdentifiers: [1, 2] } } as Packet, 5],
  ['[MQTT-3.10.3-2] UNSUBSCRIBE without filters', { type: 'unsubscribe', packetId: 1, topicFilters: [] }, 5],
  ['[MQTT-3.9.3-2] v3.1.1 SUBACK with a v5 reason code', { type: 'suback', packetId: 1, reasonCodes: [0x87] }, 4],
  ['SUBACK without reason codes', { type: 'suback', packetId: 1, reasonCodes: [] }, 5],
  ['v5 UNSUBACK without reason codes', { type: 'unsuback', packetId: 1, reasonCodes: [] }, 5],
  ['v3.1.1 CONNACK return code 6', { type: 'connack', sessionPresent: false, reasonCode: 6 }, 4],
  ['[MQTT-3.2.2-6] v5 CONNACK refusal with Session Present', { type: 'connack', sessionPresent: true, reasonCode: 0x87 }, 5],
  ['[MQTT-3.2.2-4] v3.1.1 CONNACK refusal with Session Present', { type: 'connack', sessionPresent: true, reasonCode: 5 }, 4],
  ['[MQTT-3.2.2-8] v5 CONNACK reason 0x10', { type: 'connack', sessionPresent: false, reasonCode: 0x10 }, 5],
  ['[MQTT-3.4.2-1] v5 PUBACK reason 0x04', { type: 'puback', packetId: 1, reasonCode: 0x04 }, 5],
  ['[MQTT-3.14.2-1] v5 DISCONNECT reason 0x05', { type: 'disconnect', reasonCode: 0x05 }, 5],
  ['AUTH in v3.1.1', { type: 'auth', reasonCode: 0 }, 4],
  ['[MQTT-3.15.2-1] AUTH reason 0x01', { type: 'auth', reasonCode: 0x01 }, 5],
  ['AUTH Continue authentication without Authentication Method', { type: 'auth', reasonCode: 0x18 }, 5],
  ['AUTH Success with a Reason String but no Authentication Method', { type: 'auth', reasonCode: 0, properties: { reasonString: 'x' } }, 5],
  ['Authentication Data without Authentication Method', { type: 'auth', reasonCode: 0x18, properties: { authenticationData: Buffer.from('x') } }, 5],
  ['[MQTT-3.1.2-1] CONNECT level 4 named MQIsdp', connect({ protocolName: 'MQIsdp' }), 4],
  ['CONNECT protocolVersion differs from the encoding version', connect({}, 4), 5],
  ['[MQTT-3.1.2-22] v3.1.1 password without username', connect({ password: Buffer.from('p') }), 4],
  ['[MQTT-3.1.2-14] will QoS 3 (v3.1.1)', connect({ will: { topic: 'w', payload: Buffer.alloc(0), qos: 3, retain: false } }), 4],
  ['[MQTT-3.1.2-12] will QoS 3 (v5)', connect({ will: { topic: 'w', payload: Buffer.alloc(0), qos: 3, retain: false } }, 5), 5],
  ['[MQTT-4.7.1-1] will topic with a wildcard (v3.1.1)', connect({ will: { topic: 'w/#', payload: Buffer.alloc(0), qos: 0, retain: false } }), 4],
  ['[MQTT-4.7.0-1] will topic with a wildcard (v5)', connect({ will: { topic: '+', payload: Buffer.alloc(0), qos: 0, retain: false } }, 5), 5],
  ['[MQTT-4.7.3-1] empty will topic', connect({ will: { topic: '', payload: Buffer.alloc(0), qos: 0, retain: false } }), 4],
  ['Will Delay Interval in CONNECT properties', connect({ properties: { willDelayInterval: 1 } }, 5), 5],
  ['Receive Maximum 0 in CONNECT', connect({ properties: { receiveMaximum: 0 } }, 5), 5],
  ['keepAlive 65536', connect({ keepAlive: 65536 }), 4],
  ['protocol version 6', { type: 'pingreq' }, 6 as ProtocolVersion],
  ['unknown packet type', { type: 'bogus' } as unknown as Packet, 4],
];

for (const [name, packet, v] of invalid) {
  test(`encode refuses: ${name}`, () => {
    // A rule named in the title is the rule reported, so the case fails for the stated reason.
    const rule = /^\[(MQTT-[\d.-]+)\]/.exec(name)?.[1];
    const expected = (err: unknown): boolean => {
      assert.ok(err instanceof InvalidPacketError, String(err));
      if (rule !== undefined) assert.equal(err.rule, rule, err.message);
      return true;
    };
    assert.throws(() => encode(packet, v), expected);
    assert.throws(() => encodedLength(packet, v), expected);
  });
}

test('v5 allows a password without a user name (section 3.1.2.9; [MQTT-3.1.2-22] is a 3.1.1 rule)', () => {
  const bytes = encode(connect({ password: Buffer.from('p') }, 5), 5);
  assert.equal(bytes[9]! & 0xc0, 0x40);
});

test('AUTH Success without properties is the Remaining Length 0 form; any other AUTH names its method', () => {
  assert.equal(encode({ type: 'auth', reasonCode: 0 }, 5).toString('hex'), 'f000');
  assert.equal(encode({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'm' } }, 5).toString('hex'), 'f00619041500016d');
});

test('v5-only fields are not representable in v3.1.1 and are left out', () => {
  assert.equal(encode({ type: 'puback', packetId: 1, reasonCode: 0x10, properties: { reasonString: 'x' } }, 4).toString('hex'), '40020001');
  assert.equal(encode({ type: 'disconnect', reasonCode: 0x04 }, 4).toString('hex'), 'e000');
  assert.equal(
    encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }] }, 4).toString('hex'),
    '8206000100016101',
  );
  assert.equal(encode(pub({ properties: { messageExpiryInterval: 5 } }), 4).toString('hex'), '3003000174');
});

test('encodedLength equals the encoded size across remaining-length boundaries', () => {
  for (const size of [0, 1, 120, 121, 122, 16378, 16379, 16380, 16381, 2_097_146, 2_097_147, 2_097_148]) {
    const p = pub({ payload: Buffer.alloc(size) });
    const bytes = encode(p, 4);
    assert.equal(encodedLength(p, 4), bytes.length, `payload ${size}`);
  }
});

test('encoded buffers do not overlap even when cut from a shared slab', () => {
  const a = encode(pub({ payload: Buffer.alloc(10, 1) }), 4);
  const b = encode(pub({ payload: Buffer.alloc(10, 2) }), 4);
  assert.equal(a.toString('hex'), '300d000174' + '01'.repeat(10));
  assert.equal(b.toString('hex'), '300d000174' + '02'.repeat(10));
});
