/**
 * Incremental MQTT decoder: fixed header -> remaining length (maximum size checked here, before any
 * body is buffered) -> body. Sans-I/O: feed bytes with push(), take packets with read().
 */
import { MAX_PACKET_SIZE, PacketType, ReasonCodeRules, ReasonCodesByPacket, type ProtocolVersion, type QoS } from './constants.js';
import {
  MalformedPacketError,
  MqttProtocolError,
  PacketTooLargeError,
  ProtocolError,
  TopicAliasInvalidError,
  TopicNameInvalidError,
  UnsupportedProtocolVersionError,
} from './errors.js';
import type {
  ConnectPacket,
  Packet,
  Properties,
  PublishPacket,
  RetainHandling,
  Subscription,
  Will,
} from './packets.js';
import { CONTEXT_MASK, propertyById, PropertyType } from './properties.js';
import { isWellFormedMqttUtf8, type FastBuffer } from './utf8.js';

export interface DecoderOptions {
  /** Protocol level of the stream. Leave undefined on a server: it is learned from the first CONNECT. */
  protocolVersion?: ProtocolVersion;
  /** Largest packet accepted, in bytes including the fixed header. Default {@link MAX_PACKET_SIZE}. */
  maximumPacketSize?: number;
}

const EMPTY = Buffer.alloc(0) as FastBuffer;

// Cursor over the body being parsed. Module state is safe: parsing is synchronous and never re-entered.
let b: FastBuffer = EMPTY;
let p = 0;
let end = 0;
let ver: ProtocolVersion = 4;

function short(): MalformedPacketError {
  return new MalformedPacketError('packet is shorter than its contents require');
}

function u8(): number {
  if (p >= end) throw short();
  return b[p++]!;
}

function u16(): number {
  if (p + 2 > end) throw short();
  const v = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  return v;
}

function u32(): number {
  if (p + 4 > end) throw short();
  const v = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  p += 4;
  return v;
}

function vbi(): number {
  let value = 0;
  let mult = 1;
  for (let i = 1; ; i++) {
    const byte = u8();
    value += (byte & 0x7f) * mult;
    if (byte < 0x80) {
      // [MQTT-1.5.5-1] the minimum number of bytes must be used (properties exist only in v5).
      if (byte === 0 && i > 1) throw new MalformedPacketError('variable byte integer is not minimally encoded', 'MQTT-1.5.5-1');
      return value;
    }
    // Section 1.5.5: at most four bytes.
    if (i === 4) throw new MalformedPacketError('variable byte integer longer than 4 bytes');
    mult *= 128;
  }
}

function utf8Error(s: number, e: number): MalformedPacketError {
  // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]) no U+0000: a Malformed Packet.
  if (b.subarray(s, e).includes(0)) return new MalformedPacketError('string contains U+0000', ver === 5 ? 'MQTT-1.5.4-2' : 'MQTT-1.5.3-2');
  // [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]) well-formed UTF-8, no surrogates: a Malformed Packet.
  return new MalformedPacketError('string is not well-formed UTF-8', ver === 5 ? 'MQTT-1.5.4-1' : 'MQTT-1.5.3-1');
}

function str(): string {
  const len = u16();
  const s = p;
  const e = s + len;
  if (e > end) throw short();
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c >= 0x80 || c === 0) {
      if (!isWellFormedMqttUtf8(b, s, e)) throw utf8Error(s, e);
      p = e;
      // utf8Slice keeps a leading U+FEFF [MQTT-1.5.4-3].
      return b.utf8Slice(s, e);
    }
  }
  p = e;
  return len === 0 ? '' : b.latin1Slice(s, e);
}

/** A topic name; `wild` reports whether it holds '+' or '#'. */
let wild = false;
function topicStr(): string {
  const len = u16();
  const s = p;
  const e = s + len;
  if (e > end) throw short();
  let w = false;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0x23 || c === 0x2b) {
      w = true;
    } else if (c >= 0x80 || c === 0) {
      if (!isWellFormedMqttUtf8(b, s, e)) throw utf8Error(s, e);
      for (let j = i; j < e; j++) if (b[j] === 0x23 || b[j] === 0x2b) w = true;
      wild = w;
      p = e;
      return b.utf8Slice(s, e);
    }
  }
  wild = w;
  p = e;
  return len === 0 ? '' : b.latin1Slice(s, e);
}

