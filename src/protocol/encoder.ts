/**
 * MQTT encoder: computes the exact packet length first (validating the packet object), then writes
 * into one Buffer.allocUnsafe. Invalid packet objects throw InvalidPacketError: they are caller bugs.
 *
 * Fields that only exist in MQTT 5.0 (properties, ack/DISCONNECT reason codes, v5 subscription
 * options) are not representable in 3.1/3.1.1 and are ignored when encoding for those versions.
 */
import { MAX_VARIABLE_BYTE_INTEGER, ReasonCodeRules, ReasonCodesByPacket, type ProtocolVersion } from './constants.js';
import { InvalidPacketError } from './errors.js';
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.js';
import { CONTEXT_MASK, propertyByName, PropertyType, type PropertyDefinition } from './properties.js';
import { utf8CheckedLength, type FastBuffer } from './utf8.js';

type AckPacket = Extract<Packet, { type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' }>;

function invalid(message: string, rule?: string): InvalidPacketError {
  return new InvalidPacketError(message, rule);
}

function reasonTable(codes: readonly number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of codes) t[c] = 1;
  return t;
}
const REASONS = {
  connack: reasonTable(ReasonCodesByPacket.connack),
  puback: reasonTable(ReasonCodesByPacket.puback),
  pubrec: reasonTable(ReasonCodesByPacket.pubrec),
  pubrel: reasonTable(ReasonCodesByPacket.pubrel),
  pubcomp: reasonTable(ReasonCodesByPacket.pubcomp),
  suback: reasonTable(ReasonCodesByPacket.suback),
  unsuback: reasonTable(ReasonCodesByPacket.unsuback),
  disconnect: reasonTable(ReasonCodesByPacket.disconnect),
  auth: reasonTable(ReasonCodesByPacket.auth),
} as const;

function checkReason(table: Uint8Array, rc: number, where: string): number {
  if (!Number.isInteger(rc) || table[rc] !== 1) throw invalid(`reason code ${String(rc)} is not valid in ${where}`, ReasonCodeRules[where]);
  return rc;
}

function vbiLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

/** Version being encoded: picks the 3.1.1 or 5.0 number of a rule. Set by checkedRemaining. */
let encVer: ProtocolVersion = 4;

/** UTF-8 length of an MQTT string field (2-byte prefix not included); throws if not encodable. */
function strLength(s: unknown, what: string): number {
  if (typeof s !== 'string') throw invalid(`${what} must be a string`);
  const n = utf8CheckedLength(s);
  if (n === -1) {
    // [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2]) no U+0000; [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1]) no lone surrogate.
    if (s.includes('\u0000')) throw invalid(`${what} contains U+0000`, encVer === 5 ? 'MQTT-1.5.4-2' : 'MQTT-1.5.3-2');
    throw invalid(`${what} contains a lone surrogate`, encVer === 5 ? 'MQTT-1.5.4-1' : 'MQTT-1.5.3-1');
  }
  if (n > 0xffff) throw invalid(`${what} is longer than 65,535 bytes`);
  return n;
}

function binLength(v: unknown, what: string): number {
  if (!(v instanceof Uint8Array)) throw invalid(`${what} must be a Buffer`);
  if (v.length > 0xffff) throw invalid(`${what} is longer than 65,535 bytes`);
  return v.length;
}

function checkInt(v: unknown, max: number, what: string, min = 0, rule?: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`${what} must be an integer in ${min}..${max}`, rule);
  return v;
}

/**
 * A non-zero 16-bit packet identifier: SUBSCRIBE, UNSUBSCRIBE and PUBLISH [MQTT-2.2.1-3] [MQTT-2.2.1-4]
 * (3.1.1: [MQTT-2.3.1-1]); acknowledgements repeat the acknowledged packet's identifier [MQTT-2.2.1-5]
 * [MQTT-2.2.1-6] (3.1.1: [MQTT-2.3.1-6] for PUBACK, PUBREC, PUBREL; [MQTT-2.3.1-7] for SUBACK, UNSUBACK).
 */
