/**
 * Byte-exact vectors written by hand from the spec's field layouts (MQTT 3.1.1 ch. 3, MQTT 5.0 ch. 3):
 * each is decoded to the expected packet and the packet encodes back to exactly these bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Decoder, encode, type Packet, type ProtocolVersion } from '../../../src/protocol/index.js';
import { hex } from './fixtures.js';

interface Vector {
  name: string;
  v: ProtocolVersion;
  bytes: string;
  packet: Packet;
}

const vectors: Vector[] = [
  {
    name: 'CONNECT v3.1.1: clean session, keep alive 60, client id "c1"',
    v: 4,
    // type 1 | len 14 | "MQTT" | level 4 | flags: clean session | keep alive 60 | client id
    bytes: '10 0e  0004 4d515454  04  02  003c  0002 6331',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 60, clientId: 'c1' },
  },
  {
    name: 'CONNECT v3.1 (MQIsdp level 3)',
    v: 3,
    bytes: '10 10  0006 4d5149736470  03  02  003c  0002 6331',
    packet: { type: 'connect', protocolName: 'MQIsdp', protocolVersion: 3, cleanStart: true, keepAlive: 60, clientId: 'c1' },
  },
  {
    name: 'CONNECT v3.1.1 with will QoS 1 retained, user name and password',
    v: 4,
    // flags: user name 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04 | clean 0x02 = 0xee
    bytes: '10 1d  0004 4d515454  04  ee  000a  0002 6331  0001 77  0003 627965  0001 75  0002 7077',
    packet: {
      type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 10, clientId: 'c1',
      will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: true }, username: 'u', password: Buffer.from('pw'),
    },
  },
  {
    name: 'CONNECT v5 with Session Expiry Interval 120 and Receive Maximum 20',
    v: 5,
    // properties (8 bytes): 0x11 Session Expiry Interval = 120, 0x21 Receive Maximum = 20
    bytes: '10 17  0004 4d515454  05  02  000a  08 11 00000078 21 0014  0002 6964',
    packet: {
      type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 10, clientId: 'id',
      properties: { sessionExpiryInterval: 120, receiveMaximum: 20 },
    },
  },
  {
    name: 'CONNACK v3.1.1 accepted with session present',
    v: 4,
    bytes: '20 02 01 00',
    packet: { type: 'connack', sessionPresent: true, reasonCode: 0 },
  },
  {
    name: 'CONNACK v5 bad user name or password with a Reason String',
    v: 5,
    bytes: '20 08 00 86 05 1f 0002 6e6f',
    packet: { type: 'connack', sessionPresent: false, reasonCode: 0x86, properties: { reasonString: 'no' } },
  },
  {
    name: 'PUBLISH v3.1.1 QoS 1, topic "a/b", packet id 10, payload "hi"',
    v: 4,
    bytes: '32 09  0003 612f62  000a  6869',
    packet: { type: 'publish', topic: 'a/b', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false, packetId: 10 },
  },
  {
    name: 'PUBLISH v3.1.1 QoS 2, DUP and RETAIN set',
    v: 4,
    bytes: '3d 05  0001 74  0102',
    packet: { type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 2, retain: true, dup: true, packetId: 0x0102 },
  },
  {
    name: 'PUBLISH v5 with an empty topic and Topic Alias 1',
    v: 5,
    bytes: '30 07  0000  03 23 0001  78',
    packet: { type: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } },
  },
  {
    name: 'PUBLISH with Remaining Length 321 encodes it as 0xC1 0x02 (spec example)',
    v: 4,
    bytes: `30 c1 02  0001 74  ${'00'.repeat(318)}`,
    packet: { type: 'publish', topic: 't', payload: Buffer.alloc(318), qos: 0, retain: false, dup: false },
  },
  {
    name: 'PUBACK v5 short form: Success, no properties -> Remaining Length 2',
    v: 5,
    bytes: '40 02 0005',
    packet: { type: 'puback', packetId: 5, reasonCode: 0 },
  },
  {
    name: 'PUBACK v5 reason code only: No matching subscribers -> Remaining Length 3',
    v: 5,
    bytes: '40 03 0005 10',
    packet: { type: 'puback', packetId: 5, reasonCode: 0x10 },
  },
  { name: 'PUBREL v3.1.1 has flags 0010', v: 4, bytes: '62 02 0007', packet: { type: 'pubrel', packetId: 7 } },
  {
    name: 'SUBSCRIBE v3.1.1 two filters',
    v: 4,
    bytes: '82 0f  0001  0003 612f62 01  0004 632f2b2f 02',
    packet: {
      type: 'subscribe', packetId: 1,
      subscriptions: [
        { topicFilter: 'a/b', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'c/+/', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
  },
  {
    name: 'SUBSCRIBE v5 with options: QoS 1, No Local, Retain As Published, Retain Handling 2',
    v: 5,
    // options = QoS 1 | No Local 0x04 | RAP 0x08 | Retain Handling 2 << 4 = 0x2d
    bytes: '82 09  0001  00  0003 612f23 2d',
    packet: {
      type: 'subscribe', packetId: 1,
      subscriptions: [{ topicFilter: 'a/#', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }],
    },
  },
  {
    name: 'SUBSCRIBE v5 with Subscription Identifier 300 (two-byte VBI)',
    v: 5,
    bytes: '82 0c  0001  03 0b ac02  0003 612f62 00',
    packet: {
      type: 'subscribe', packetId: 1, properties: { subscriptionIdentifiers: [300] },
      subscriptions: [{ topicFilter: 'a/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    },
  },
  { name: 'SUBACK v3.1.1 granted QoS 1 and failure', v: 4, bytes: '90 04 0001 01 80', packet: { type: 'suback', packetId: 1, reasonCodes: [1, 0x80] } },
  { name: 'UNSUBSCRIBE v3.1.1', v: 4, bytes: 'a2 05 0002 0001 78', packet: { type: 'unsubscribe', packetId: 2, topicFilters: ['x'] } },
  { name: 'UNSUBACK v3.1.1', v: 4, bytes: 'b0 02 0002', packet: { type: 'unsuback', packetId: 2, reasonCodes: [] } },
  { name: 'UNSUBACK v5 no subscription existed', v: 5, bytes: 'b0 04 0002 00 11', packet: { type: 'unsuback', packetId: 2, reasonCodes: [0x11] } },
  { name: 'PINGREQ', v: 4, bytes: 'c0 00', packet: { type: 'pingreq' } },
  { name: 'PINGRESP', v: 5, bytes: 'd0 00', packet: { type: 'pingresp' } },
  { name: 'DISCONNECT v3.1.1', v: 4, bytes: 'e0 00', packet: { type: 'disconnect' } },
  { name: 'DISCONNECT v5 short form: Normal disconnection -> Remaining Length 0', v: 5, bytes: 'e0 00', packet: { type: 'disconnect', reasonCode: 0 } },
  { name: 'DISCONNECT v5 reason code only: Session taken over', v: 5, bytes: 'e0 01 8e', packet: { type: 'disconnect', reasonCode: 0x8e } },
  {
    name: 'DISCONNECT v5 with Session Expiry Interval',
    v: 5,
    bytes: 'e0 07 04 05 11 0000003c',
    packet: { type: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 60 } },
  },
  { name: 'AUTH v5 short form: Success -> Remaining Length 0', v: 5, bytes: 'f0 00', packet: { type: 'auth', reasonCode: 0 } },
  {
    name: 'AUTH v5 continue authentication with method',
    v: 5,
    bytes: 'f0 07 18 05 15 0002 6b62',
    packet: { type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'kb' } },
  },
];

for (const vec of vectors) {
  test(`vector: ${vec.name}`, () => {
    const bytes = hex(vec.bytes);
    const d = new Decoder({ protocolVersion: vec.v });
    d.push(bytes);
    assert.deepEqual(d.read(), vec.packet);
    assert.equal(d.read(), undefined);
    assert.equal(encode(vec.packet, vec.v).toString('hex'), bytes.toString('hex'));
  });
}

test('v5 acks with reason 0 but given properties keep the long form', () => {
  assert.equal(encode({ type: 'pubcomp', packetId: 1, reasonCode: 0, properties: { reasonString: 'x' } }, 5).toString('hex'), '7008' + '0001' + '00' + '04' + '1f000178');
});

test('an ack without a reasonCode field encodes as Success in v5', () => {
  assert.equal(encode({ type: 'pubrec', packetId: 1 }, 5).toString('hex'), '50020001');
  assert.equal(encode({ type: 'disconnect' }, 5).toString('hex'), 'e000');
});

/** Longer-than-needed forms the spec allows a sender to use: the decoder accepts them, the encoder writes the shortest. */
const longForms: Array<{ name: string; v: ProtocolVersion; bytes: string; packet: Packet; shortest: string }> = [
  // Section 3.4.2.1: Reason Code and Property Length "can be omitted", so both may be present.
  { name: 'PUBACK v5 Success with an empty property section', v: 5, bytes: '40 04 0001 00 00', packet: { type: 'puback', packetId: 1, reasonCode: 0 }, shortest: '40020001' },
  // Section 3.4.2.2.1: "If the Remaining Length is less than 4 there is no Property Length".
  { name: 'PUBACK v5 Success given as a reason code byte only', v: 5, bytes: '40 03 0001 00', packet: { type: 'puback', packetId: 1, reasonCode: 0 }, shortest: '40020001' },
  { name: 'PUBREL v5 Packet Identifier not found, empty property section', v: 5, bytes: '62 04 0001 92 00', packet: { type: 'pubrel', packetId: 1, reasonCode: 0x92 }, shortest: '6203000192' },
  // Section 3.14.2.1 / 3.14.2.2.1: Remaining Length 0 and 1 forms of DISCONNECT.
  { name: 'DISCONNECT v5 Normal disconnection with an empty property section', v: 5, bytes: 'e0 02 00 00', packet: { type: 'disconnect', reasonCode: 0 }, shortest: 'e000' },
  { name: 'DISCONNECT v5 Normal disconnection as a reason code byte only', v: 5, bytes: 'e0 01 00', packet: { type: 'disconnect', reasonCode: 0 }, shortest: 'e000' },
  // Section 3.15.2.1: Success without properties may be Remaining Length 0; spelt out it means the same.
  { name: 'AUTH v5 Success with an empty property section', v: 5, bytes: 'f0 02 00 00', packet: { type: 'auth', reasonCode: 0 }, shortest: 'f000' },
];

for (const f of longForms) {
  test(`accepted long form: ${f.name}`, () => {
    const d = new Decoder({ protocolVersion: f.v });
    d.push(hex(f.bytes));
    assert.deepEqual(d.read(), f.packet);
    assert.equal(encode(f.packet, f.v).toString('hex'), f.shortest);
  });
}

test('v5 CONNECT with a Password and no User Name is accepted (section 3.1.2.9; [MQTT-3.1.2-22] is 3.1.1 only)', () => {
  // flags: password 0x40 | clean start 0x02
  const bytes = hex('10 12  0004 4d515454  05  42  003c  00  0001 63  0002 7077');
  const packet: Packet = { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 60, clientId: 'c', password: Buffer.from('pw') };
  const d = new Decoder();
  d.push(bytes);
  assert.deepEqual(d.read(), packet);
  assert.equal(encode(packet, 5).toString('hex'), bytes.toString('hex'));
});

test('[MQTT-3.2.2-6] a v5 CONNACK refusal is encoded with Session Present 0', () => {
  const bytes = encode({ type: 'connack', sessionPresent: false, reasonCode: 0x87 }, 5);
  assert.equal(bytes.toString('hex'), '2003008700');
});
