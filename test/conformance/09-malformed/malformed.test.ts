/**
 * Malformed and forbidden packets. Each case goes on its own connection; the broker must close that connection
 * (v5 after CONNACK: DISCONNECT with the reason code first) and keep serving a client that was connected before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  P,
  connect,
  hex,
  packet,
  props,
  publish,
  str,
  subscribe,
  u16,
  unsubscribe,
  disconnect,
  type Version,
} from '../../helpers/raw-client.js';
import { broker, expectErrorClose, nextPublish, pub1, raw, socket, sub, uid } from '../support.js';

interface Case {
  /** Rule id(s) or spec section, then what is wrong. */
  name: string;
  version: Version;
  /** 'connect': the bytes replace the CONNECT; 'connected': they follow a successful CONNECT. */
  phase: 'connect' | 'connected';
  bytes: Buffer;
  /** v5 reason codes the spec allows here (DISCONNECT, or an optional CONNACK in the connect phase). */
  codes: readonly number[];
  /** Extra CONNECT options for the 'connected' phase. */
  connectProps?: Parameters<typeof connect>[0];
}

const MALFORMED = [0x81];
const PROTOCOL = [0x82];
/** Where the spec forbids something without naming the code, either error class is accepted. */
const EITHER = [0x81, 0x82];

/** v5 CONNECT built by hand: flags byte, properties and payload as given. */
function connect5(flags: number, properties: Buffer, ...payload: Buffer[]): Buffer {
  return packet(0x10, str('MQTT'), Buffer.from([5, flags]), u16(0), properties, ...payload);
}
function connect4(flags: number, ...payload: Buffer[]): Buffer {
  return packet(0x10, str('MQTT'), Buffer.from([4, flags]), u16(0), ...payload);
}

const BAD_UTF8 = Buffer.from([0x61, 0xc3, 0x28]); // 0xC3 starts a 2-byte sequence, 0x28 is not a continuation
const SURROGATE = Buffer.from([0x61, 0xed, 0xa0, 0x80]); // U+D800
const NUL = Buffer.from([0x61, 0x00, 0x62]);