function bin(): Buffer {
  const len = u16();
  const s = p;
  if (s + len > end) throw short();
  p = s + len;
  return b.subarray(s, p);
}

/**
 * Rules a zero Packet Identifier breaks, [v5, v3.1.1]. SUBSCRIBE, UNSUBSCRIBE and PUBLISH carry a non-zero
 * identifier [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]); acknowledgements repeat the identifier of the packet they
 * acknowledge [MQTT-2.2.1-5] [MQTT-2.2.1-6] (3.1.1: [MQTT-2.3.1-6] names PUBACK, PUBREC and PUBREL; [MQTT-2.3.1-7]
 * SUBACK and UNSUBACK), which is never 0. 3.1.1 names no rule for PUBCOMP.
 */
const ID_RULES = {
  publish: ['MQTT-2.2.1-3', 'MQTT-2.3.1-1'],
  subscribe: ['MQTT-2.2.1-3', 'MQTT-2.3.1-1'],
  unsubscribe: ['MQTT-2.2.1-3', 'MQTT-2.3.1-1'],
  puback: ['MQTT-2.2.1-5', 'MQTT-2.3.1-6'],
  pubrec: ['MQTT-2.2.1-5', 'MQTT-2.3.1-6'],
  pubrel: ['MQTT-2.2.1-5', 'MQTT-2.3.1-6'],
  pubcomp: ['MQTT-2.2.1-5', undefined],
  suback: ['MQTT-2.2.1-6', 'MQTT-2.3.1-7'],
  unsuback: ['MQTT-2.2.1-6', 'MQTT-2.3.1-7'],
} as const satisfies Record<string, readonly [string, string | undefined]>;

function packetId(type: keyof typeof ID_RULES): number {
  const id = u16();
  // A well-formed packet whose data the protocol does not allow: a Protocol Error (section 1.2).
  if (id === 0) throw new ProtocolError('packet identifier 0', ID_RULES[type][ver === 5 ? 0 : 1]);
  return id;
}

function done(): void {
  if (p !== end) throw new MalformedPacketError('remaining length does not match the packet contents');
}

const MASK_CONNECT = CONTEXT_MASK.connect;
const MASK_WILL = CONTEXT_MASK.will;

function properties(mask: number, where: string): Properties | undefined {
  const len = vbi();
  if (len === 0) return undefined;
  const pend = p + len;
  if (pend > end) throw new MalformedPacketError('property length exceeds the packet');
  const outerEnd = end;
  end = pend;
  const out: Record<string, unknown> = {};
  while (p < pend) {
    // Identifiers are VBIs, but all defined ones are < 0x80: a longer one is unknown anyway.
    const id = u8();
    const def = propertyById(id);
    // Section 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
    if (def === undefined) throw new MalformedPacketError(`unknown property identifier 0x${id.toString(16)}`);
    if ((def.mask & mask) === 0) throw new MalformedPacketError(`property ${def.name} is not allowed in ${where}`);
    let value: unknown;
    switch (def.type) {
      case PropertyType.Byte:
        value = u8();
        break;
      case PropertyType.TwoByteInteger:
        value = u16();
        break;
      case PropertyType.FourByteInteger:
        value = u32();
        break;
      case PropertyType.VariableByteInteger:
        value = vbi();
        break;
      case PropertyType.Utf8String:
        value = str();
        break;
      case PropertyType.BinaryData:
        value = bin();
        break;
      case PropertyType.Utf8StringPair:
        value = [str(), str()];
        break;
    }
    if (def.min !== undefined && ((value as number) < def.min || (value as number) > def.max!)) {
      const msg = `property ${def.name} value ${String(value)} is out of range`;
      // Section 3.3.4: Topic Alias 0 -> 0x94; the other range violations are "a Protocol Error" in each property's section.
      throw def.rangeError === 'topicAlias' ? new TopicAliasInvalidError(msg, def.rangeRule) : new ProtocolError(msg, def.rangeRule);
    }
    if (def.repeatable) {
      const list = out[def.name] as unknown[] | undefined;
      if (list === undefined) out[def.name] = [value];
      else list.push(value);
    } else {
      if (out[def.name] !== undefined) throw new ProtocolError(`property ${def.name} included more than once`);
      out[def.name] = value;
    }
  }
  end = outerEnd;
  const props = out as Properties;
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    // Section 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is no Authentication
    // Method"; data without a method has no meaning in CONNACK either.
    throw new ProtocolError('Authentication Data without Authentication Method');
  }
  if (props.responseTopic !== undefined && /[+#]/.test(props.responseTopic)) {
    // [MQTT-3.3.2-14] the Response Topic is a Topic Name: no wildcards.
    throw new ProtocolError('Response Topic contains wildcards', 'MQTT-3.3.2-14');
  }
  return props;
}