function checkPacketId(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffff) return v;
  const v5 = encVer === 5;
  let rule: string | undefined;
  switch (what) {
    case 'PUBLISH':
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE':
      rule = v5 ? 'MQTT-2.2.1-3' : 'MQTT-2.3.1-1';
      break;
    case 'SUBACK':
    case 'UNSUBACK':
      rule = v5 ? 'MQTT-2.2.1-6' : 'MQTT-2.3.1-7';
      break;
    default:
      rule = v5 ? 'MQTT-2.2.1-5' : what === 'PUBCOMP' ? undefined : 'MQTT-2.3.1-6';
  }
  throw invalid(`${what} packetId must be an integer in 1..65535`, rule);
}

function valueLength(def: PropertyDefinition, v: unknown): number {
  const what = `property ${def.name}`;
  switch (def.type) {
    case PropertyType.Byte:
      checkInt(v, def.max ?? 0xff, what, def.min ?? 0);
      return 1;
    case PropertyType.TwoByteInteger:
      // [MQTT-3.3.2-8] for Topic Alias 0.
      checkInt(v, def.max ?? 0xffff, what, def.min ?? 0, def.rangeRule);
      return 2;
    case PropertyType.FourByteInteger:
      checkInt(v, def.max ?? 0xffff_ffff, what, def.min ?? 0);
      return 4;
    case PropertyType.VariableByteInteger:
      return vbiLength(checkInt(v, def.max ?? MAX_VARIABLE_BYTE_INTEGER, what, def.min ?? 0));
    case PropertyType.Utf8String:
      return 2 + strLength(v, what);
    case PropertyType.BinaryData:
      return 2 + binLength(v, what);
    case PropertyType.Utf8StringPair: {
      if (!Array.isArray(v) || v.length !== 2) throw invalid(`${what} entries must be [name, value] pairs`);
      return 4 + strLength(v[0], what) + strLength(v[1], what);
    }
  }
}

/** Length of a property section's contents (without its VBI length prefix). */
function propsLength(props: Properties | undefined, mask: number, where: string): number {
  if (props === undefined) return 0;
  let len = 0;
  const record = props as Record<string, unknown>;
  for (const key in record) {
    const value = record[key];
    if (value === undefined) continue;
    const def = propertyByName(key);
    if (def === undefined) throw invalid(`unknown property ${key}`);
    if ((def.mask & mask) === 0) throw invalid(`property ${key} is not allowed in ${where}`);
    if (def.repeatable) {
      if (!Array.isArray(value)) throw invalid(`property ${key} must be an array`);
      if (key === 'subscriptionIdentifiers' && where === 'SUBSCRIBE' && value.length > 1) {
        throw invalid('SUBSCRIBE carries at most one Subscription Identifier');
      }
      for (const item of value) len += 1 + valueLength(def, item);
    } else {
      len += 1 + valueLength(def, value);
    }
  }
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    throw invalid('Authentication Data without Authentication Method');
  }
  return len;
}

// ---- write phase: module cursor (encoding is synchronous) ----
let out: FastBuffer = Buffer.alloc(0) as FastBuffer;
let o = 0;