function cases(): Case[] {
  const out: Case[] = [];
  for (const v of [4, 5] as const) {
    const r = (v4: string, v5: string): string => (v === 4 ? v4 : v5);
    const c = (name: string, bytes: Buffer, codes: readonly number[], phase: Case['phase'] = 'connected'): void => {
      out.push({ name: `v${v} ${name}`, version: v, phase, bytes, codes });
    };
    const pubBody = (topic: Buffer | string, ...rest: Buffer[]): Buffer[] =>
      v === 5 ? [str(topic), ...rest.slice(0, -1), props([]), ...rest.slice(-1)] : [str(topic), ...rest];

    // Fixed header.
    c(`[${r('MQTT-2.2.2-2', 'MQTT-2.1.3-1')}] PUBACK with reserved flags 0001`, hex('41 02 00 01'), MALFORMED);
    c(`[${r('MQTT-2.2.2-2', 'MQTT-2.1.3-1')}] PINGREQ with reserved flags 0001`, hex('c1 00'), MALFORMED);
    c(`[${r('MQTT-3.8.1-1', 'MQTT-2.1.3-1')}] SUBSCRIBE with flags 0000`, Buffer.from([0x80, ...subscribe({ version: v }, { topic: 'a' }).subarray(1)]), MALFORMED);
    c(`[${r('MQTT-3.10.1-1', 'MQTT-2.1.3-1')}] UNSUBSCRIBE with flags 0000`, Buffer.from([0xa0, ...unsubscribe({ version: v }, 'a').subarray(1)]), MALFORMED);
    c(`[${r('MQTT-3.6.1-1', 'MQTT-2.1.3-1')}] PUBREL with flags 0000`, hex('60 02 00 01'), MALFORMED);
    c(`[${r('MQTT-2.2.2-2', 'MQTT-2.1.3-1')}] DISCONNECT with reserved flags 0001`, hex('e1 00'), MALFORMED);
    c('[2.1.2] reserved packet type 0', hex('00 00'), EITHER);
    c('[1.5.5 / 2.2.3] a 5-byte Remaining Length', hex('30 ff ff ff ff 01'), MALFORMED);
    c('[2.2.3] Remaining Length shorter than the topic length prefix says', hex('30 03 00 05 61'), MALFORMED);
    c('[3.3.2.2] QoS 1 PUBLISH cut off before its packet id', hex('32 03 00 01 61'), MALFORMED);
    c('[2.1.2] a client sends CONNACK (a server-to-client packet)', hex('20 02 00 00'), EITHER);
    c('[2.1.2] a client sends SUBACK (a server-to-client packet)', hex('90 03 00 01 00'), EITHER);

    // PUBLISH.
    c('[MQTT-3.3.1-4] PUBLISH with QoS 3', packet(0x36, ...pubBody('a', u16(1), Buffer.from('x'))), MALFORMED);
    // The spec names no reason code for a wildcard topic name; Topic Name invalid (0x90) fits as well.
    c('[MQTT-3.3.2-2] PUBLISH topic with +', publish({ version: v, topic: 'a/+', payload: 'x' }), [0x81, 0x82, 0x90]);
    c('[MQTT-3.3.2-2] PUBLISH topic with #', publish({ version: v, topic: 'a/#', payload: 'x' }), [0x81, 0x82, 0x90]);
    c(`[${r('MQTT-4.7.3-1', '4.7.3')}] PUBLISH with an empty topic${v === 5 ? ' and no Topic Alias' : ''}`, publish({ version: v, topic: '', payload: 'x' }), PROTOCOL);
    c(`[${r('MQTT-2.3.1-1', 'MQTT-2.2.1-3')}] QoS 1 PUBLISH with packet id 0`, publish({ version: v, topic: 'a', payload: 'x', qos: 1, packetId: 0 }), EITHER);
    c(`[${r('MQTT-1.5.3-1', 'MQTT-1.5.4-1')}] PUBLISH topic with ill-formed UTF-8`, publish({ version: v, topic: BAD_UTF8, payload: 'x' }), MALFORMED);
    c(`[${r('MQTT-1.5.3-1', 'MQTT-1.5.4-1')}] PUBLISH topic with an encoded surrogate U+D800`, publish({ version: v, topic: SURROGATE, payload: 'x' }), MALFORMED);
    c(`[${r('MQTT-1.5.3-2', 'MQTT-1.5.4-2')}] PUBLISH topic containing U+0000`, publish({ version: v, topic: NUL, payload: 'x' }), MALFORMED);

    // SUBSCRIBE / UNSUBSCRIBE.
    c(`[${r('MQTT-3.8.3-3', 'MQTT-3.8.3-2')}] SUBSCRIBE without any topic filter`, subscribe({ version: v }), PROTOCOL);
    c(`[${r('MQTT-3.10.3-2', 'MQTT-3.10.3-2')}] UNSUBSCRIBE without any topic filter`, unsubscribe({ version: v }), PROTOCOL);
    c(`[${r('MQTT-2.3.1-1', 'MQTT-2.2.1-3')}] SUBSCRIBE with packet id 0`, subscribe({ version: v, packetId: 0 }, { topic: 'a' }), EITHER);
    c(`[${r('MQTT-2.3.1-1', 'MQTT-2.2.1-3')}] UNSUBSCRIBE with packet id 0`, unsubscribe({ version: v, packetId: 0 }, 'a'), EITHER);
    c(`[${r('MQTT-1.5.3-1', 'MQTT-1.5.4-1')}] SUBSCRIBE filter with ill-formed UTF-8`, subscribe({ version: v }, { topic: BAD_UTF8 }), MALFORMED);
    c(`[${r('MQTT-1.5.3-2', 'MQTT-1.5.4-2')}] SUBSCRIBE filter containing U+0000`, subscribe({ version: v }, { topic: NUL }), MALFORMED);
    c(`[${r('MQTT-3-8.3-4', 'MQTT-3.8.3-5')}] SUBSCRIBE options with reserved bits set`, subscribe({ version: v }, { topic: 'a', qos: 0xc0 }), MALFORMED);
    c(`[${r('MQTT-3-8.3-4', '3.8.3.1')}] SUBSCRIBE requesting QoS 3`, subscribe({ version: v }, { topic: 'a', qos: 3 }), v === 5 ? PROTOCOL : MALFORMED);
  }

  const v5 = (name: string, bytes: Buffer, codes: readonly number[], phase: Case['phase'] = 'connected'): void => {
    out.push({ name: `v5 ${name}`, version: 5, phase, bytes, codes });
  };
  // v5 properties.
  v5('[2.2.2.2] PUBLISH with a property not allowed in PUBLISH (Session Expiry Interval)', packet(0x30, str('a'), props([[P.SessionExpiryInterval, 5]]), Buffer.from('x')), EITHER);
  v5('[2.2.2.2] PUBLISH with an unknown property id 0x7f', packet(0x30, str('a'), hex('02 7f 00'), Buffer.from('x')), MALFORMED);
  v5('[3.3.2.3.3] PUBLISH with Message Expiry Interval twice', publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.MessageExpiryInterval, 5], [P.MessageExpiryInterval, 6]] }), PROTOCOL);
  v5('[3.3.2.3.9] PUBLISH with Content Type twice', publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.ContentType, 'a'], [P.ContentType, 'b']] }), PROTOCOL);
  v5('[2.2.2] PUBLISH whose Property Length runs past the packet', packet(0x30, str('a'), hex('20 01 00 00 00 05')), MALFORMED);
  v5('[MQTT-1.5.4-1] PUBLISH User Property with ill-formed UTF-8', packet(0x30, str('a'), props([[P.UserProperty, ['k', 'v']]]).fill(0xc3, 7, 8), Buffer.from('x')), MALFORMED);
  v5('[MQTT-3.3.2-14] PUBLISH Response Topic with a wildcard', publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.ResponseTopic, 'r/#']] }), EITHER);
  v5('[3.8.3.1] SUBSCRIBE with Retain Handling 3', subscribe({ version: 5 }, { topic: 'a', retainHandling: 3 }), PROTOCOL);
  v5('[3.8.2.1.2] SUBSCRIBE with Subscription Identifier 0', subscribe({ version: 5, properties: [[P.SubscriptionIdentifier, 0]] }, { topic: 'a' }), PROTOCOL);
  v5('[3.8.2.1.2] SUBSCRIBE with two Subscription Identifiers', subscribe({ version: 5, properties: [[P.SubscriptionIdentifier, 1], [P.SubscriptionIdentifier, 2]] }, { topic: 'a' }), PROTOCOL);
  v5('[4.12] AUTH without an Authentication Method in CONNECT', packet(0xf0, Buffer.from([0x18]), props([])), PROTOCOL);
  v5('[3.14.2.2.2] DISCONNECT setting Session Expiry when CONNECT had 0', disconnect(0x00, [[P.SessionExpiryInterval, 30]]), PROTOCOL);
  v5('[3.14.2.1] DISCONNECT with an undefined reason code 0x03', hex('e0 01 03'), EITHER);

  // CONNECT errors (no CONNACK 0 may follow; a v5 CONNACK, if any, carries one of the codes).
  const willProps = props([]);
  out.push(
    { name: 'v4 [MQTT-3.1.2-14] Will QoS 3', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x04 | 0x18, str('id'), str('w'), str('x')), codes: [] },
    { name: 'v4 [MQTT-3.1.2-13] Will Flag 0 with Will QoS 1', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x08, str('id')), codes: [] },
    { name: 'v4 [MQTT-3.1.2-15] Will Flag 0 with Will Retain 1', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x20, str('id')), codes: [] },
    { name: 'v4 [MQTT-3.1.2-22] Password Flag without User Name Flag', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x40, str('id'), str('pw')), codes: [] },
    { name: 'v4 [MQTT-1.5.3-1] client id with ill-formed UTF-8', version: 4, phase: 'connect', bytes: connect4(0x02, str(BAD_UTF8)), codes: [] },
    { name: 'v4 [MQTT-1.5.3-2] client id containing U+0000', version: 4, phase: 'connect', bytes: connect4(0x02, str(NUL)), codes: [] },
    { name: 'v4 [MQTT-3.3.2-2] Will Topic containing a wildcard', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x04, str('id'), str('w/#'), str('x')), codes: [] },
    { name: 'v4 [MQTT-1.5.3-1] Will Topic with ill-formed UTF-8', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x04, str('id'), str(BAD_UTF8), str('x')), codes: [] },
    { name: 'v4 [MQTT-3.1.2-9] Will Flag set but no Will Topic/Message', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x04, str('id')), codes: [] },
    { name: 'v4 [MQTT-3.1.2-19] User Name Flag set but no User Name', version: 4, phase: 'connect', bytes: connect4(0x02 | 0x80, str('id')), codes: [] },
    { name: 'v5 [MQTT-3.1.2-12] Will QoS 3', version: 5, phase: 'connect', bytes: connect5(0x02 | 0x04 | 0x18, props([]), str('id'), willProps, str('w'), str('x')), codes: MALFORMED },
    { name: 'v5 [MQTT-3.1.2-11] Will Flag 0 with Will QoS 1', version: 5, phase: 'connect', bytes: connect5(0x02 | 0x08, props([]), str('id')), codes: MALFORMED },
    { name: 'v5 [MQTT-3.1.2-13] Will Flag 0 with Will Retain 1', version: 5, phase: 'connect', bytes: connect5(0x02 | 0x20, props([]), str('id')), codes: MALFORMED },
    { name: 'v5 [MQTT-3.3.2-2] Will Topic containing a wildcard', version: 5, phase: 'connect', bytes: connect5(0x02 | 0x04, props([]), str('id'), willProps, str('w/+'), str('x')), codes: [0x81, 0x82, 0x90] },
    { name: 'v5 [MQTT-1.5.4-1] Will Topic with ill-formed UTF-8', version: 5, phase: 'connect', bytes: connect5(0x02 | 0x04, props([]), str('id'), willProps, str(BAD_UTF8), str('x')), codes: MALFORMED },
    { name: 'v5 [MQTT-1.5.4-1] client id with ill-formed UTF-8', version: 5, phase: 'connect', bytes: connect5(0x02, props([]), str(BAD_UTF8)), codes: [0x81, 0x85] },
    { name: 'v5 [MQTT-1.5.4-2] client id containing U+0000', version: 5, phase: 'connect', bytes: connect5(0x02, props([]), str(NUL)), codes: [0x81, 0x85] },
    { name: 'v5 [3.1.2.11.3] Receive Maximum 0', version: 5, phase: 'connect', bytes: connect5(0x02, props([[P.ReceiveMaximum, 0]]), str('id')), codes: PROTOCOL },
    { name: 'v5 [3.1.2.11.4] Maximum Packet Size 0', version: 5, phase: 'connect', bytes: connect5(0x02, props([[P.MaximumPacketSize, 0]]), str('id')), codes: PROTOCOL },
    { name: 'v5 [3.1.2.11.2] Session Expiry Interval twice', version: 5, phase: 'connect', bytes: connect5(0x02, props([[P.SessionExpiryInterval, 1], [P.SessionExpiryInterval, 2]]), str('id')), codes: PROTOCOL },
    { name: 'v5 [3.1.2.11] a property not allowed in CONNECT (Topic Alias)', version: 5, phase: 'connect', bytes: connect5(0x02, props([[P.TopicAlias, 1]]), str('id')), codes: EITHER },
    { name: 'v5 [3.1.2.11.5] Request Problem Information 2', version: 5, phase: 'connect', bytes: connect5(0x02, props([[P.RequestProblemInformation, 2]]), str('id')), codes: PROTOCOL },
    { name: 'v5 [MQTT-3.1.2-3] reserved CONNECT flag set', version: 5, phase: 'connect', bytes: connect5(0x03, props([]), str('id')), codes: MALFORMED },
    { name: 'v5 [2.2.3] CONNECT with a 5-byte Remaining Length', version: 5, phase: 'connect', bytes: hex('10 ff ff ff ff 01'), codes: MALFORMED },
  );
  return out;
}