function reasonSet(codes: readonly number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of codes) t[c] = 1;
  return t;
}
const R_CONNACK = reasonSet(ReasonCodesByPacket.connack);
const R_PUBACK = reasonSet(ReasonCodesByPacket.puback);
const R_PUBREL = reasonSet(ReasonCodesByPacket.pubrel);
const R_SUBACK = reasonSet(ReasonCodesByPacket.suback);
const R_UNSUBACK = reasonSet(ReasonCodesByPacket.unsuback);
const R_DISCONNECT = reasonSet(ReasonCodesByPacket.disconnect);
const R_AUTH = reasonSet(ReasonCodesByPacket.auth);
const R_SUBACK_V3 = reasonSet([0x00, 0x01, 0x02, 0x80]);

function reason(set: Uint8Array, where: string): number {
  const rc = u8();
  // A parsed byte the protocol does not allow in this packet: a Protocol Error (section 1.2).
  if (set[rc] !== 1) throw new ProtocolError(`reason code 0x${rc.toString(16)} is not valid in ${where}`, ReasonCodeRules[where]);
  return rc;
}

function badTopic(message: string, rule: string): MqttProtocolError {
  // v5 has a reason code for it (0x90); v3 only closes the connection.
  return ver === 5 ? new TopicNameInvalidError(message, rule) : new MalformedPacketError(message, rule);
}

function parseConnect(): ConnectPacket {
  const protocolName = str();
  const level = u8();
  let version: ProtocolVersion;
  if (protocolName === 'MQTT' && (level === 4 || level === 5)) version = level;
  else if (protocolName === 'MQIsdp' && level === 3) version = 3;
  // [MQTT-3.1.2-2] known protocol, unsupported level: CONNACK 0x01 (v3) / 0x84 (v5), then close.
  else if (protocolName === 'MQTT' || protocolName === 'MQIsdp') throw new UnsupportedProtocolVersionError(protocolName, level, 'MQTT-3.1.2-2');
  // [MQTT-3.1.2-1] any other protocol name: not MQTT, do not process further.
  else throw new ProtocolError(`unknown protocol name ${JSON.stringify(protocolName)}`, 'MQTT-3.1.2-1');
  ver = version;
  const v5 = version === 5;
  const flags = u8();
  // [MQTT-3.1.2-3] the reserved flag is 0.
  if ((flags & 0x01) !== 0) throw new MalformedPacketError('reserved CONNECT flag is set', 'MQTT-3.1.2-3');
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  const passwordFlag = (flags & 0x40) !== 0;
  const usernameFlag = (flags & 0x80) !== 0;
  if (willFlag) {
    // [MQTT-3.1.2-12] (3.1.1: [MQTT-3.1.2-14]) Will QoS 3 is not allowed.
    if (willQos === 3) throw new MalformedPacketError('Will QoS 3', v5 ? 'MQTT-3.1.2-12' : 'MQTT-3.1.2-14');
  } else {
    // [MQTT-3.1.2-11] (3.1.1: [MQTT-3.1.2-13]) no will: Will QoS 0.
    if (willQos !== 0) throw new MalformedPacketError('Will QoS set without Will Flag', v5 ? 'MQTT-3.1.2-11' : 'MQTT-3.1.2-13');
    // [MQTT-3.1.2-13] (3.1.1: [MQTT-3.1.2-15]) no will: Will Retain 0.
    if (willRetain) throw new MalformedPacketError('Will Retain set without Will Flag', v5 ? 'MQTT-3.1.2-13' : 'MQTT-3.1.2-15');
  }
  // [MQTT-3.1.2-22] v3.1.1: no password without a user name (v5 allows it).
  if (!v5 && passwordFlag && !usernameFlag) throw new ProtocolError('Password Flag set without User Name Flag', 'MQTT-3.1.2-22');
  const keepAlive = u16();
  const props = v5 ? properties(MASK_CONNECT, 'CONNECT') : undefined;
  const clientId = str();
  const packet: ConnectPacket = { type: 'connect', protocolName, protocolVersion: version, cleanStart: (flags & 0x02) !== 0, keepAlive, clientId };
  if (willFlag) {
    const willProps = v5 ? properties(MASK_WILL, 'Will Properties') : undefined;
    const topic = topicStr();
    if (topic.length === 0) throw badTopic('empty Will Topic', 'MQTT-4.7.3-1');
    if (wild) throw badTopic('Will Topic contains wildcards', v5 ? 'MQTT-4.7.0-1' : 'MQTT-4.7.1-1');
    const will: Will = { topic, payload: bin(), qos: willQos as QoS, retain: willRetain };
    if (willProps !== undefined) will.properties = willProps;
    packet.will = will;
  }
  if (usernameFlag) packet.username = str();
  if (passwordFlag) packet.password = bin();
  if (props !== undefined) packet.properties = props;
  done();
  return packet;
}

