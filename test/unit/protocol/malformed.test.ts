/**
 * One row per malformed or rule-breaking input: the decoder must report exactly this error class and
 * reason code, report it the same way when fed byte by byte, and stay failed afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Decoder,
  MalformedPacketError,
  MqttProtocolError,
  PacketTooLargeError,
  ProtocolError,
  TopicAliasInvalidError,
  TopicNameInvalidError,
  UnsupportedProtocolVersionError,
  type ProtocolVersion,
} from '../../../src/protocol/index.js';
import { hex } from './fixtures.js';

type ErrorClass = new (...args: never[]) => MqttProtocolError;
interface Case {
  name: string;
  /** Decoder protocol version; 'server' = undefined (learned from CONNECT). */
  v: ProtocolVersion | 'server';
  bytes: string;
  error: ErrorClass;
  reason: number;
  maximumPacketSize?: number;
}

const M = MalformedPacketError;
const P = ProtocolError;
// 'MQTT' protocol name + level, as CONNECT variable header prefix.
const MQTT4 = '0004 4d515454 04';
const MQTT5 = '0004 4d515454 05';

const cases: Case[] = [
  // ---- fixed header ----
  { name: 'reserved packet type 0 is malformed', v: 4, bytes: '00 00', error: M, reason: 0x81 },
  { name: 'packet type 15 (AUTH) before MQTT 5 is malformed (v3.1.1)', v: 4, bytes: 'f0 00', error: M, reason: 0x81 },
  { name: 'packet type 15 (AUTH) before MQTT 5 is malformed (v3.1)', v: 3, bytes: 'f0 00', error: M, reason: 0x81 },
  { name: '[MQTT-2.2.2-2] CONNACK with reserved flags set', v: 4, bytes: '21 02 00 00', error: M, reason: 0x81 },
  { name: '[MQTT-2.1.3-1] PUBACK with reserved flags set', v: 5, bytes: '41 02 00 01', error: M, reason: 0x81 },
  { name: '[MQTT-3.14.1-1] DISCONNECT with reserved flags set (v5)', v: 5, bytes: 'e2 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.14.1-1] DISCONNECT with reserved flags set (v3.1.1)', v: 4, bytes: 'e1 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.15.1-1] AUTH with reserved flags set', v: 5, bytes: 'f1 00', error: M, reason: 0x81 },
  { name: '[MQTT-2.2.2-2] PINGREQ with reserved flags set', v: 4, bytes: 'c1 00', error: M, reason: 0x81 },
  { name: '[MQTT-2.1.3-1] CONNECT with reserved flags set', v: 'server', bytes: `11 0c ${MQTT4} 02 003c 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.6.1-1] PUBREL flags must be 0010', v: 4, bytes: '60 02 00 01', error: M, reason: 0x81 },
  { name: '[MQTT-3.6.1-1] PUBREL with DUP is malformed in v3.1.1', v: 4, bytes: '6a 02 00 01', error: M, reason: 0x81 },
  { name: '[MQTT-3.8.1-1] SUBSCRIBE flags must be 0010', v: 4, bytes: '80 06 0001 0001 61 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0010', v: 5, bytes: 'a0 06 0001 00 0001 61', error: M, reason: 0x81 },
  { name: 'Remaining Length of 5 bytes is malformed', v: 4, bytes: '30 ff ff ff ff 01', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.5-1] Remaining Length not minimally encoded', v: 5, bytes: 'c0 80 00', error: M, reason: 0x81 },
  { name: 'v3.1.1 Remaining Length not minimally encoded is refused too (3.1.1 numbers no rule)', v: 4, bytes: '30 83 00 0001 61 00', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.5-1] property length not minimally encoded', v: 5, bytes: '30 05 0001 61 8000', error: M, reason: 0x81 },
  { name: 'PINGREQ with Remaining Length 1', v: 4, bytes: 'c0 01 00', error: M, reason: 0x81 },
  { name: 'PINGRESP with Remaining Length 2', v: 5, bytes: 'd0 02 00 00', error: M, reason: 0x81 },
  { name: 'v3.1.1 DISCONNECT with Remaining Length 1', v: 4, bytes: 'e0 01 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.1.0-1] first packet on a server is not CONNECT', v: 'server', bytes: 'c0 00', error: P, reason: 0x82 },
  { name: 'packet above maximumPacketSize is refused from the fixed header alone', v: 4, bytes: '30 64', error: PacketTooLargeError, reason: 0x95, maximumPacketSize: 10 },
  { name: 'packet above maximumPacketSize (4-byte length) is refused before buffering', v: 5, bytes: '30 ff ff ff 7f', error: PacketTooLargeError, reason: 0x95, maximumPacketSize: 1 << 20 },
  { name: 'Remaining Length longer than the content (leftover bytes)', v: 4, bytes: '40 03 0001 00', error: M, reason: 0x81 },
  { name: 'Remaining Length shorter than the content (string overruns)', v: 4, bytes: '30 03 0005 61', error: M, reason: 0x81 },
  { name: 'PUBREC too short for its packet identifier', v: 4, bytes: '50 01 00', error: M, reason: 0x81 },

  // ---- PUBLISH ----
  { name: '[MQTT-3.3.1-4] QoS 3 in PUBLISH is malformed', v: 4, bytes: '36 05 0001 61 0001', error: M, reason: 0x81 },
  { name: '[MQTT-3.3.1-4] QoS 3 in PUBLISH is malformed (v5)', v: 5, bytes: '36 06 0001 61 0001 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH is malformed', v: 4, bytes: '38 03 0001 61', error: M, reason: 0x81 },
  { name: '[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH is malformed (v5)', v: 5, bytes: '38 04 0001 61 00', error: M, reason: 0x81 },
  { name: '[MQTT-2.3.1-1] PUBLISH QoS 1 with packet identifier 0 (v3.1.1)', v: 4, bytes: '32 05 0001 61 0000', error: P, reason: 0x82 },
  { name: '[MQTT-2.2.1-3] PUBLISH QoS 2 with packet identifier 0 (v5)', v: 5, bytes: '34 06 0001 61 0000 00', error: P, reason: 0x82 },
  { name: '[MQTT-3.3.2-2] PUBLISH Topic Name with # is malformed in v3.1.1', v: 4, bytes: '30 05 0003 612f23', error: M, reason: 0x81 },
  { name: '[MQTT-3.3.2-2] PUBLISH Topic Name with + is Topic Name invalid in v5', v: 5, bytes: '30 06 0003 612f2b 00', error: TopicNameInvalidError, reason: 0x90 },
  { name: '[MQTT-3.3.2-2] PUBLISH Topic Name with a non-ASCII char and # (v5)', v: 5, bytes: '30 07 0004 c3bc 2f23 00', error: TopicNameInvalidError, reason: 0x90 },
  { name: '[MQTT-4.7.3-1] empty PUBLISH Topic Name in v3.1.1', v: 4, bytes: '30 02 0000', error: M, reason: 0x81 },
  { name: '[MQTT-4.7.3-1] empty PUBLISH Topic Name in v3.1', v: 3, bytes: '30 03 0000 78', error: M, reason: 0x81 },
  { name: 'empty PUBLISH Topic Name without Topic Alias in v5 is a Protocol Error', v: 5, bytes: '30 03 0000 00', error: P, reason: 0x82 },
  { name: '[MQTT-3.3.2-8] Topic Alias 0 is Topic Alias invalid', v: 5, bytes: '30 06 0000 03 230000', error: TopicAliasInvalidError, reason: 0x94 },
  { name: '[MQTT-1.5.3-1] invalid UTF-8 byte 0xFF in Topic Name (v3.1.1)', v: 4, bytes: '30 04 0002 61ff', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-2] U+0000 in Topic Name (v3.1.1)', v: 4, bytes: '30 04 0002 6100', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] UTF-8 encoded surrogate U+DFFF in Topic Name (v3.1.1)', v: 4, bytes: '30 05 0003 edbfbf', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] overlong UTF-8 encoding in Topic Name (v3.1.1)', v: 4, bytes: '30 04 0002 c0af', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] truncated UTF-8 sequence in Topic Name (v3.1.1)', v: 4, bytes: '30 04 0002 61e2', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] code point above U+10FFFF in Topic Name (v3.1.1)', v: 4, bytes: '30 06 0004 f4908080', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] overlong 3-byte encoding of "/" in Topic Name (v3.1)', v: 3, bytes: '30 05 0003 e080af', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] UTF-8 encoded surrogate U+D800 in Topic Name', v: 5, bytes: '30 06 0003 eda080 00', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] overlong 2-byte encoding of U+0000 in Topic Name (v5)', v: 5, bytes: '30 05 0002 c080 00', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] overlong 4-byte encoding in Topic Name (v5)', v: 5, bytes: '30 07 0004 f08fbfbf 00', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-2] U+0000 in Topic Name (v5)', v: 5, bytes: '30 05 0002 6100 00', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] lone continuation byte in a User Property name', v: 5, bytes: '30 0b 0001 61 07 26 00018a 000176', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-2] U+0000 in a User Property value', v: 5, bytes: '30 0b 0001 61 07 26 00016b 000100', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] surrogate in Content Type', v: 5, bytes: '30 0a 0001 61 06 03 0003eda080', error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-2] U+0000 in a PUBACK Reason String', v: 5, bytes: '40 08 0001 80 04 1f 000100', error: M, reason: 0x81 },
  { name: 'PUBLISH property length exceeds the packet', v: 5, bytes: '30 05 0001 61 05 01', error: M, reason: 0x81 },
  { name: 'unknown property identifier 0x7F is malformed', v: 5, bytes: '30 06 0001 61 02 7f00', error: M, reason: 0x81 },
  { name: 'property identifier encoded on two bytes is unknown, malformed', v: 5, bytes: '30 07 0001 61 03 810001', error: M, reason: 0x81 },
  { name: 'Session Expiry Interval is not allowed in PUBLISH', v: 5, bytes: '30 09 0001 61 05 1100000001', error: M, reason: 0x81 },
  { name: 'Payload Format Indicator included twice is a Protocol Error', v: 5, bytes: '30 08 0001 61 04 0100 0100', error: P, reason: 0x82 },
  { name: 'Payload Format Indicator 2 is a Protocol Error', v: 5, bytes: '30 06 0001 61 02 0102', error: P, reason: 0x82 },
  { name: 'Subscription Identifier 0 in PUBLISH is a Protocol Error', v: 5, bytes: '30 06 0001 61 02 0b00', error: P, reason: 0x82 },
  { name: 'Subscription Identifier with 5 VBI bytes is malformed', v: 5, bytes: '30 0a 0001 61 06 0bffffffff01', error: M, reason: 0x81 },
  { name: '[MQTT-3.3.2-14] Response Topic with a wildcard', v: 5, bytes: '30 0a 0001 61 06 080003612f23', error: P, reason: 0x82 },
  { name: '[MQTT-3.3.2-14] Will Properties Response Topic with a wildcard', v: 'server', bytes: `10 17 ${MQTT5} 06 003c 00 0000 04 0800012b 0001 61 0000`, error: P, reason: 0x82 },
  { name: 'Correlation Data length beyond the property section', v: 5, bytes: '30 07 0001 61 03 09000a', error: M, reason: 0x81 },
  { name: 'User Property pair missing its value', v: 5, bytes: '30 09 0001 61 05 2600016b00', error: M, reason: 0x81 },
  { name: 'Topic Alias included twice is a Protocol Error', v: 5, bytes: '30 09 0000 06 230001 230002', error: P, reason: 0x82 },

  // ---- CONNECT ----
  { name: '[MQTT-3.1.2-1] unknown protocol name', v: 'server', bytes: '10 0c 0004 4d515458 04 02 003c 0000', error: P, reason: 0x82 },
  { name: '[MQTT-3.1.2-2] protocol MQTT with unsupported level 6', v: 'server', bytes: '10 0c 0004 4d515454 06 02 003c 0000', error: UnsupportedProtocolVersionError, reason: 0x84 },
  { name: '[MQTT-3.1.2-2] protocol MQTT with level 3 (that level is MQIsdp)', v: 'server', bytes: '10 0c 0004 4d515454 03 02 003c 0000', error: UnsupportedProtocolVersionError, reason: 0x84 },
  { name: '[MQTT-3.1.2-2] protocol MQIsdp with level 4', v: 'server', bytes: '10 0e 0006 4d5149736470 04 02 003c 0000', error: UnsupportedProtocolVersionError, reason: 0x84 },
  { name: '[MQTT-3.1.2-3] CONNECT reserved flag set', v: 'server', bytes: `10 0c ${MQTT4} 03 003c 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-14] Will QoS 3 (v3.1.1)', v: 'server', bytes: `10 0c ${MQTT4} 1e 003c 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-12] Will QoS 3 (v5)', v: 'server', bytes: `10 0d ${MQTT5} 1e 003c 00 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-11] Will QoS without Will Flag (v5)', v: 'server', bytes: `10 0d ${MQTT5} 0a 003c 00 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-13] Will QoS without Will Flag (v3.1.1)', v: 'server', bytes: `10 0c ${MQTT4} 12 003c 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-15] Will Retain without Will Flag (v3.1.1)', v: 'server', bytes: `10 0c ${MQTT4} 22 003c 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-13] Will Retain without Will Flag (v5)', v: 'server', bytes: `10 0d ${MQTT5} 22 003c 00 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-22] v3.1.1 Password Flag without User Name Flag', v: 'server', bytes: `10 0f ${MQTT4} 42 003c 0000 0001 70`, error: P, reason: 0x82 },
  { name: 'CONNECT with a trailing byte after the payload', v: 'server', bytes: `10 0d ${MQTT4} 02 003c 0000 ff`, error: M, reason: 0x81 },
  { name: 'CONNECT missing the Client Identifier', v: 'server', bytes: `10 0a ${MQTT4} 02 003c`, error: M, reason: 0x81 },
  { name: '[MQTT-4.7.0-1] CONNECT Will Topic with a wildcard is Topic Name invalid (v5)', v: 'server', bytes: `10 15 ${MQTT5} 06 003c 00 0000 00 0003 612f23 0000`, error: TopicNameInvalidError, reason: 0x90 },
  { name: '[MQTT-4.7.3-1] CONNECT empty Will Topic is malformed (v3.1.1)', v: 'server', bytes: `10 10 ${MQTT4} 06 003c 0000 0000 0000`, error: M, reason: 0x81 },
  { name: 'Request Problem Information 2 is a Protocol Error', v: 'server', bytes: `10 0f ${MQTT5} 02 003c 02 1702 0000`, error: P, reason: 0x82 },
  { name: 'Request Response Information 2 is a Protocol Error', v: 'server', bytes: `10 0f ${MQTT5} 02 003c 02 1902 0000`, error: P, reason: 0x82 },
  { name: 'Receive Maximum 0 is a Protocol Error', v: 'server', bytes: `10 10 ${MQTT5} 02 003c 03 210000 0000`, error: P, reason: 0x82 },
  { name: 'Maximum Packet Size 0 is a Protocol Error', v: 'server', bytes: `10 12 ${MQTT5} 02 003c 05 2700000000 0000`, error: P, reason: 0x82 },
  { name: 'Session Expiry Interval twice is a Protocol Error', v: 'server', bytes: `10 17 ${MQTT5} 02 003c 0a 1100000001 1100000002 0000`, error: P, reason: 0x82 },
  { name: 'Authentication Data without Authentication Method is a Protocol Error', v: 'server', bytes: `10 11 ${MQTT5} 02 003c 04 16000141 0000`, error: P, reason: 0x82 },
  { name: 'Topic Alias is not allowed in CONNECT', v: 'server', bytes: `10 10 ${MQTT5} 02 003c 03 230001 0000`, error: M, reason: 0x81 },
  { name: 'Session Expiry Interval is not allowed in Will Properties', v: 'server', bytes: `10 18 ${MQTT5} 06 003c 00 0000 05 1100000001 0001 61 0000`, error: M, reason: 0x81 },
  { name: 'Will Delay Interval is not allowed in CONNECT properties', v: 'server', bytes: `10 12 ${MQTT5} 02 003c 05 1800000001 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-2] U+0000 in the Client Identifier (v3.1.1)', v: 'server', bytes: `10 0d ${MQTT4} 02 003c 0001 00`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-2] U+0000 in the Client Identifier (v5)', v: 'server', bytes: `10 0e ${MQTT5} 02 003c 00 0001 00`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] surrogate in the User Name (v5)', v: 'server', bytes: `10 13 ${MQTT5} 82 003c 00 0001 63 0003 eda080`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] invalid UTF-8 in the User Name (v3.1.1)', v: 'server', bytes: `10 11 ${MQTT4} 82 003c 0001 63 0002 ff61`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-2] U+0000 in the Will Topic (v3.1.1)', v: 'server', bytes: `10 13 ${MQTT4} 06 003c 0001 63 0002 6100 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.4-1] overlong encoding in the Will Topic (v5)', v: 'server', bytes: `10 15 ${MQTT5} 06 003c 00 0001 63 00 0002 c0af 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-1.5.3-1] invalid UTF-8 in the Protocol Name', v: 'server', bytes: '10 0c 0004 4d51ff54 04 02 003c 0000', error: M, reason: 0x81 },
  { name: '[MQTT-4.7.0-1] CONNECT Will Topic with + is Topic Name invalid (v5)', v: 'server', bytes: `10 15 ${MQTT5} 06 003c 00 0000 00 0003 612f2b 0000`, error: TopicNameInvalidError, reason: 0x90 },
  { name: '[MQTT-4.7.1-1] CONNECT Will Topic with # is malformed (v3.1.1)', v: 'server', bytes: `10 13 ${MQTT4} 06 003c 0000 0003 612f23 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-4.7.3-1] CONNECT empty Will Topic is Topic Name invalid (v5)', v: 'server', bytes: `10 12 ${MQTT5} 06 003c 00 0000 00 0000 0000`, error: TopicNameInvalidError, reason: 0x90 },
  { name: 'Will Payload Format Indicator 2 is a Protocol Error', v: 'server', bytes: `10 15 ${MQTT5} 06 003c 00 0000 02 0102 0001 61 0000`, error: P, reason: 0x82 },
  { name: 'Topic Alias Maximum twice is a Protocol Error', v: 'server', bytes: `10 13 ${MQTT5} 02 003c 06 220001 220002 0000`, error: P, reason: 0x82 },
  { name: 'Subscription Identifier is not allowed in CONNECT', v: 'server', bytes: `10 0f ${MQTT5} 02 003c 02 0b01 0000`, error: M, reason: 0x81 },
  { name: 'unknown property identifier 0x00 in CONNECT is malformed', v: 'server', bytes: `10 0f ${MQTT5} 02 003c 02 0000 0000`, error: M, reason: 0x81 },
  { name: '[MQTT-3.1.2-2] protocol MQIsdp with level 5', v: 'server', bytes: '10 0e 0006 4d5149736470 05 02 003c 0000', error: UnsupportedProtocolVersionError, reason: 0x84 },
  { name: '[MQTT-3.1.2-1] protocol name "mqtt" (wrong case)', v: 'server', bytes: '10 0c 0004 6d717474 04 02 003c 0000', error: P, reason: 0x82 },

  // ---- CONNACK ----
  { name: '[MQTT-3.2.2-1] v5 CONNACK reserved acknowledge flags', v: 5, bytes: '20 03 02 00 00', error: M, reason: 0x81 },
  { name: 'v3.1.1 CONNACK reserved acknowledge flags', v: 4, bytes: '20 02 02 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.2.2-6] v5 CONNACK refusal with Session Present', v: 5, bytes: '20 03 01 87 00', error: P, reason: 0x82 },
  { name: '[MQTT-3.2.2-4] v3.1.1 CONNACK refusal with Session Present', v: 4, bytes: '20 02 01 05', error: P, reason: 0x82 },
  { name: 'v3.1.1 CONNACK return code 6 is reserved', v: 4, bytes: '20 02 00 06', error: P, reason: 0x82 },
  { name: 'v3.1.1 CONNACK with Remaining Length 3', v: 4, bytes: '20 03 00 00 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.2.2-8] v5 CONNACK reason code 0x10 is not a CONNACK reason code', v: 5, bytes: '20 03 00 10 00', error: P, reason: 0x82 },
  { name: 'Maximum QoS 2 is a Protocol Error', v: 5, bytes: '20 05 00 00 02 2402', error: P, reason: 0x82 },
  { name: 'Retain Available 2 is a Protocol Error', v: 5, bytes: '20 05 00 00 02 2502', error: P, reason: 0x82 },
  { name: 'Wildcard Subscription Available 3 is a Protocol Error', v: 5, bytes: '20 05 00 00 02 2803', error: P, reason: 0x82 },
  { name: 'Shared Subscription Available 2 is a Protocol Error', v: 5, bytes: '20 05 00 00 02 2a02', error: P, reason: 0x82 },
  { name: 'Receive Maximum 0 in CONNACK is a Protocol Error', v: 5, bytes: '20 06 00 00 03 210000', error: P, reason: 0x82 },
  { name: 'Maximum Packet Size 0 in CONNACK is a Protocol Error', v: 5, bytes: '20 08 00 00 05 2700000000', error: P, reason: 0x82 },
  { name: 'Subscription Identifiers Available 2 is a Protocol Error', v: 5, bytes: '20 05 00 00 02 2902', error: P, reason: 0x82 },
  { name: 'Assigned Client Identifier twice is a Protocol Error', v: 5, bytes: '20 0b 00 00 08 12000161 12000162', error: P, reason: 0x82 },
  { name: 'Will Delay Interval is not allowed in CONNACK', v: 5, bytes: '20 08 00 00 05 1800000001', error: M, reason: 0x81 },

  // ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK ----
  { name: '[MQTT-3.8.3-3] SUBSCRIBE without subscriptions (v3.1.1)', v: 4, bytes: '82 02 0001', error: P, reason: 0x82 },
  { name: '[MQTT-3.8.3-2] SUBSCRIBE without subscriptions (v5)', v: 5, bytes: '82 03 0001 00', error: P, reason: 0x82 },
  { name: '[MQTT-3-8.3-4] v3.1.1 requested QoS 3 is malformed', v: 4, bytes: '82 06 0001 0001 61 03', error: M, reason: 0x81 },
  { name: '[MQTT-3-8.3-4] v3.1.1 reserved bits in requested QoS byte', v: 4, bytes: '82 06 0001 0001 61 04', error: M, reason: 0x81 },
  { name: '[MQTT-3.8.3-5] v5 reserved subscription option bits 6-7', v: 5, bytes: '82 07 0001 00 0001 61 40', error: M, reason: 0x81 },
  { name: 'v5 Retain Handling 3 is a Protocol Error', v: 5, bytes: '82 07 0001 00 0001 61 30', error: P, reason: 0x82 },
  { name: 'v5 subscription Maximum QoS 3 is a Protocol Error', v: 5, bytes: '82 07 0001 00 0001 61 03', error: P, reason: 0x82 },
  { name: 'two Subscription Identifiers in SUBSCRIBE are a Protocol Error', v: 5, bytes: '82 0b 0001 04 0b01 0b02 0001 61 00', error: P, reason: 0x82 },
  { name: 'Subscription Identifier 0 in SUBSCRIBE is a Protocol Error', v: 5, bytes: '82 09 0001 02 0b00 0001 61 00', error: P, reason: 0x82 },
  { name: '[MQTT-2.3.1-1] SUBSCRIBE with packet identifier 0', v: 4, bytes: '82 06 0000 0001 61 00', error: P, reason: 0x82 },
  { name: 'SUBSCRIBE topic filter without its options byte', v: 4, bytes: '82 05 0001 0001 61', error: M, reason: 0x81 },
  { name: 'Payload Format Indicator is not allowed in SUBSCRIBE', v: 5, bytes: '82 09 0001 02 0101 0001 61 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters (v3.1.1)', v: 4, bytes: 'a2 02 0001', error: P, reason: 0x82 },
  { name: '[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters (v5)', v: 5, bytes: 'a2 03 0001 00', error: P, reason: 0x82 },
  { name: '[MQTT-2.3.1-1] UNSUBSCRIBE with packet identifier 0', v: 4, bytes: 'a2 05 0000 0001 61', error: P, reason: 0x82 },
  { name: '[MQTT-3.9.3-2] v3.1.1 SUBACK return code 3', v: 4, bytes: '90 03 0001 03', error: P, reason: 0x82 },
  { name: 'v3.1.1 SUBACK without return codes', v: 4, bytes: '90 02 0001', error: P, reason: 0x82 },
  { name: '[MQTT-3.9.3-2] v5 SUBACK reason code 0x05 is not a SUBACK reason code', v: 5, bytes: '90 04 0001 00 05', error: P, reason: 0x82 },
  { name: 'v3.1.1 UNSUBACK with a payload byte', v: 4, bytes: 'b0 03 0001 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.11.3-2] v5 UNSUBACK reason code 0x01 is not an UNSUBACK reason code', v: 5, bytes: 'b0 04 0001 00 01', error: P, reason: 0x82 },
  { name: 'v5 UNSUBACK without reason codes', v: 5, bytes: 'b0 03 0001 00', error: P, reason: 0x82 },

  // ---- PUBACK / PUBREC / PUBREL / PUBCOMP ----
  { name: '[MQTT-3.4.2-1] v5 PUBACK reason code 0x04 is not a PUBACK reason code',
    v: 5, bytes: '40 03 0001 04', error: P, reason: 0x82 },
  { name: '[MQTT-3.5.2-1] v5 PUBREC reason code 0x92 is not a PUBREC reason code', v: 5, bytes: '50 03 0001 92', error: P, reason: 0x82 },
  { name: '[MQTT-3.4.2-1] v5 PUBACK reason code 0x04 with a property section', v: 5, bytes: '40 07 0001 04 03 1f0000', error: P, reason: 0x82 },
  { name: '[MQTT-3.6.2-1] v5 PUBREL reason code 0x10 is not a PUBREL reason code', v: 5, bytes: '62 03 0001 10', error: P, reason: 0x82 },
  { name: '[MQTT-3.7.2-1] v5 PUBCOMP reason code 0x80 is not a PUBCOMP reason code', v: 5, bytes: '70 03 0001 80', error: P, reason: 0x82 },
  { name: 'Topic Alias is not allowed in PUBACK', v: 5, bytes: '40 07 0001 00 03 230001', error: M, reason: 0x81 },
  { name: 'Reason String twice in PUBREC is a Protocol Error', v: 5, bytes: '50 0c 0001 80 08 1f000161 1f000162', error: P, reason: 0x82 },
  { name: 'v3.1.1 PUBCOMP with packet identifier 0 is a Protocol Error (3.1.1 numbers no rule)', v: 4, bytes: '70 02 0000', error: P, reason: 0x82 },
  { name: '[MQTT-2.3.1-6] v3.1.1 PUBACK with packet identifier 0', v: 4, bytes: '40 02 0000', error: P, reason: 0x82 },
  { name: '[MQTT-2.3.1-7] v3.1.1 SUBACK with packet identifier 0', v: 4, bytes: '90 03 0000 00', error: P, reason: 0x82 },
  { name: '[MQTT-2.2.1-5] PUBACK with packet identifier 0 (v5)', v: 5, bytes: '40 02 0000', error: P, reason: 0x82 },
  { name: '[MQTT-2.2.1-5] PUBREL with packet identifier 0 (v5)', v: 5, bytes: '62 03 0000 00', error: P, reason: 0x82 },
  { name: '[MQTT-2.2.1-6] UNSUBACK with packet identifier 0 (v5)', v: 5, bytes: 'b0 04 0000 00 00', error: P, reason: 0x82 },
  { name: '[MQTT-2.2.1-3] SUBSCRIBE with packet identifier 0 (v5)', v: 5, bytes: '82 07 0000 00 0001 61 00', error: P, reason: 0x82 },
  { name: 'v3.1.1 PUBREL with a reason code byte', v: 4, bytes: '62 03 0001 00', error: M, reason: 0x81 },

  // ---- DISCONNECT / AUTH ----
  { name: '[MQTT-3.14.2-1] v5 DISCONNECT reason code 0x05 is not a DISCONNECT reason code', v: 5, bytes: 'e0 01 05', error: P, reason: 0x82 },
  { name: 'Topic Alias is not allowed in DISCONNECT', v: 5, bytes: 'e0 05 00 03 230001', error: M, reason: 0x81 },
  { name: 'AUTH with Remaining Length 1 is malformed', v: 5, bytes: 'f0 01 00', error: M, reason: 0x81 },
  { name: '[MQTT-3.15.2-1] AUTH reason code 0x01 is not an AUTH reason code', v: 5, bytes: 'f0 02 01 00', error: P, reason: 0x82 },
  { name: 'AUTH with Authentication Data but no Authentication Method', v: 5, bytes: 'f0 06 18 04 16000141', error: P, reason: 0x82 },
  { name: 'Server Keep Alive is not allowed in AUTH', v: 5, bytes: 'f0 05 18 03 130001', error: M, reason: 0x81 },
  { name: 'AUTH Continue authentication without Authentication Method is a Protocol Error', v: 5, bytes: 'f0 02 18 00', error: P, reason: 0x82 },
  { name: 'AUTH with a property section but no Authentication Method is a Protocol Error', v: 5, bytes: 'f0 06 19 04 1f000178', error: P, reason: 0x82 },
  { name: 'AUTH Success with a Reason String but no Authentication Method is a Protocol Error', v: 5, bytes: 'f0 06 00 04 1f000178', error: P, reason: 0x82 },
  { name: 'Authentication Method twice in AUTH is a Protocol Error', v: 5, bytes: 'f0 0a 18 08 15000161 15000162', error: P, reason: 0x82 },
  { name: 'Session Expiry Interval twice in DISCONNECT is a Protocol Error', v: 5, bytes: 'e0 0c 00 0a 1100000001 1100000002', error: P, reason: 0x82 },
  { name: 'DISCONNECT property length beyond the packet is malformed', v: 5, bytes: 'e0 02 00 05', error: M, reason: 0x81 },
];

function decoderFor(c: Case): Decoder {
  const options = c.maximumPacketSize === undefined ? {} : { maximumPacketSize: c.maximumPacketSize };
  return new Decoder(c.v === 'server' ? options : { ...options, protocolVersion: c.v });
}

test('the malformed table has at least 60 distinct cases', () => {
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
});

for (const c of cases) {
  test(c.name, () => {
    const bytes = hex(c.bytes);
    const d = decoderFor(c);
    d.push(bytes);
    const err = d.read();
    assert.ok(err instanceof MqttProtocolError, `expected an error, got ${JSON.stringify(err)}`);
    assert.equal(err.constructor, c.error, `${err.name}: ${err.message}`);
    assert.equal(err.reasonCode, c.reason);
    assert.match(err.code, /^MQTT_ERR_/);
    // A rule named in the test title is the rule the decoder reports, so the case fails for the stated reason.
    const rule = /^\[(MQTT-[\d.-]+)\]/.exec(c.name)?.[1];
    if (rule !== undefined) assert.equal(err.rule, rule, err.message);
    // Failed for good: the same error again, whatever arrives next.
    d.push(hex('c0 00'));
    assert.equal(d.read(), err);
    assert.equal(d.bufferedBytes, 0);

    // The same verdict when the bytes trickle in one at a time.
    const slow = decoderFor(c);
    let result: ReturnType<Decoder['read']>;
    for (const byte of bytes) {
      slow.push(Buffer.from([byte]));
      result = slow.read();
      if (result !== undefined) break;
    }
    assert.ok(result! instanceof MqttProtocolError);
    assert.equal(result.constructor, c.error);
  });
}

test('a declared size above the limit is refused before the body arrives', () => {
  const d = new Decoder({ protocolVersion: 4, maximumPacketSize: 1024 });
  d.push(hex('30 ff ff 03'));
  const err = d.read();
  assert.ok(err instanceof PacketTooLargeError);
  assert.equal(d.bufferedBytes, 0);
});

test('a packet exactly at maximumPacketSize is accepted', () => {
  const d = new Decoder({ protocolVersion: 4, maximumPacketSize: 7 });
  d.push(hex('30 05 0001 61 6869'));
  const p = d.read();
  assert.ok(p !== undefined && !(p instanceof Error));
  const d2 = new Decoder({ protocolVersion: 4, maximumPacketSize: 6 });
  d2.push(hex('30 05 0001 61 6869'));
  assert.ok(d2.read() instanceof PacketTooLargeError);
});

test('an incomplete packet is not an error: read() waits for more bytes', () => {
  const d = new Decoder({ protocolVersion: 4 });
  d.push(hex('32 05 0001'));
  assert.equal(d.read(), undefined);
  assert.equal(d.bufferedBytes, 4);
  d.push(hex('61 0001'));
  const p = d.read();
  assert.ok(p !== undefined && !(p instanceof Error) && p.type === 'publish');
});

test('MQTT 3.1 tolerates DUP on PUBREL, SUBSCRIBE and UNSUBSCRIBE resends', () => {
  const d = new Decoder({ protocolVersion: 3 });
  d.push(hex('6a 02 0001  8a 06 0001 0001 61 00  aa 05 0001 0001 61'));
  assert.deepEqual(d.read(), { type: 'pubrel', packetId: 1 });
  assert.equal((d.read() as { type: string }).type, 'subscribe');
  assert.equal((d.read() as { type: string }).type, 'unsubscribe');
});
