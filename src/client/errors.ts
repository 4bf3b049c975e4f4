import { MqttError } from '../protocol/errors.js';
import { ConnectReturnCode, ReasonCode } from '../protocol/constants.js';

const v5Names: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x92: 'packet identifier not found',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

// MQTT 3.1/3.1.1 CONNACK return codes, kept apart from v5: 0x04 means different things in each.
const v3Names: Record<number, string> = {
  [ConnectReturnCode.UnacceptableProtocolVersion]: 'unacceptable protocol version',
  [ConnectReturnCode.IdentifierRejected]: 'identifier rejected',
  [ConnectReturnCode.ServerUnavailable]: 'server unavailable',
  [ConnectReturnCode.BadUsernameOrPassword]: 'bad user name or password',
  [ConnectReturnCode.NotAuthorized]: 'not authorized',
};
const v3ToV5: Record<number, number> = {
  [ConnectReturnCode.UnacceptableProtocolVersion]: ReasonCode.UnsupportedProtocolVersion,
  [ConnectReturnCode.IdentifierRejected]: ReasonCode.ClientIdentifierNotValid,
  [ConnectReturnCode.ServerUnavailable]: ReasonCode.ServerUnavailable,
  [ConnectReturnCode.BadUsernameOrPassword]: ReasonCode.BadUserNameOrPassword,
  [ConnectReturnCode.NotAuthorized]: ReasonCode.NotAuthorized,
};

const hex = (n: number): string => '0x' + n.toString(16).padStart(2, '0');

/** Human name of a v5 reason code, e.g. 0x87 -> 'not authorized'. */
export function reasonName(code: number): string {
  return v5Names[code] ?? `reason code ${hex(code)}`;
}

/** The broker refused the connection. `returnCode` is the raw CONNACK code (v3 return code or v5 reason code). */
export class ConnectionRefusedError extends MqttError {
  readonly returnCode: number;
  readonly protocolVersion: number;
  readonly reasonString: string | undefined;
  constructor(returnCode: number, protocolVersion: number, reasonString?: string) {
    const v5 = protocolVersion === 5;
    const name = v5 ? reasonName(returnCode) : (v3Names[returnCode] ?? `return code ${hex(returnCode)}`);
    const extra = reasonString === undefined ? '' : `: ${reasonString}`;
    super(
      'MQTT_ERR_CONNECTION_REFUSED',
      v5 ? returnCode : (v3ToV5[returnCode] ?? ReasonCode.UnspecifiedError),
      `Connection refused: ${name} (CONNACK ${hex(returnCode)})${extra}`,
    );
    this.returnCode = returnCode;
    this.protocolVersion = protocolVersion;
    this.reasonString = reasonString;
  }
}

/** A PUBLISH, SUBSCRIBE or UNSUBSCRIBE the broker answered with a failure reason code (v5, >= 0x80). */
export class ReasonCodeError extends MqttError {
  readonly packet: string;
  constructor(packet: string, reasonCode: number, reasonString?: string) {
    const extra = reasonString === undefined ? '' : `: ${reasonString}`;
    super('MQTT_ERR_REFUSED', reasonCode, `${packet} refused: ${reasonName(reasonCode)} (${hex(reasonCode)})${extra}`);
    this.packet = packet;
  }
}

/** The connection closed (or the client ended) before the operation completed. */
export class ConnectionClosedError extends MqttError {
  constructor(message = 'connection closed') {
    super('MQTT_ERR_CONNECTION_CLOSED', ReasonCode.UnspecifiedError, message);
  }
}

/** The broker sent DISCONNECT (v5); reasonCode is the broker's. */
export class ServerDisconnectError extends MqttError {
  constructor(reasonCode: number, reasonString?: string) {
    const extra = reasonString === undefined ? '' : `: ${reasonString}`;
    super('MQTT_ERR_SERVER_DISCONNECT', reasonCode, `broker disconnected: ${reasonName(reasonCode)} (${hex(reasonCode)})${extra}`);
  }
}

/** Bad argument to a client method: the message never reaches the wire. */
export class ClientUsageError extends MqttError {
  constructor(code: `MQTT_ERR_${string}`, reasonCode: number, message: string, rule?: string) {
    super(code, reasonCode, message, rule);
  }
}

/** The application's onAuth handler threw, rejected or returned something other than a Buffer or Uint8Array; the client disconnected with 0x83. */
export class AuthHandlerError extends MqttError {
  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('MQTT_ERR_AUTH_HANDLER', ReasonCode.ImplementationSpecificError, `enhanced authentication failed in onAuth: ${detail}`);
    this.cause = cause;
  }
}