function parsePublish(flags: number): PublishPacket {
  const qos = ((flags >> 1) & 3) as QoS;
  const topic = topicStr();
  const hasWildcard = wild;
  const packet: PublishPacket = { type: 'publish', topic, payload: EMPTY, qos, retain: (flags & 1) !== 0, dup: (flags & 8) !== 0 };
  if (qos !== 0) packet.packetId = packetId('publish');
  if (ver === 5) {
    const props = properties(CONTEXT_MASK.publish, 'PUBLISH');
    if (props !== undefined) packet.properties = props;
    if (topic.length === 0 && props?.topicAlias === undefined) {
      // Section 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias".
      throw new ProtocolError('empty Topic Name without Topic Alias');
    }
  } else if (topic.length === 0) {
    throw new MalformedPacketError('empty Topic Name', 'MQTT-4.7.3-1');
  }
  // [MQTT-3.3.2-2] the Topic Name must not contain wildcards.
  if (hasWildcard) throw badTopic('Topic Name contains wildcards', 'MQTT-3.3.2-2');
  packet.payload = b.subarray(p, end);
  p = end;
  return packet;
}

type AckName = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';

function parseAck(type: AckName, set: Uint8Array): Packet {
  const id = packetId(type);
  if (ver !== 5) {
    done();
    return { type, packetId: id };
  }
  // Short forms: length 2 = Success without properties, length 3 = reason code only.
  if (p === end) return { type, packetId: id, reasonCode: 0 };
  const rc = reason(set, type.toUpperCase());
  if (p === end) return { type, packetId: id, reasonCode: rc };
  const props = properties(CONTEXT_MASK[type], type.toUpperCase());
  done();
  return props === undefined ? { type, packetId: id, reasonCode: rc } : { type, packetId: id, reasonCode: rc, properties: props };
}