function wVbi(n: number): void {
  while (n >= 0x80) {
    out[o++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[o++] = n;
}

function w16(n: number): void {
  out[o++] = n >>> 8;
  out[o++] = n & 0xff;
}

function w32(n: number): void {
  out[o++] = n >>> 24;
  out[o++] = (n >>> 16) & 0xff;
  out[o++] = (n >>> 8) & 0xff;
  out[o++] = n & 0xff;
}

function wStr(s: string): void {
  const at = o;
  const n = s.length;
  o += 2;
  let ascii = n < 48;
  if (ascii) {
    // Short strings: a JS loop beats the call into utf8Write.
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      out[o + i] = c;
    }
  }
  const written = ascii ? n : out.utf8Write(s, o);
  out[at] = written >>> 8;
  out[at + 1] = written & 0xff;
  o += written;
}

function wBin(v: Uint8Array): void {
  w16(v.length);
  wBytes(v);
}

function wBytes(v: Uint8Array): void {
  const n = v.length;
  if (n < 64) {
    for (let i = 0; i < n; i++) out[o + i] = v[i]!;
  } else {
    out.set(v, o);
  }
  o += n;
}

function wValue(def: PropertyDefinition, v: unknown): void {
  out[o++] = def.id;
  switch (def.type) {
    case PropertyType.Byte:
      out[o++] = v as number;
      return;
    case PropertyType.TwoByteInteger:
      w16(v as number);
      return;
    case PropertyType.FourByteInteger:
      w32(v as number);
      return;
    case PropertyType.VariableByteInteger:
      wVbi(v as number);
      return;
    case PropertyType.Utf8String:
      wStr(v as string);
      return;
    case PropertyType.BinaryData:
      wBin(v as Uint8Array);
      return;
    case PropertyType.Utf8StringPair: {
      const pair = v as [string, string];
      wStr(pair[0]);
      wStr(pair[1]);
      return;
    }
  }
}

/** Writes a property section whose content length `len` was computed by propsLength. */
function wProps(props: Properties | undefined, len: number): void {
  wVbi(len);
  if (len === 0 || props === undefined) return;
  const record = props as Record<string, unknown>;
  for (const key in record) {
    const value = record[key];
    if (value === undefined) continue;
    const def = propertyByName(key)!;
    if (def.repeatable) for (const item of value as unknown[]) wValue(def, item);
    else wValue(def, value);
  }
}

// ---- size phase: returns Remaining Length; stashes property lengths for the write phase ----
let sProps = 0;
let sWillProps = 0;

function checkVersion(v: unknown): ProtocolVersion {
  if (v !== 3 && v !== 4 && v !== 5) throw invalid(`protocol version must be 3, 4 or 5, not ${String(v)}`);
  return v;
}

function connectRemaining(pk: ConnectPacket, version: ProtocolVersion): number {
  const v = checkVersion(pk.protocolVersion);
  if (v !== version) throw invalid(`CONNECT protocolVersion ${v} differs from the encoding version ${version}`);
  const expectedName = v === 3 ? 'MQIsdp' : 'MQTT';
  if (pk.protocolName !== expectedName) throw invalid(`protocol level ${v} needs protocol name ${expectedName}`, 'MQTT-3.1.2-1');
  checkInt(pk.keepAlive, 0xffff, 'keepAlive');
  let len = 2 + expectedName.length + 4 + 2 + strLength(pk.clientId, 'clientId');
  if (v === 5) {
    sProps = propsLength(pk.properties, CONTEXT_MASK.connect, 'CONNECT');
    len += vbiLength(sProps) + sProps;
  }
  const will = pk.will;
  if (will !== undefined) {
    const q = will.qos;
    // [MQTT-3.1.2-12] (3.1.1: [MQTT-3.1.2-14]) Will QoS is 0, 1 or 2.
    if (q !== 0 && q !== 1 && q !== 2) throw invalid(`will qos ${String(q)}`, v === 5 ? 'MQTT-3.1.2-12' : 'MQTT-3.1.2-14');
    const topicLen = strLength(will.topic, 'will topic');
    // [MQTT-4.7.3-1] a Topic Name has at least one character; [MQTT-4.7.0-1] (3.1.1: [MQTT-4.7.1-1]) no wildcards.
    if (topicLen === 0) throw invalid('will topic must not be empty', 'MQTT-4.7.3-1');
    if (/[+#]/.test(will.topic)) throw invalid('will topic must not contain wildcards', v === 5 ? 'MQTT-4.7.0-1' : 'MQTT-4.7.1-1');
    len += 2 + topicLen + 2 + binLength(will.payload, 'will payload');
    if (v === 5) {
      sWillProps = propsLength(will.properties, CONTEXT_MASK.will, 'Will Properties');
      len += vbiLength(sWillProps) + sWillProps;
    }
  }
  if (pk.username !== undefined) len += 2 + strLength(pk.username, 'username');
  if (pk.password !== undefined) {
    // [MQTT-3.1.2-22] v3.1.1: a password needs a user name.
    if (v !== 5 && pk.username === undefined) throw invalid('password without username', 'MQTT-3.1.2-22');
    len += 2 + binLength(pk.password, 'password');
  }
  return len;
}

function publishRemaining(pk: PublishPacket, v: ProtocolVersion): number {
  const qos = pk.qos;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw invalid(`PUBLISH qos ${String(qos)}`, 'MQTT-3.3.1-4');
  const topicLen = topicNameLength(pk.topic);
  let len = 2 + topicLen + binLength0(pk.payload);
  if (qos !== 0) {
    checkPacketId(pk.packetId, 'PUBLISH');
    len += 2;
  } else {
    // [MQTT-2.2.1-2] (3.1.1: [MQTT-2.3.1-5]) no Packet Identifier at QoS 0.
    if (pk.packetId !== undefined) throw invalid('QoS 0 PUBLISH must not have a packetId', v === 5 ? 'MQTT-2.2.1-2' : 'MQTT-2.3.1-5');
    // [MQTT-3.3.1-2] DUP is 0 for QoS 0.
    if (pk.dup) throw invalid('QoS 0 PUBLISH with dup', 'MQTT-3.3.1-2');
  }
  if (v === 5) {
    sProps = propsLength(pk.properties, CONTEXT_MASK.publish, 'PUBLISH');
    len += vbiLength(sProps) + sProps;
    // Section 3.3.2.1: a zero-length Topic Name without a Topic Alias is a Protocol Error.
    if (topicLen === 0 && pk.properties?.topicAlias === undefined) throw invalid('empty topic without Topic Alias');
  } else if (topicLen === 0) {
    throw invalid('empty topic', 'MQTT-4.7.3-1');
  }
  return len;
}

/** UTF-8 length of a PUBLISH Topic Name, validated in one pass: ASCII fast path, no wildcards. */
function topicNameLength(t: unknown): number {
  if (typeof t !== 'string') throw invalid('topic must be a string');
  const n = t.length;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    // [MQTT-3.3.2-2] no wildcards in a Topic Name.
    if (c === 0x2b || c === 0x23) throw invalid('topic contains wildcards', 'MQTT-3.3.2-2');
    if (c >= 0x80 || c === 0) {
      const len = strLength(t, 'topic');
      for (let j = i + 1; j < n; j++) {
        const d = t.charCodeAt(j);
        if (d === 0x2b || d === 0x23) throw invalid('topic contains wildcards', 'MQTT-3.3.2-2');
      }
      return len;
    }
  }
  if (n > 0xffff) throw invalid('topic is longer than 65,535 bytes');
  return n;
}

function binLength0(v: unknown): number {
  if (!(v instanceof Uint8Array)) throw invalid('payload must be a Buffer');
  return v.length;
}

function ackRemaining(pk: AckPacket, v: ProtocolVersion): number {
  checkPacketId(pk.packetId, pk.type.toUpperCase());
  if (v !== 5) return 2;
  const rc = checkReason(REASONS[pk.type], pk.reasonCode ?? 0, pk.type.toUpperCase());
  sProps = propsLength(pk.properties, CONTEXT_MASK[pk.type], pk.type.toUpperCase());
  // Shortest form: Success without properties is 2 bytes, a reason code alone 3 (section 3.4.2.1).
  if (sProps === 0) return rc === 0 ? 2 : 3;
  return 3 + vbiLength(sProps) + sProps;
}

function subscribeRemaining(pk: SubscribePacket, v: ProtocolVersion): number {
  checkPacketId(pk.packetId, 'SUBSCRIBE');
  const subs = pk.subscriptions;
  // [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]) at least one subscription.
  if (!Array.isArray(subs) || subs.length === 0) throw invalid('SUBSCRIBE needs at least one subscription', v === 5 ? 'MQTT-3.8.3-2' : 'MQTT-3.8.3-3');
  let len = 2;
  if (v === 5) {
    sProps = propsLength(pk.properties, CONTEXT_MASK.subscribe, 'SUBSCRIBE');
    len += vbiLength(sProps) + sProps;
  }
  for (const s of subs) {
    checkInt(s.qos, 2, 'subscription qos');
    if (v === 5) checkInt(s.retainHandling, 2, 'retainHandling');
    len += 3 + strLength(s.topicFilter, 'topicFilter');
  }
  return len;
}

function subackRemaining(pk: SubackPacket, v: ProtocolVersion): number {
  checkPacketId(pk.packetId, 'SUBACK');
  const codes = pk.reasonCodes;
  if (!Array.isArray(codes) || codes.length === 0) throw invalid('SUBACK needs at least one reason code');
  for (const rc of codes) {
    // [MQTT-3.9.3-2] (3.1.1) return codes are 0x00, 0x01, 0x02 or 0x80.
    if (v === 5) checkReason(REASONS.suback, rc, 'SUBACK');
    else if (rc !== 0 && rc !== 1 && rc !== 2 && rc !== 0x80) throw invalid(`SUBACK return code ${rc}`, 'MQTT-3.9.3-2');
  }
  let len = 2 + codes.length;
  if (v === 5) {
    sProps = propsLength(pk.properties, CONTEXT_MASK.suback, 'SUBACK');
    len += vbiLength(sProps) + sProps;
  }
  return len;
}

function unsubscribeRemaining(pk: UnsubscribePacket, v: ProtocolVersion): number {
  checkPacketId(pk.packetId, 'UNSUBSCRIBE');
  const filters = pk.topicFilters;
  // [MQTT-3.10.3-2] at least one Topic Filter.
  if (!Array.isArray(filters) || filters.length === 0) throw invalid('UNSUBSCRIBE needs at least one topic filter', 'MQTT-3.10.3-2');
  let len = 2;
  if (v === 5) {
    sProps = propsLength(pk.properties, CONTEXT_MASK.unsubscribe, 'UNSUBSCRIBE');
    len += vbiLength(sProps) + sProps;
  }
  for (const f of filters) len += 2 + strLength(f, 'topicFilter');
  return len;
}

function unsubackRemaining(pk: UnsubackPacket, v: ProtocolVersion): number {
  checkPacketId(pk.packetId, 'UNSUBACK');
  if (v !== 5) return 2;
  const codes = pk.reasonCodes;
  if (!Array.isArray(codes) || codes.length === 0) throw invalid('v5 UNSUBACK needs at least one reason code');
  for (const rc of codes) checkReason(REASONS.unsuback, rc, 'UNSUBACK');
  sProps = propsLength(pk.properties, CONTEXT_MASK.unsuback, 'UNSUBACK');
  return 2 + vbiLength(sProps) + sProps + codes.length;
}

function connackRemaining(pk: ConnackPacket, v: ProtocolVersion): number {
  // [MQTT-3.2.2-6] (3.1.1: [MQTT-3.2.2-4]) a refusal has Session Present 0.
  if (pk.sessionPresent && pk.reasonCode !== 0 && v !== 3) throw invalid('Session Present with a failure reason code', v === 5 ? 'MQTT-3.2.2-6' : 'MQTT-3.2.2-4');
  if (v !== 5) {
    checkInt(pk.reasonCode, 5, 'CONNACK return code');
    return 2;
  }
  checkReason(REASONS.connack, pk.reasonCode, 'CONNACK');
  sProps = propsLength(pk.properties, CONTEXT_MASK.connack, 'CONNACK');
  return 2 + vbiLength(sProps) + sProps;
}

function disconnectRemaining(pk: DisconnectPacket, v: ProtocolVersion): number {
  if (v !== 5) return 0;
  const rc = checkReason(REASONS.disconnect, pk.reasonCode ?? 0, 'DISCONNECT');
  sProps = propsLength(pk.properties, CONTEXT_MASK.disconnect, 'DISCONNECT');
  if (sProps === 0) return rc === 0 ? 0 : 1;
  return 1 + vbiLength(sProps) + sProps;
}

function authRemaining(pk: AuthPacket, v: ProtocolVersion): number {
  if (v !== 5) throw invalid('AUTH exists only in MQTT 5.0');
  const rc = checkReason(REASONS.auth, pk.reasonCode, 'AUTH');
  sProps = propsLength(pk.properties, CONTEXT_MASK.auth, 'AUTH');
  if (sProps === 0 && rc === 0) return 0;
  // Section 3.15.2.2.2: omitting the Authentication Method is a Protocol Error (bar the Remaining Length 0 form).
  if (pk.properties?.authenticationMethod === undefined) throw invalid('AUTH without Authentication Method');
  return 1 + vbiLength(sProps) + sProps;
}

function remainingLength(pk: Packet, v: ProtocolVersion): number {
  sProps = 0;
  sWillProps = 0;
  switch (pk.type) {
    case 'publish':
      return publishRemaining(pk, v);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return ackRemaining(pk, v);
    case 'connect':
      return connectRemaining(pk, v);
    case 'connack':
      return connackRemaining(pk, v);
    case 'subscribe':
      return subscribeRemaining(pk, v);
    case 'suback':
      return subackRemaining(pk, v);
    case 'unsubscribe':
      return unsubscribeRemaining(pk, v);
    case 'unsuback':
      return unsubackRemaining(pk, v);
    case 'pingreq':
    case 'pingresp':
      return 0;
    case 'disconnect':
      return disconnectRemaining(pk, v);
    case 'auth':
      return authRemaining(pk, v);
    default: {
      const unknown: never = pk;
      throw invalid(`unknown packet type ${String((unknown as { type: unknown }).type)}`);
    }
  }
}

function checkedRemaining(pk: Packet, v: ProtocolVersion): number {
  if (pk === null || typeof pk !== 'object') throw invalid('packet must be an object');
  encVer = checkVersion(v);
  const rem = remainingLength(pk, v);
  if (rem > MAX_VARIABLE_BYTE_INTEGER) throw invalid(`packet too large: Remaining Length ${rem}`);
  return rem;
}

/** Total encoded size in bytes (fixed header included), e.g. for Maximum Packet Size checks. Validates like encode. */
export function encodedLength(packet: Packet, protocolVersion: ProtocolVersion): number {
  const rem = checkedRemaining(packet, protocolVersion);
  return 1 + vbiLength(rem) + rem;
}

// Small packets are cut from a shared slab, like Buffer.allocUnsafe's pool but larger: a fresh
// ArrayBuffer per 8 KiB pool dominated the cost of encoding 1 KiB PUBLISH packets.
const SLAB_SIZE = 64 * 1024;
const SLAB_MAX_PACKET = 8 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabOffset = 0;

function allocate(size: number): FastBuffer {
  if (size > SLAB_MAX_PACKET) return Buffer.allocUnsafe(size) as FastBuffer;
  if (slabOffset + size > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabOffset = 0;
  }
  const buf = slab.subarray(slabOffset, slabOffset + size) as FastBuffer;
  // Keep slices 8-byte aligned, as Node's pool does.
  slabOffset = (slabOffset + size + 7) & ~7;
  return buf;
}

const FIXED: Readonly<Record<Exclude<Packet['type'], 'publish'>, number>> = {
  connect: 0x10,
  connack: 0x20,
  puback: 0x40,
  pubrec: 0x50,
  pubrel: 0x62,
  pubcomp: 0x70,
  subscribe: 0x82,
  suback: 0x90,
  unsubscribe: 0xa2,
  unsuback: 0xb0,
  pingreq: 0xc0,
  pingresp: 0xd0,
  disconnect: 0xe0,
  auth: 0xf0,
};

/**
 * Serialises `packet` for `protocolVersion` in its shortest correct form. Throws InvalidPacketError
 * when the packet object breaks the spec. Packets up to 8 KiB are slices of a shared 64 KiB slab
 * (as with Buffer.allocUnsafe's pool): copy one before keeping it for long.
 */
export function encode(packet: Packet, protocolVersion: ProtocolVersion): Buffer {
  const v = protocolVersion;
  const rem = checkedRemaining(packet, v);
  const buf = allocate(1 + vbiLength(rem) + rem);
  out = buf;
  o = 1;
  wVbi(rem);
  const pk = packet;
  switch (pk.type) {
    case 'publish': {
      buf[0] = 0x30 | (pk.dup ? 8 : 0) | (pk.qos << 1) | (pk.retain ? 1 : 0);
      wStr(pk.topic);
      if (pk.qos !== 0) w16(pk.packetId!);
      if (v === 5) wProps(pk.properties, sProps);
      wBytes(pk.payload);
      break;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      buf[0] = FIXED[pk.type];
      w16(pk.packetId);
      if (rem > 2) {
        out[o++] = pk.reasonCode ?? 0;
        if (rem > 3) wProps(pk.properties, sProps);
      }
      break;
    }
    case 'connect':
      buf[0] = 0x10;
      writeConnect(pk, v);
      break;
    case 'connack':
      buf[0] = 0x20;
      // MQTT 3.1 has no Session Present flag (the byte is unused).
      out[o++] = v !== 3 && pk.sessionPresent ? 1 : 0;
      out[o++] = pk.reasonCode;
      if (v === 5) wProps(pk.properties, sProps);
      break;
    case 'subscribe':
      buf[0] = 0x82;
      w16(pk.packetId);
      if (v === 5) wProps(pk.properties, sProps);
      for (const s of pk.subscriptions) {
        wStr(s.topicFilter);
        out[o++] = v === 5 ? s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | (s.retainHandling << 4) : s.qos;
      }
      break;
    case 'suback':
      buf[0] = 0x90;
      w16(pk.packetId);
      if (v === 5) wProps(pk.properties, sProps);
      for (const rc of pk.reasonCodes) out[o++] = rc;
      break;
    case 'unsubscribe':
      buf[0] = 0xa2;
      w16(pk.packetId);
      if (v === 5) wProps(pk.properties, sProps);
      for (const f of pk.topicFilters) wStr(f);
      break;
    case 'unsuback':
      buf[0] = 0xb0;
      w16(pk.packetId);
      if (v === 5) {
        wProps(pk.properties, sProps);
        for (const rc of pk.reasonCodes) out[o++] = rc;
      }
      break;
    case 'pingreq':
    case 'pingresp':
      buf[0] = FIXED[pk.type];
      break;
    case 'disconnect':
    case 'auth':
      buf[0] = FIXED[pk.type];
      if (rem > 0) {
        out[o++] = pk.reasonCode ?? 0;
        if (rem > 1) wProps(pk.properties, sProps);
      }
      break;
  }
  out = EMPTY_OUT;
  if (o !== buf.length) throw new Error(`encoder length mismatch: wrote ${o} of ${buf.length}`);
  return buf;
}
const EMPTY_OUT = out;

function writeConnect(pk: ConnectPacket, v: ProtocolVersion): void {
  wStr(pk.protocolName);
  out[o++] = v;
  const will = pk.will;
  let flags = pk.cleanStart ? 0x02 : 0;
  if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (pk.password !== undefined) flags |= 0x40;
  if (pk.username !== undefined) flags |= 0x80;
  out[o++] = flags;
  w16(pk.keepAlive);
  if (v === 5) wProps(pk.properties, sProps);
  wStr(pk.clientId);
  if (will !== undefined) {
    if (v === 5) wProps(will.properties, sWillProps);
    wStr(will.topic);
    wBin(will.payload);
  }
  if (pk.username !== undefined) wStr(pk.username);
  if (pk.password !== undefined) wBin(pk.password);
}
