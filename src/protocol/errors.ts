import { ReasonCode } from './constants.js';

/** Base of every error telemq raises about MQTT. `code` is stable; match on it, never on the message. */
export class MqttError extends Error {
  readonly code: `MQTT_ERR_${string}`;
  /** The v5 reason code the spec mandates for this condition. */
  readonly reasonCode: number;
  /** The normative statement broken, e.g. 'MQTT-3.3.1-4', when there is one. */
  readonly rule: string | undefined;

  constructor(code: `MQTT_ERR_${string}`, reasonCode: number, message: string, rule?: string) {
    super(rule === undefined ? message : `${message} [${rule}]`);
    this.name = new.target.name;
    this.code = code;
    this.reasonCode = reasonCode;
    this.rule = rule;
  }
}

/** Everything the decoder can report: the stream is unusable after one of these. */
export class MqttProtocolError extends MqttError {}

/** Reason code 0x81: the bytes do not form a valid packet. */
export class MalformedPacketError extends MqttProtocolError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_MALFORMED_PACKET', ReasonCode.MalformedPacket, message, rule);
  }
}

/** Reason code 0x82: a well-formed packet that breaks a protocol rule. */
export class ProtocolError extends MqttProtocolError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_PROTOCOL_ERROR', ReasonCode.ProtocolError, message, rule);
  }
}

/** Reason code 0x95: the packet exceeds the maximum packet size. */
export class PacketTooLargeError extends MqttProtocolError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_PACKET_TOO_LARGE', ReasonCode.PacketTooLarge, message, rule);
  }
}

/** Reason code 0x84 (v3 return code 0x01): CONNECT names a protocol level the server does not speak. */
export class UnsupportedProtocolVersionError extends MqttProtocolError {
  readonly protocolVersion: number;
  readonly protocolName: string;
  constructor(protocolName: string, protocolVersion: number, rule?: string) {
    super(
      'MQTT_ERR_UNSUPPORTED_PROTOCOL_VERSION',
      ReasonCode.UnsupportedProtocolVersion,
      `unsupported protocol ${JSON.stringify(protocolName)} level ${protocolVersion}`,
      rule,
    );
    this.protocolVersion = protocolVersion;
    this.protocolName = protocolName;
  }
}

/** Reason code 0x90: a topic name that is not valid (wildcards, empty without alias, bad UTF-8). */
export class TopicNameInvalidError extends MqttProtocolError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_TOPIC_NAME_INVALID', ReasonCode.TopicNameInvalid, message, rule);
  }
}

/** Reason code 0x87. */
export class NotAuthorizedError extends MqttError {
  constructor(message: string) {
    super('MQTT_ERR_NOT_AUTHORIZED', ReasonCode.NotAuthorized, message);
  }
}

/** Reason code 0x94: a PUBLISH carries Topic Alias 0 (or one above the negotiated maximum). */
export class TopicAliasInvalidError extends MqttProtocolError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_TOPIC_ALIAS_INVALID', ReasonCode.TopicAliasInvalid, message, rule);
  }
}

/**
 * Thrown by `encode` when asked to serialise a packet object that breaks the spec (e.g. QoS 1 without
 * packetId). Always a bug in the calling code, never caused by a peer. Reason code 0x83.
 */
export class InvalidPacketError extends MqttError {
  constructor(message: string, rule?: string) {
    super('MQTT_ERR_INVALID_PACKET', ReasonCode.ImplementationSpecificError, message, rule);
  }
}