function parseSubscribe(): Packet {
  const id = packetId('subscribe');
  const props = ver === 5 ? properties(CONTEXT_MASK.subscribe, 'SUBSCRIBE') : undefined;
  if (props?.subscriptionIdentifiers !== undefined && props.subscriptionIdentifiers.length > 1) {
    // Section 3.8.2.1.2: Subscription Identifier at most once in SUBSCRIBE.
    throw new ProtocolError('more than one Subscription Identifier in SUBSCRIBE');
  }
  const subscriptions: Subscription[] = [];
  while (p < end) {
    const topicFilter = str();
    const opts = u8();
    const qos = opts & 3;
    if (ver === 5) {
      // [MQTT-3.8.3-5] reserved bits 6 and 7 are 0.
      if ((opts & 0xc0) !== 0) throw new MalformedPacketError('reserved subscription option bits set', 'MQTT-3.8.3-5');
      // Section 3.8.3.1: Maximum QoS 3 and Retain Handling 3 are Protocol Errors.
      if (qos === 3) throw new ProtocolError('subscription Maximum QoS 3');
      const retainHandling = (opts >> 4) & 3;
      if (retainHandling === 3) throw new ProtocolError('Retain Handling 3');
      subscriptions.push({ topicFilter, qos: qos as QoS, noLocal: (opts & 4) !== 0, retainAsPublished: (opts & 8) !== 0, retainHandling: retainHandling as RetainHandling });
    } else {
      // [MQTT-3-8.3-4] (3.1.1, the id as printed there) reserved bits 0 and QoS 0..2, otherwise malformed.
      if ((opts & 0xfc) !== 0 || qos === 3) throw new MalformedPacketError('invalid requested QoS byte', 'MQTT-3-8.3-4');
      subscriptions.push({ topicFilter, qos: qos as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    }
  }
  // [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]) at least one subscription.
  if (subscriptions.length === 0) throw new ProtocolError('SUBSCRIBE without subscriptions', ver === 5 ? 'MQTT-3.8.3-2' : 'MQTT-3.8.3-3');
  return props === undefined ? { type: 'subscribe', packetId: id, subscriptions } : { type: 'subscribe', packetId: id, subscriptions, properties: props };
}

function parseSuback(): Packet {
  const id = packetId('suback');
  const props = ver === 5 ? properties(CONTEXT_MASK.suback, 'SUBACK') : undefined;
  const reasonCodes: number[] = [];
  while (p < end) {
    if (ver === 5) reasonCodes.push(reason(R_SUBACK, 'SUBACK'));
    else {
      const rc = u8();
      // [MQTT-3.9.3-2] (3.1.1) only 0x00, 0x01, 0x02 and 0x80.
      if (R_SUBACK_V3[rc] !== 1) throw new ProtocolError(`SUBACK return code 0x${rc.toString(16)}`, 'MQTT-3.9.3-2');
      reasonCodes.push(rc);
    }
  }
  if (reasonCodes.length === 0) throw new ProtocolError('SUBACK without return codes');
  return props === undefined ? { type: 'suback', packetId: id, reasonCodes } : { type: 'suback', packetId: id, reasonCodes, properties: props };
}

function parseUnsubscribe(): Packet {
  const id = packetId('unsubscribe');
  const props = ver === 5 ? properties(CONTEXT_MASK.unsubscribe, 'UNSUBSCRIBE') : undefined;
  const topicFilters: string[] = [];
  while (p < end) topicFilters.push(str());
  // [MQTT-3.10.3-2] at least one Topic Filter.
  if (topicFilters.length === 0) throw new ProtocolError('UNSUBSCRIBE without topic filters', 'MQTT-3.10.3-2');
  return props === undefined ? { type: 'unsubscribe', packetId: id, topicFilters } : { type: 'unsubscribe', packetId: id, topicFilters, properties: props };
}

function parseUnsuback(): Packet {
  const id = packetId('unsuback');
  if (ver !== 5) {
    done();
    return { type: 'unsuback', packetId: id, reasonCodes: [] };
  }
  const props = properties(CONTEXT_MASK.unsuback, 'UNSUBACK');
  const reasonCodes: number[] = [];
  while (p < end) reasonCodes.push(reason(R_UNSUBACK, 'UNSUBACK'));
  if (reasonCodes.length === 0) throw new ProtocolError('UNSUBACK without reason codes');
  return props === undefined ? { type: 'unsuback', packetId: id, reasonCodes } : { type: 'unsuback', packetId: id, reasonCodes, properties: props };
}

function parseConnack(): Packet {
  const ackFlags = u8();
  if (ver === 5) {
    // [MQTT-3.2.2-1] bits 7-1 of the acknowledge flags are reserved.
    if ((ackFlags & 0xfe) !== 0) throw new MalformedPacketError('reserved CONNACK flag bits set', 'MQTT-3.2.2-1');
    const rc = reason(R_CONNACK, 'CONNACK');
    // [MQTT-3.2.2-6] a refusal has Session Present 0.
    if (rc !== 0 && (ackFlags & 1) !== 0) throw new ProtocolError('Session Present set with a failure reason code', 'MQTT-3.2.2-6');
    const props = properties(CONTEXT_MASK.connack, 'CONNACK');
    done();
    const packet = { type: 'connack', sessionPresent: (ackFlags & 1) !== 0, reasonCode: rc } as const;
    return props === undefined ? packet : { ...packet, properties: props };
  }
  // MQTT 3.1 leaves the first byte unused; 3.1.1 reserves bits 7-1.
  if (ver === 4 && (ackFlags & 0xfe) !== 0) throw new MalformedPacketError('reserved CONNACK flag bits set');
  const rc = u8();
  // 3.1.1 section 3.2.2.3: return codes 6-255 are reserved.
  if (rc > 5) throw new ProtocolError(`CONNACK return code ${rc}`);
  // [MQTT-3.2.2-4] (3.1.1) a refusal has Session Present 0.
  if (ver === 4 && rc !== 0 && (ackFlags & 1) !== 0) throw new ProtocolError('Session Present set with a non-zero return code', 'MQTT-3.2.2-4');
  done();
  return { type: 'connack', sessionPresent: ver === 4 && (ackFlags & 1) !== 0, reasonCode: rc };
}

function parseDisconnect(): Packet {
  if (p === end) return ver === 5 ? { type: 'disconnect', reasonCode: 0 } : { type: 'disconnect' };
  const rc = reason(R_DISCONNECT, 'DISCONNECT');
  // Section 3.14.2.2.1: with Remaining Length < 2 the property length is 0.
  if (p === end) return { type: 'disconnect', reasonCode: rc };
  const props = properties(CONTEXT_MASK.disconnect, 'DISCONNECT');
  done();
  return props === undefined ? { type: 'disconnect', reasonCode: rc } : { type: 'disconnect', reasonCode: rc, properties: props };
}

function parseAuth(): Packet {
  // Section 3.15.2.1: Remaining Length 0 means Success without properties.
  if (p === end) return { type: 'auth', reasonCode: 0 };
  const rc = reason(R_AUTH, 'AUTH');
  const props = properties(CONTEXT_MASK.auth, 'AUTH');
  // Section 3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method". Success without properties
  // may omit it (section 3.15.2.1 allows that AUTH as Remaining Length 0), also when spelt out as rc 0 + length 0.
  if (props?.authenticationMethod === undefined && (rc !== 0 || props !== undefined)) {
    throw new ProtocolError('AUTH without Authentication Method');
  }
  done();
  return props === undefined ? { type: 'auth', reasonCode: rc } : { type: 'auth', reasonCode: rc, properties: props };
}

function parseBody(type: number, flags: number): Packet {
  switch (type) {
    case PacketType.PUBLISH:
      return parsePublish(flags);
    case PacketType.CONNECT:
      return parseConnect();
    case PacketType.CONNACK:
      return parseConnack();
    case PacketType.PUBACK:
      return parseAck('puback', R_PUBACK);
    case PacketType.PUBREC:
      return parseAck('pubrec', R_PUBACK);
    case PacketType.PUBREL:
      return parseAck('pubrel', R_PUBREL);
    case PacketType.PUBCOMP:
      return parseAck('pubcomp', R_PUBREL);
    case PacketType.SUBSCRIBE:
      return parseSubscribe();
    case PacketType.SUBACK:
      return parseSuback();
    case PacketType.UNSUBSCRIBE:
      return parseUnsubscribe();
    case PacketType.UNSUBACK:
      return parseUnsuback();
    case PacketType.PINGREQ:
      return { type: 'pingreq' };
    case PacketType.PINGRESP:
      return { type: 'pingresp' };
    case PacketType.DISCONNECT:
      return parseDisconnect();
    default:
      return parseAuth();
  }
}

/** Checks what the fixed header alone can tell, before the body is buffered. */
function headerError(type: number, flags: number, remaining: number, version: ProtocolVersion | undefined): MqttProtocolError | undefined {
  if (type === 0) return new MalformedPacketError('reserved packet type 0');
  if (version === undefined) {
    // [MQTT-3.1.0-1] the first packet from a client is CONNECT.
    if (type !== PacketType.CONNECT) return new ProtocolError('first packet is not CONNECT', 'MQTT-3.1.0-1');
  } else if (type === PacketType.AUTH && version !== 5) {
    return new MalformedPacketError('packet type 15 is reserved before MQTT 5');
  }
  const flagRule = version === 5 || version === undefined ? 'MQTT-2.1.3-1' : 'MQTT-2.2.2-2';
  switch (type) {
    case PacketType.PUBLISH:
      // [MQTT-3.3.1-4] QoS 3 is malformed.
      if ((flags & 6) === 6) return new MalformedPacketError('PUBLISH with QoS 3', 'MQTT-3.3.1-4');
      // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
      if ((flags & 0x0e) === 0x08) return new MalformedPacketError('PUBLISH QoS 0 with DUP set', 'MQTT-3.3.1-2');
      return undefined;
    case PacketType.PUBREL:
    case PacketType.SUBSCRIBE:
    case PacketType.UNSUBSCRIBE:
      // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1] flags 0b0010. MQTT 3.1 also set DUP on resends.
      if (flags === 2 || (version === 3 && flags === 0x0a)) return undefined;
      return new MalformedPacketError(`invalid fixed header flags 0x${flags.toString(16)}`, type === PacketType.PUBREL ? 'MQTT-3.6.1-1' : type === PacketType.SUBSCRIBE ? 'MQTT-3.8.1-1' : 'MQTT-3.10.1-1');
    case PacketType.DISCONNECT:
      // [MQTT-3.14.1-1] (both versions) reserved bits are 0, otherwise a Malformed Packet.
      if (flags !== 0) return new MalformedPacketError(`invalid fixed header flags 0x${flags.toString(16)}`, 'MQTT-3.14.1-1');
      break;
    case PacketType.AUTH:
      // [MQTT-3.15.1-1] reserved bits are 0, otherwise malformed.
      if (flags !== 0) return new MalformedPacketError(`invalid fixed header flags 0x${flags.toString(16)}`, 'MQTT-3.15.1-1');
      break;
    default:
      // [MQTT-2.1.3-1] (3.1.1: [MQTT-2.2.2-2]) reserved flags are 0.
      if (flags !== 0) return new MalformedPacketError(`invalid fixed header flags 0x${flags.toString(16)}`, flagRule);
  }
  if ((type === PacketType.PINGREQ || type === PacketType.PINGRESP || (type === PacketType.DISCONNECT && version !== 5)) && remaining !== 0) {
    return new MalformedPacketError('packet must have Remaining Length 0');
  }
  return undefined;
}

/**
 * Incremental MQTT decoder. Accepts chunks of any size; returns one packet per read().
 * After an error the decoder is failed: every later read() returns the same error.
 */
export class Decoder {
  /** Protocol level used for non-CONNECT packets; when undefined, set by the first CONNECT decoded. */
  protocolVersion: ProtocolVersion | undefined;
  /** Largest accepted packet (fixed header included). Checked from the fixed header before buffering. */
  maximumPacketSize: number;
  #chunks: Buffer[] = [];
  #off = 0;
  #buffered = 0;
  #error: MqttProtocolError | undefined = undefined;

  constructor(options: DecoderOptions = {}) {
    this.protocolVersion = options.protocolVersion;
    this.maximumPacketSize = options.maximumPacketSize ?? MAX_PACKET_SIZE;
  }

  /** Bytes pushed but not yet consumed by read(). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Appends bytes (dropped once the decoder has failed). The decoder keeps a reference: do not modify the chunk afterwards. */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.#error !== undefined) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * Next packet; an MqttProtocolError (the decoder is failed afterwards, further reads return the
   * same error); or undefined when more bytes are needed. Never throws for bad input.
   */
  read(): Packet | MqttProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    if (this.#buffered < 2) return undefined;
    const first = this.#chunks[0]!;
    const off = this.#off;
    const flen = first.length;
    const b0 = first[off]!;
    let remaining = 0;
    let mult = 1;
    let n = 1;
    for (;;) {
      const idx = off + n;
      const byte = idx < flen ? first[idx]! : this.#peek(n);
      if (byte < 0) return undefined;
      remaining += (byte & 0x7f) * mult;
      if (byte < 0x80) {
        // [MQTT-1.5.5-1] minimal encoding. 3.1.1 states no such rule; a redundant byte is refused there too.
        if (byte === 0 && n > 1) {
          const rule = this.protocolVersion === 3 || this.protocolVersion === 4 ? undefined : 'MQTT-1.5.5-1';
          return this.#fail(new MalformedPacketError('Remaining Length is not minimally encoded', rule));
        }
        break;
      }
      // Section 2.1.4: at most 4 bytes.
      if (n === 4) return this.#fail(new MalformedPacketError('Remaining Length longer than 4 bytes'));
      mult *= 128;
      n++;
    }
    const type = b0 >> 4;
    const flags = b0 & 0x0f;
    const version = this.protocolVersion;
    const headerErr = headerError(type, flags, remaining, version);
    if (headerErr !== undefined) return this.#fail(headerErr);
    const total = 1 + n + remaining;
    if (total > this.maximumPacketSize) {
      return this.#fail(new PacketTooLargeError(`packet of ${total} bytes exceeds the maximum of ${this.maximumPacketSize}`));
    }
    if (this.#buffered < total) return undefined;
    let start: number;
    if (flen - off >= total) {
      // Whole packet inside one chunk: parse in place, payloads are subarrays of it.
      b = first as FastBuffer;
      start = off + 1 + n;
      if (flen - off === total) {
        this.#chunks.shift();
        this.#off = 0;
      } else {
        this.#off = off + total;
      }
    } else {
      b = this.#gather(1 + n, remaining) as FastBuffer;
      start = 0;
    }
    this.#buffered -= total;
    p = start;
    end = start + remaining;
    ver = version ?? 4;
    try {
      const packet = parseBody(type, flags);
      if (packet.type === 'connect' && this.protocolVersion === undefined) this.protocolVersion = packet.protocolVersion;
      return packet;
    } catch (err) {
      if (err instanceof MqttProtocolError) return this.#fail(err);
      throw err;
    } finally {
      b = EMPTY;
    }
  }

  #fail(err: MqttProtocolError): MqttProtocolError {
    this.#error = err;
    this.#chunks = [];
    this.#buffered = 0;
    this.#off = 0;
    return err;
  }

  /** Byte at logical offset i from the read position, or -1 if not buffered yet. */
  #peek(i: number): number {
    let k = this.#off + i;
    for (const c of this.#chunks) {
      if (k < c.length) return c[k]!;
      k -= c.length;
    }
    return -1;
  }

  /** Skips `skip` bytes, then copies the next `len` bytes (known to be buffered) into a new buffer. */
  #gather(skip: number, len: number): Buffer {
    const out = Buffer.allocUnsafe(len);
    const chunks = this.#chunks;
    let filled = 0;
    let toSkip = skip;
    let off = this.#off;
    let i = 0;
    // Walk the chunks with an index and drop the consumed ones in one splice (shift() per chunk is quadratic).
    while (filled < len || toSkip > 0) {
      const c = chunks[i]!;
      let avail = c.length - off;
      if (toSkip > 0) {
        const s = Math.min(toSkip, avail);
        toSkip -= s;
        off += s;
        avail -= s;
      }
      const take = Math.min(len - filled, avail);
      if (take > 0) {
        c.copy(out, filled, off, off + take);
        filled += take;
        off += take;
      }
      if (off === c.length) {
        i++;
        off = 0;
      }
    }
    chunks.splice(0, i);
    this.#off = off;
    return out;
  }
}