for (const k of cases()) {
  test(`${k.name}: connection closed${k.version === 5 && k.codes.length > 0 ? ` (reason ${k.codes.map((x) => `0x${x.toString(16)}`).join('/')})` : ''}, others still served`, async (t) => {
    const { port } = await broker(t);
    // A client connected before the bad packet must still be served after it.
    const aliveTopic = `alive/${uid()}`;
    const watcher = await raw(t, port, { version: 4, clientId: uid('watch') });
    await sub(watcher, 4, aliveTopic, 1);

    let c;
    if (k.phase === 'connect') {
      c = await socket(t, port);
      c.send(k.bytes);
    } else {
      c = await raw(t, port, { version: k.version, clientId: uid('bad') });
      c.send(k.bytes);
    }
    await expectErrorClose(c, k.version, k.codes, k.phase);

    const p = await raw(t, port, { version: 4, clientId: uid('after') });
    await pub1(p, 4, aliveTopic, 'still served', 1);
    const got = await nextPublish(watcher, 4);
    assert.equal(got.payload.toString(), 'still served');
  });
}

test('a CONNECT split byte by byte is still parsed (incremental decoding)', async (t) => {
  const { port } = await broker(t);
  const c = await socket(t, port);
  for (const b of connect({ version: 5, clientId: uid() })) {
    c.send(Buffer.from([b]));
    await new Promise((r) => setImmediate(r));
  }
  const ack = await c.next();
  assert.equal(ack.type, 2);
});
