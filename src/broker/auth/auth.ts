/**
 * Authentication and authorization hooks. The defaults allow everything; a password file and ACLs (a later issue)
 * implement these same interfaces. Hooks may be sync or async and may throw: the broker turns a throw into a
 * refusal with a reason code and a log line.
 */
import type { Properties, ProtocolVersion, QoS } from '../../protocol/index.js';

export interface ConnectRequest {
  clientId: string;
  username?: string;
  password?: Buffer;
  protocolVersion: ProtocolVersion;
  remoteAddress?: string;
  /** Peer certificate of a TLS connection, when the listener requests one. */
  certificate?: unknown;
  /** Name of the listener the client came through. */
  listener: string;
}

/**
 * Result of an authentication. `reasonCode` is a v5 reason code (0x86 Bad User Name or Password, 0x87 Not
 * Authorized, 0x8A Banned, ...); the broker maps it to the v3 return code for v3 clients.
 */
export type AuthResult = { ok: true } | { ok: false; reasonCode: number; reason?: string };

export interface Authenticator {
  authenticate(request: ConnectRequest): AuthResult | Promise<AuthResult>;
}

export interface PublishRequest {
  clientId: string;
  username: string | undefined;
  topic: string;
  qos: QoS;
  retain: boolean;
}

export interface SubscribeRequest {
  clientId: string;
  username: string | undefined;
  /** The filter as requested, including any `$share/group/` prefix. */
  topicFilter: string;
  qos: QoS;
}

export interface ReadRequest {
  clientId: string;
  username: string | undefined;
  /** Topic of the message about to be sent to the client. */
  topic: string;
}

/** Called on the hot path: keep these synchronous and cheap. */
export interface Authorizer {
  canPublish(request: PublishRequest): boolean;
  canSubscribe(request: SubscribeRequest): boolean;
  /**
   * Optional check of every message before it is sent to a client (live, queued, resent or retained), so that
   * rules changed after a subscription was granted (a reload, a resumed session) apply to what it receives. Leave
   * it out when subscribe-time checks suffice: the broker then does no per-message work at all.
   */
  canRead?(request: ReadRequest): boolean;
}

/** One step of v5 enhanced authentication (AUTH exchange). */
export interface AuthStep {
  method: string;
  data: Buffer | undefined;
  clientId: string;
  /** true for the step carried by CONNECT, false for AUTH packets that follow. */
  initial: boolean;
  /** true when the client asked to re-authenticate (AUTH 0x19) on an established connection. */
  reauthenticate: boolean;
}

/** 'continue' sends AUTH 0x18 with `data`; 'success' completes; 'failure' refuses with `reasonCode`. */
export type AuthStepResult =
  | { result: 'continue'; data?: Buffer; properties?: Properties }
  | { result: 'success'; data?: Buffer }
  | { result: 'failure'; reasonCode: number; reason?: string };

export interface EnhancedAuthenticator {
  /** Authentication methods this hook speaks; CONNECT with any other method gets 0x8C. */
  readonly methods: readonly string[];
  step(request: AuthStep): AuthStepResult | Promise<AuthStepResult>;
}

export const allowAllAuthenticator: Authenticator = {
  authenticate: () => ({ ok: true }),
};

export const allowAllAuthorizer: Authorizer = {
  canPublish: () => true,
  canSubscribe: () => true,
};
