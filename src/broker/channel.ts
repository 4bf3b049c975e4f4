/**
 * The per-connection MQTT state machine, sans I/O: packets (and timer/hook results) in, {@link Action}s out.
 * `connection.ts` executes the actions in order; a write to a durable store shows up as an `await` action ahead of
 * the acknowledgement that depends on it, so "acknowledge only after commit" holds by construction.
 *
 * Rule ids are MQTT 5.0's unless marked; they are the same in 3.1.1 where the text is the same.
 */
import {
  ConnectReturnCode,
  ReasonCode,
  SubackFailure,
  UnsupportedProtocolVersionError,
  isValidTopicFilter,
  isValidTopicName,
  parseSharedSubscription,
} from '../protocol/index.js';
import type {
  AuthPacket,
  ConnectPacket,
  DisconnectPacket,
  MqttProtocolError,
  Packet,
  Properties,
  ProtocolVersion,
  PubackPacket,
  PubcompPacket,
  PublishPacket,
  PubrecPacket,
  PubrelPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
  Will,
} from '../protocol/index.js';
import type { AuthResult, AuthStep, AuthStepResult, ConnectRequest } from './auth/auth.js';
import { forwardedProperties, type BrokerCore } from './core.js';
import type { StoredDelivery, StoredMessage, StoredOutgoing, StoredSubscription } from './persistence/store.js';
import { TokenBucket, topicLimitExceeded } from './limits.js';
import { SESSION_NEVER_EXPIRES, type Session, type SessionOwner } from './session.js';

export type ChannelState = 'awaitingConnect' | 'authenticating' | 'connected' | 'disconnecting' | 'closed';

/** What the connection must do, in order. */
export type Action =
  /** Encode and write `packet`. `message` is set on PUBLISH so the encoded bytes can be shared among subscribers. */
  | { type: 'send'; packet: Packet; message?: StoredMessage }
  /** Execute nothing after this until `promise` settles (a durable write the next action depends on). */
  | { type: 'await'; promise: Promise<void> }
  /** Run the Authenticator; feed the result to {@link Channel.handleAuthResult}. */
  | { type: 'authenticate'; request: ConnectRequest }
  /** Run the enhanced-auth hook; feed the result to {@link Channel.handleAuthStepResult}. */
  | { type: 'authStep'; step: AuthStep }
  /** (Re)arm the keep-alive timer: close when no packet arrives for `ms`; 0 disables it. */
  | { type: 'keepAlive'; ms: number }
  /** Flush what was sent, half-close, destroy after a short grace. `rule` names the broken normative statement. */
  | { type: 'close'; reason: string; rule?: string; error: boolean };

const NO_ACTIONS: readonly Action[] = Object.freeze([]);

/** Where the connection came from. */
export interface ChannelInfo {
  listener: string;
  remoteAddress?: string;
  certificate?: unknown;
}

/** v3 CONNACK return code for a v5 reason code of a refused connection. */
function v3ReturnCode(reasonCode: number): number {
  switch (reasonCode) {
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnectReturnCode.UnacceptableProtocolVersion;
    case ReasonCode.ClientIdentifierNotValid:
      return ConnectReturnCode.IdentifierRejected;
    case ReasonCode.BadUserNameOrPassword:
      return ConnectReturnCode.BadUsernameOrPassword;
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
    case ReasonCode.BadAuthenticationMethod:
      return ConnectReturnCode.NotAuthorized;
    default:
      return ConnectReturnCode.ServerUnavailable;
  }
}

let assignedIdCounter = 0;

export class Channel implements SessionOwner {
  state: ChannelState = 'awaitingConnect';
  /** Known after CONNECT; 4 until then (the CONNACK format used for an unsupported level). */
  protocolVersion: ProtocolVersion = 4;
  clientId = '';
  username: string | undefined = undefined;
  readonly info: ChannelInfo;

  readonly #core: BrokerCore;
  /** Output that is not a reply to an input (deliveries from other clients, takeover, shutdown). */
  readonly #sink: { push(action: Action): void; readonly outputHeld?: boolean };
  /** The current handle* call has emitted an 'await': what it emits after that is held. */
  #awaiting = false;
  /** Actions collected by the current handle* call; undefined outside one, and then output goes to #sink. */
  #out: Action[] | undefined = undefined;

  #session: Session | undefined = undefined;
  #connect: ConnectPacket | undefined = undefined;
  #will: Will | undefined = undefined;
  /** Set by DISCONNECT 0x00: the will is discarded [MQTT-3.14.4-3]. */
  #discardWill = false;
  #keepAlive = 0;
  // Limits the client announced (v5); defaults when absent.
  #clientReceiveMaximum = 65_535;
  #clientMaximumPacketSize: number | undefined = undefined;
  #clientTopicAliasMaximum = 0;
  #problemInformation = true;
  // Topic aliases: client -> broker, and broker -> client.
  #inAliases: Map<number, string> | undefined = undefined;
  #outAliases: Map<string, number> | undefined = undefined;
  #authMethod: string | undefined = undefined;
  /** Session Expiry Interval from CONNECT, before capping (DISCONNECT may not raise it from 0). */
  #requestedExpiry = 0;
  /** Counted by core.connectionsAvailable from the maximumConnections check until connected or closed. */
  #holdsPlace = false;
  /** Set only when `publishRate` is configured. */
  #publishBucket: TokenBucket | undefined = undefined;

  /** `sink` takes output not caused by a handle* call: a function, or an object with push (no closure needed). */
  constructor(
    core: BrokerCore,
    info: ChannelInfo,
    sink: ((action: Action) => void) | { push(action: Action): void; readonly outputHeld?: boolean },
  ) {
    this.#core = core;
    this.info = info;
    this.#sink = typeof sink === 'function' ? { push: sink } : sink;
  }

  get session(): Session | undefined {
    return this.#session;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Inputs

  /** One decoded packet from the client. */
  handleIn(packet: Packet, now: number): readonly Action[] {
    this.#begin();
    switch (this.state) {
      case 'awaitingConnect':
        if (packet.type === 'connect') this.#onConnect(packet);
        // [MQTT-3.1.0-1] the first packet from the client must be CONNECT; close without a reply otherwise.
        else this.#close(`${packet.type} before CONNECT`, 'MQTT-3.1.0-1');
        break;
      case 'authenticating':
        // The connection holds packets back while a hook runs, so only the AUTH exchange of enhanced
        // authentication (MQTT 5.0 section 4.12) can arrive in this state. [MQTT-3.1.2-30] the client may send AUTH
        // or DISCONNECT before CONNACK: a DISCONNECT abandons the connection (no CONNACK, no will: there is no
        // session yet); anything else is a protocol error.
        if (packet.type === 'auth' && this.#authMethod !== undefined) this.#onAuth(packet);
        else if (packet.type === 'disconnect' && this.#authMethod !== undefined) {
          this.#close(`client disconnected during authentication (0x${(packet.reasonCode ?? 0).toString(16).padStart(2, '0')})`, undefined);
        } else this.#protocolError(`${packet.type} during authentication`, undefined);
        break;
      case 'connected':
        this.#onConnected(packet, now);
        break;
      case 'disconnecting':
      case 'closed':
        // Input after we decided to close is ignored.
        break;
      default: {
        const _exhaustive: never = this.state;
        return _exhaustive;
      }
    }
    return this.#end();
  }

  /** The decoder rejected the byte stream; the connection is unusable. */
  handleDecodeError(err: MqttProtocolError, _now: number): readonly Action[] {
    this.#begin();
    if (this.state === 'awaitingConnect') {
      if (err instanceof UnsupportedProtocolVersionError) {
        // [MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01 (v3 format; a v5 server may send 0x84) then close.
        this.protocolVersion = 4;
        this.#emit({
          type: 'send',
          packet: { type: 'connack', sessionPresent: false, reasonCode: ConnectReturnCode.UnacceptableProtocolVersion },
        });
      }
      this.#close(err.message, err.rule ?? undefined, true);
    } else if (this.state === 'connected' || this.state === 'authenticating') {
      this.#protocolError(err.message, err.rule, err.reasonCode);
    }
    return this.#end();
  }

  /** Result of the 'authenticate' action. */
  handleAuthResult(result: AuthResult, now: number): readonly Action[] {
    this.#begin();
    if (this.state === 'authenticating') {
      if (result.ok) this.#accept(now);
      else this.#refuse(result.reasonCode, result.reason ?? 'not authorized');
    }
    return this.#end();
  }

  /** Result of the 'authStep' action (enhanced authentication, v5). */
  handleAuthStepResult(result: AuthStepResult, now: number): readonly Action[] {
    this.#begin();
    const method = this.#authMethod ?? '';
    if (this.state === 'authenticating') {
      switch (result.result) {
        case 'continue':
          this.#emit({ type: 'send', packet: this.#authPacket(ReasonCode.ContinueAuthentication, method, result.data) });
          break;
        case 'success':
          this.#accept(now, result.data);
          break;
        case 'failure':
          this.#refuse(result.reasonCode, result.reason ?? 'authentication failed');
          break;
      }
    } else if (this.state === 'connected') {
      switch (result.result) {
        case 'continue':
          this.#emit({ type: 'send', packet: this.#authPacket(ReasonCode.ContinueAuthentication, method, result.data) });
          break;
        case 'success':
          this.#emit({ type: 'send', packet: this.#authPacket(ReasonCode.Success, method, result.data) });
          break;
        case 'failure':
          // [MQTT-4.12.1-2] a failed re-authentication ends the connection with DISCONNECT.
          this.#disconnectWith(result.reasonCode, result.reason ?? 're-authentication failed', 'MQTT-4.12.1-2');
          break;
      }
    }
    return this.#end();
  }

  /** No packet arrived within 1.5 times the keep alive [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]). */
  handleKeepAliveTimeout(_now: number): readonly Action[] {
    this.#begin();
    if (this.state === 'connected') {
      this.#disconnectWith(ReasonCode.KeepAliveTimeout, 'keep alive timeout', 'MQTT-3.1.2-22');
    } else if (this.state !== 'closed') {
      this.#close('connect timeout', undefined, true);
    }
    return this.#end();
  }

  /**
   * The network connection is gone (any reason). Publishes or schedules the will unless DISCONNECT 0x00 came
   * [MQTT-3.1.2-8], and leaves the session to expire.
   */
  handleClosed(now: number): void {
    this.#releasePlace();
    if (this.state === 'closed') return;
    const wasAttached = this.#session !== undefined && this.#session.owner === this;
    this.state = 'closed';
    if (!wasAttached) return;
    const session = this.#session as Session;
    const will = this.#discardWill ? undefined : this.#will;
    this.#will = undefined;
    this.#core.disconnected(session, will, now);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // SessionOwner: output not caused by this client's input

  deliver(delivery: StoredDelivery, now: number, moved = false): void {
    const session = this.#session;
    if (session === undefined) return;
    if (this.state !== 'connected') {
      // Closing but not yet detached from the session: keep QoS 1/2 for the next connection.
      if (delivery.qos > 0) this.#core.enqueue(session, delivery);
      return;
    }
    const expiresAt = delivery.message.expiresAt;
    // [MQTT-3.3.2-5] an expired message is not delivered.
    if (expiresAt !== undefined && expiresAt <= now) return;
    if (delivery.qos === 0) {
      this.#sendPublish(delivery, undefined, false, now);
      return;
    }
    // [MQTT-3.3.4-9] no more unacknowledged QoS 1/2 PUBLISH than the client's Receive Maximum: queue the rest.
    if (session.queue.length > 0 || session.outgoingCount >= this.#clientReceiveMaximum) {
      this.#core.enqueue(session, delivery);
      return;
    }
    this.#sendInflight(session, delivery, now, moved);
  }

  disconnect(reasonCode: number, now: number): void {
    if (this.state === 'closed') return;
    const reason =
      reasonCode === ReasonCode.SessionTakenOver
        ? 'session taken over'
        : reasonCode === ReasonCode.ServerShuttingDown
          ? 'server shutting down'
          : 'disconnected by the server';
    // Called from outside (takeover, shutdown, admin) or, through a user hook, from inside one of our handle*
    // calls: then the output joins that call's actions.
    const nested = this.#out !== undefined;
    if (!nested) this.#begin();
    if (this.state === 'connected' || this.state === 'disconnecting') {
      this.#disconnectWith(reasonCode, reason, reasonCode === ReasonCode.SessionTakenOver ? 'MQTT-3.1.4-3' : undefined);
    } else {
      this.#close(reason, undefined, false);
    }
    if (!nested) for (const a of this.#end()) this.#sink.push(a);
    // The session must be free before the caller goes on (takeover binds it to the new connection).
    this.handleClosed(now);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // CONNECT and authentication

  #onConnect(p: ConnectPacket): void {
    const core = this.#core;
    const limits = core.limits;
    this.protocolVersion = p.protocolVersion;
    this.#connect = p;
    const v5 = p.protocolVersion === 5;
    // [MQTT-3.1.2-1] protocol name 'MQTT' for levels 4 and 5, 'MQIsdp' for level 3 (3.1).
    const expectedName = p.protocolVersion === 3 ? 'MQIsdp' : 'MQTT';
    if (p.protocolName !== expectedName) {
      this.#close(`protocol name ${JSON.stringify(p.protocolName)}`, 'MQTT-3.1.2-1', true);
      return;
    }
    const props = p.properties;
    if (v5 && props !== undefined) {
      // MQTT 5.0 3.1.2.11.3/3.1.2.11.4: Receive Maximum and Maximum Packet Size of 0 are protocol errors.
      if (props.receiveMaximum === 0 || props.maximumPacketSize === 0) {
        this.#refuse(ReasonCode.ProtocolError, 'Receive Maximum and Maximum Packet Size must not be 0');
        return;
      }
      if (props.receiveMaximum !== undefined) this.#clientReceiveMaximum = props.receiveMaximum;
      if (props.maximumPacketSize !== undefined) this.#clientMaximumPacketSize = props.maximumPacketSize;
      if (props.topicAliasMaximum !== undefined) this.#clientTopicAliasMaximum = props.topicAliasMaximum;
      if (props.requestProblemInformation === 0) this.#problemInformation = false;
    }
    let clientId = p.clientId;
    if (clientId.length === 0) {
      // (3.1.1: [MQTT-3.1.3-7] [MQTT-3.1.3-8]) an empty client id requires Clean Session; 3.1 requires 1-23 chars.
      // v5 may refuse any id it does not accept with 0x85 [MQTT-3.1.3-8].
      if (!p.cleanStart || p.protocolVersion === 3) {
        this.#refuse(ReasonCode.ClientIdentifierNotValid, 'empty client identifier needs clean start');
        return;
      }
      // [MQTT-3.1.3-6] assign a unique identifier; v5 returns it in CONNACK [MQTT-3.1.3-7].
      clientId = `telemq-${core.instanceId}-${(++assignedIdCounter).toString(36)}`;
    } else if (p.protocolVersion === 3 && clientId.length > 23) {
      // MQTT 3.1 section 3.1: a client identifier of more than 23 characters gets return code 2.
      this.#refuse(ReasonCode.ClientIdentifierNotValid, 'MQTT 3.1 client identifiers are at most 23 characters');
      return;
    } else if (clientId.length > limits.maximumClientIdLength) {
      this.#refuse(ReasonCode.ClientIdentifierNotValid, 'client identifier too long');
      return;
    }
    this.clientId = clientId;
    // maximumConnections: a full broker answers 0x89 Server busy (v3: 3 Server unavailable). Taking over a
    // connected session adds no connection, so it is let through.
    if (!core.connectionsAvailable && core.sessions.get(clientId)?.owner === undefined) {
      core.limitsHit.hit('connections', clientId);
      this.#refuse(ReasonCode.ServerBusy, 'too many connections');
      return;
    }
    core.holdConnectionPlace();
    this.#holdsPlace = true;
    if (p.will !== undefined) {
      const w = p.will;
      // [MQTT-3.1.3-11] the will topic is a topic name: no wildcards (checked by the decoder as well).
      if (!isValidTopicName(w.topic)) {
        this.#refuse(ReasonCode.TopicNameInvalid, 'invalid will topic');
        return;
      }
      // [MQTT-3.2.2-12] a will QoS above Maximum QoS is refused with 0x9B.
      if (w.qos > limits.maximumQoS) {
        this.#refuse(ReasonCode.QoSNotSupported, 'will QoS not supported');
        return;
      }
      // [MQTT-3.2.2-13] a retained will when retain is unavailable is refused with 0x9A.
      if (w.retain && !limits.retainAvailable) {
        this.#refuse(ReasonCode.RetainNotSupported, 'retain not supported');
        return;
      }
      this.#will = w;
    }
    // A listener that takes the username from a verified client certificate overrides the CONNECT's.
    const identity = (this.info.certificate as { identity?: string } | undefined)?.identity;
    this.username = identity ?? p.username;
    this.#requestedExpiry = v5 ? (props?.sessionExpiryInterval ?? 0) : p.cleanStart ? 0 : SESSION_NEVER_EXPIRES;
    this.state = 'authenticating';
    const method = v5 ? props?.authenticationMethod : undefined;
    if (method !== undefined) {
      const hook = core.enhancedAuthenticator;
      // [MQTT-4.12.0-1] an unsupported Authentication Method is refused (0x8C) and the connection closed.
      if (hook === undefined || !hook.methods.includes(method)) {
        this.#refuse(ReasonCode.BadAuthenticationMethod, `authentication method ${JSON.stringify(method)} not supported`);
        return;
      }
      this.#authMethod = method;
      this.#emit({
        type: 'authStep',
        step: { method, data: props?.authenticationData, clientId, initial: true, reauthenticate: false },
      });
      return;
    }
    const request: ConnectRequest = { clientId, protocolVersion: p.protocolVersion, listener: this.info.listener };
    if (this.username !== undefined) request.username = this.username;
    if (p.password !== undefined) request.password = p.password;
    if (this.info.remoteAddress !== undefined) request.remoteAddress = this.info.remoteAddress;
    if (this.info.certificate !== undefined) request.certificate = this.info.certificate;
    this.#emit({ type: 'authenticate', request });
  }

  #onAuth(p: AuthPacket): void {
    const method = p.properties?.authenticationMethod;
    // [MQTT-4.12.0-5]/[MQTT-4.12.1-1] AUTH must carry the CONNECT's Authentication Method.
    if (method === undefined || method !== this.#authMethod) {
      this.#protocolError('AUTH with a different authentication method', 'MQTT-4.12.0-5');
      return;
    }
    const expected = this.state === 'authenticating' ? ReasonCode.ContinueAuthentication : ReasonCode.ReAuthenticate;
    if (p.reasonCode !== expected && !(this.state === 'connected' && p.reasonCode === ReasonCode.ContinueAuthentication)) {
      // [MQTT-4.12.0-3] during authentication the client answers with 0x18; [MQTT-4.12.1-1] re-auth starts with 0x19.
      this.#protocolError(`AUTH reason code 0x${p.reasonCode.toString(16)} here`, 'MQTT-4.12.0-3');
      return;
    }
    this.#emit({
      type: 'authStep',
      step: {
        method,
        data: p.properties?.authenticationData,
        clientId: this.clientId,
        initial: false,
        reauthenticate: this.state === 'connected',
      },
    });
  }

  #authPacket(reasonCode: number, method: string, data: Buffer | undefined): AuthPacket {
    const properties: Properties = { authenticationMethod: method };
    if (data !== undefined) properties.authenticationData = data;
    return { type: 'auth', reasonCode, properties };
  }

  /** Refuses the CONNECT with CONNACK (v5 reason code, mapped for v3) and closes [MQTT-3.2.2-7]. */
  #refuse(reasonCode: number, reason: string): void {
    const v5 = this.protocolVersion === 5;
    const packet: Packet = {
      type: 'connack',
      sessionPresent: false, // [MQTT-3.2.2-6] Session Present is 0 on a refused connection.
      reasonCode: v5 ? reasonCode : v3ReturnCode(reasonCode),
    };
    if (v5 && this.#problemInformation) packet.properties = { reasonString: reason };
    this.#emit({ type: 'send', packet });
    this.#close(`connection refused: ${reason}`, undefined, false);
  }

  /** Authentication passed: bind the session and send CONNACK. */
  #accept(now: number, authData?: Buffer): void {
    const core = this.#core;
    const limits = core.limits;
    const p = this.#connect as ConnectPacket;
    // Not needed after this: an idle connection should not keep the CONNECT (and its password) alive.
    this.#connect = undefined;
    const v5 = this.protocolVersion === 5;
    const expiry = Math.min(this.#requestedExpiry, limits.maximumSessionExpiryInterval);
    this.#releasePlace();
    const { session, sessionPresent } = core.connect(this, {
      clientId: this.clientId,
      cleanStart: p.cleanStart,
      expiryInterval: expiry,
      protocolVersion: this.protocolVersion,
      username: this.username,
    }, now);
    this.#session = session;
    this.state = 'connected';
    if (limits.publishRate > 0) this.#publishBucket = new TokenBucket(limits.publishRate, limits.publishBurst, now);
    // [MQTT-3.3.4-9] the client's Receive Maximum is an upper bound; maximumInflightMessages keeps what a client that
    // stops reading can pin in memory small (the rest waits in the bounded queue).
    if (this.#clientReceiveMaximum > limits.maximumInflightMessages) this.#clientReceiveMaximum = limits.maximumInflightMessages;
    // Keep alive: a v5 server may change it with Server Keep Alive, which the client must use [MQTT-3.2.2-21].
    let keepAlive = p.keepAlive;
    let serverKeepAlive: number | undefined;
    if (v5 && limits.maximumKeepAlive > 0 && (keepAlive === 0 || keepAlive > limits.maximumKeepAlive)) {
      keepAlive = limits.maximumKeepAlive;
      serverKeepAlive = keepAlive;
    }
    this.#keepAlive = keepAlive;
    const connack: Packet = {
      type: 'connack',
      // [MQTT-3.2.2-2] with Clean Start, Session Present is 0; [MQTT-3.2.2-3] otherwise 1 when a session was resumed.
      sessionPresent,
      reasonCode: 0,
    };
    if (v5) {
      const props: Properties = {};
      if (p.clientId.length === 0) props.assignedClientIdentifier = this.clientId; // [MQTT-3.1.3-7]
      if (expiry !== this.#requestedExpiry) props.sessionExpiryInterval = expiry;
      if (limits.receiveMaximum !== 65_535) props.receiveMaximum = limits.receiveMaximum;
      if (limits.maximumQoS < 2) props.maximumQoS = limits.maximumQoS; // [MQTT-3.2.2-9]
      if (!limits.retainAvailable) props.retainAvailable = 0;
      props.maximumPacketSize = limits.maximumPacketSize;
      if (limits.topicAliasMaximum > 0) props.topicAliasMaximum = limits.topicAliasMaximum;
      if (!limits.wildcardSubscriptionAvailable) props.wildcardSubscriptionAvailable = 0;
      if (!limits.subscriptionIdentifierAvailable) props.subscriptionIdentifierAvailable = 0;
      if (!limits.sharedSubscriptionAvailable) props.sharedSubscriptionAvailable = 0;
      if (serverKeepAlive !== undefined) props.serverKeepAlive = serverKeepAlive;
      if (this.#authMethod !== undefined) {
        props.authenticationMethod = this.#authMethod;
        if (authData !== undefined) props.authenticationData = authData;
      }
      connack.properties = props;
    }
    this.#awaitCommit();
    this.#emit({ type: 'send', packet: connack });
    this.#emit({ type: 'keepAlive', ms: keepAlive * 1500 });
    if (sessionPresent) this.#resume(session, now);
  }

  /** [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP=1) and PUBREL in their original order, then the queue. */
  #resume(session: Session, now: number): void {
    if (session.outgoingCount > 0) {
      for (const o of session.outgoing.values()) {
        if (o.state === 'publish') {
          // Not sendable (no longer readable, too large for the client): handled as delivered, so the id is freed.
          if (!this.#sendPublish(o.delivery, o.packetId, true, now)) {
            session.outgoing.delete(o.packetId);
            this.#persist({ op: 'deleteOutgoing', clientId: session.clientId, packetId: o.packetId });
          }
        } else this.#emit({ type: 'send', packet: { type: 'pubrel', packetId: o.packetId } });
      }
    }
    this.#drain(session, now);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Connected

  #onConnected(packet: Packet, now: number): void {
    switch (packet.type) {
      case 'publish':
        this.#onPublish(packet, now);
        break;
      case 'puback':
        this.#onPuback(packet, now);
        break;
      case 'pubrec':
        this.#onPubrec(packet);
        break;
      case 'pubrel':
        this.#onPubrel(packet);
        break;
      case 'pubcomp':
        this.#onPubcomp(packet, now);
        break;
      case 'subscribe':
        this.#onSubscribe(packet, now);
        break;
      case 'unsubscribe':
        this.#onUnsubscribe(packet);
        break;
      case 'pingreq':
        // [MQTT-3.12.4-1] answer PINGREQ with PINGRESP.
        this.#emit({ type: 'send', packet: { type: 'pingresp' } });
        break;
      case 'disconnect':
        this.#onDisconnect(packet);
        break;
      case 'auth':
        if (this.protocolVersion !== 5 || this.#authMethod === undefined) {
          // [MQTT-4.12.0-7] no AUTH from a client whose CONNECT had no Authentication Method.
          this.#protocolError('AUTH without enhanced authentication', 'MQTT-4.12.0-7');
        } else {
          this.#onAuth(packet);
        }
        break;
      case 'connect':
        // [MQTT-3.1.0-2] a second CONNECT is a protocol error.
        this.#protocolError('second CONNECT', 'MQTT-3.1.0-2');
        break;
      case 'connack':
      case 'suback':
      case 'unsuback':
      case 'pingresp':
        this.#protocolError(`${packet.type.toUpperCase()} from a client`, undefined);
        break;
      default: {
        const _exhaustive: never = packet;
        return _exhaustive;
      }
    }
  }

  #onPublish(p: PublishPacket, now: number): void {
    const core = this.#core;
    const limits = core.limits;
    const session = this.#session as Session;
    const v5 = this.protocolVersion === 5;
    const bucket = this.#publishBucket;
    if (bucket !== undefined && !bucket.take(now)) {
      // publishRate exceeded: v5 DISCONNECT 0x96 Message rate too high (MQTT 5.0 3.14.2.1); v3 cannot be told, so
      // its connection closes.
      core.limitsHit.hit('publishRate', this.clientId);
      this.#disconnectWith(ReasonCode.MessageRateTooHigh, 'message rate too high', undefined, true);
      return;
    }
    let topic = p.topic;
    const props = p.properties;
    if (v5 && props !== undefined) {
      const alias = props.topicAlias;
      if (alias !== undefined) {
        // [MQTT-3.3.2-8] alias 0, or [MQTT-3.3.2-9] above the Topic Alias Maximum we announced: 0x94.
        if (alias === 0 || alias > limits.topicAliasMaximum) {
          const rule = alias === 0 ? 'MQTT-3.3.2-8' : 'MQTT-3.3.2-9';
          this.#protocolError(`topic alias ${alias} out of range`, rule, ReasonCode.TopicAliasInvalid);
          return;
        }
        if (topic.length === 0) {
          const known = this.#inAliases?.get(alias);
          if (known === undefined) {
            // MQTT 5.0 3.3.2.3.4: an alias without a mapping on this connection is a protocol error.
            this.#protocolError(`topic alias ${alias} not set`, undefined);
            return;
          }
          topic = known;
        } else {
          (this.#inAliases ??= new Map()).set(alias, topic);
        }
      }
      // [MQTT-3.3.4-6] a client must not send Subscription Identifiers in PUBLISH.
      if (props.subscriptionIdentifiers !== undefined) {
        this.#protocolError('Subscription Identifier in PUBLISH', 'MQTT-3.3.4-6');
        return;
      }
    }
    // [MQTT-3.3.2-2] wildcards are not allowed in a topic name; an empty name without an alias neither [MQTT-3.3.2-1].
    if (!isValidTopicName(topic)) {
      this.#protocolError('invalid topic name', 'MQTT-3.3.2-2', ReasonCode.TopicNameInvalid);
      return;
    }
    const qos = p.qos;
    // [MQTT-3.2.2-11] a QoS above Maximum QoS is answered with DISCONNECT 0x9B.
    if (qos > limits.maximumQoS) {
      this.#protocolError(`QoS ${qos} not supported`, 'MQTT-3.2.2-11', ReasonCode.QoSNotSupported);
      return;
    }
    // [MQTT-3.2.2-14] RETAIN=1 when retain is unavailable: DISCONNECT 0x9A.
    if (p.retain && !limits.retainAvailable) {
      this.#protocolError('retain not supported', 'MQTT-3.2.2-14', ReasonCode.RetainNotSupported);
      return;
    }
    core.stats.messagesReceived++;
    const packetId = p.packetId ?? 0;
    if (qos === 2 && session.incomingQoS2.has(packetId)) {
      // [MQTT-4.3.3-10] a resent QoS 2 PUBLISH (DUP after reconnect) is not delivered again: PUBREC again.
      this.#emit({ type: 'send', packet: { type: 'pubrec', packetId } });
      return;
    }
    if (qos === 2 && session.incomingQoS2.size >= limits.receiveMaximum) {
      // [MQTT-3.3.4-7] the client exceeded the Receive Maximum we announced: DISCONNECT 0x93.
      this.#protocolError('receive maximum exceeded', 'MQTT-3.3.4-7', ReasonCode.ReceiveMaximumExceeded);
      return;
    }
    let reasonCode: number = ReasonCode.Success;
    let allowed = true;
    const overLimit = topicLimitExceeded(topic, limits);
    if (overLimit !== undefined) {
      // maximumTopicLength/Levels: v5 PUBACK/PUBREC 0x90 Topic Name invalid ("not accepted by this Server"); v3
      // has no refusal, so the message is acknowledged and dropped, as an unauthorized one is.
      core.limitsHit.hit(overLimit, this.clientId);
      core.stats.messagesDropped++;
      reasonCode = ReasonCode.TopicNameInvalid;
      allowed = false;
    }
    // MQTT 5.0 4.7.2: topics starting with '$' are reserved for the server, which SHOULD prevent clients from
    // using them to exchange messages: such a PUBLISH is acknowledged (v5: 0x87) and dropped.
    else if (topic.charCodeAt(0) === 0x24) allowed = false;
    else allowed = core.canPublish(this.clientId, this.username, topic, qos, p.retain);
    if (allowed) {
      const message: StoredMessage = { topic, payload: p.payload, qos, retain: p.retain, origin: this.clientId };
      if (v5 && props !== undefined) {
        const expiry = props.messageExpiryInterval;
        if (expiry !== undefined) message.expiresAt = now + expiry * 1000;
        const forwarded = forwardedProperties(props);
        if (forwarded !== undefined) message.properties = forwarded;
      }
      core.publish(message, now);
    } else {
      // [MQTT-3.3.5-2] (3.1.1) v3 has no way to refuse: acknowledge normally and drop. v5 answers 0x87.
      if (reasonCode === ReasonCode.Success) reasonCode = ReasonCode.NotAuthorized;
    }
    if (qos === 0) {
      core.discardPending();
      return;
    }
    this.#awaitCommit();
    const code = v5 ? reasonCode : 0;
    if (qos === 1) {
      // [MQTT-4.3.2-4] PUBACK once we own the message (after the store commit, via the 'await' above).
      this.#emit({ type: 'send', packet: this.#ack('puback', packetId, code) });
    } else if (code >= 0x80) {
      this.#emit({ type: 'send', packet: this.#ack('pubrec', packetId, code) });
    } else {
      // [MQTT-4.3.3-8] PUBREC once we own the message; the id is kept until PUBREL so that a resend is not
      // delivered twice [MQTT-4.3.3-10].
      session.incomingQoS2.add(packetId);
      this.#persist({ op: 'putIncomingQoS2', clientId: session.clientId, packetId });
      this.#emit({ type: 'send', packet: { type: 'pubrec', packetId } });
    }
  }

  #ack<T extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'>(
    type: T,
    packetId: number,
    reasonCode: number,
  ): PubackPacket | PubrecPacket | PubrelPacket | PubcompPacket {
    const packet = { type, packetId } as PubackPacket;
    if (reasonCode !== 0) packet.reasonCode = reasonCode;
    return packet;
  }

  #onPuback(p: PubackPacket, now: number): void {
    const session = this.#session as Session;
    const o = session.outgoing.get(p.packetId);
    // A PUBACK for an unknown id is ignored.
    if (o === undefined || o.state !== 'publish' || o.delivery.qos !== 1) return;
    session.outgoing.delete(p.packetId);
    this.#persist({ op: 'deleteOutgoing', clientId: session.clientId, packetId: p.packetId });
    this.#drain(session, now);
  }

  #onPubrec(p: PubrecPacket): void {
    const session = this.#session as Session;
    const o = session.outgoing.get(p.packetId);
    if (o === undefined || o.delivery.qos !== 2) {
      // v5: PUBREL 0x92 Packet Identifier not found; v3 completes the exchange anyway.
      const code = this.protocolVersion === 5 ? ReasonCode.PacketIdentifierNotFound : 0;
      this.#emit({ type: 'send', packet: this.#ack('pubrel', p.packetId, code) });
      return;
    }
    if ((p.reasonCode ?? 0) >= 0x80) {
      // MQTT 5.0 4.3.3: a PUBREC with a reason code >= 0x80 ends the exchange; the packet id is free again.
      session.outgoing.delete(p.packetId);
      this.#persist({ op: 'deleteOutgoing', clientId: session.clientId, packetId: p.packetId });
      this.#drain(session, this.#core.clock.now());
      return;
    }
    if (o.state === 'publish') {
      // [MQTT-4.3.3-3] PUBREL after PUBREC; [MQTT-4.3.3-5] the PUBLISH is never resent after that.
      const next: StoredOutgoing = { packetId: o.packetId, state: 'pubrel', delivery: o.delivery };
      session.outgoing.set(p.packetId, next);
      this.#persist({ op: 'putOutgoing', clientId: session.clientId, outgoing: next });
    }
    // PUBREL only once the 'pubrel' state is stored: after a restart we must not resend the PUBLISH [MQTT-4.3.3-5].
    this.#awaitCommit();
    this.#emit({ type: 'send', packet: { type: 'pubrel', packetId: p.packetId } });
  }

  #onPubrel(p: PubrelPacket): void {
    const session = this.#session as Session;
    const known = session.incomingQoS2.delete(p.packetId);
    if (known) this.#persist({ op: 'deleteIncomingQoS2', clientId: session.clientId, packetId: p.packetId });
    // [MQTT-4.3.3-11] answer PUBREL with PUBCOMP (v5: 0x92 when the id is unknown).
    const code = !known && this.protocolVersion === 5 ? ReasonCode.PacketIdentifierNotFound : 0;
    // PUBCOMP only once the id's release is stored: the client may reuse it at once [MQTT-4.3.3-12].
    this.#awaitCommit();
    this.#emit({ type: 'send', packet: this.#ack('pubcomp', p.packetId, code) });
  }

  #onPubcomp(p: PubcompPacket, now: number): void {
    const session = this.#session as Session;
    const o = session.outgoing.get(p.packetId);
    if (o === undefined || o.state !== 'pubrel') return;
    session.outgoing.delete(p.packetId);
    this.#persist({ op: 'deleteOutgoing', clientId: session.clientId, packetId: p.packetId });
    this.#drain(session, now);
  }

  #onSubscribe(p: SubscribePacket, now: number): void {
    const core = this.#core;
    const limits = core.limits;
    const session = this.#session as Session;
    const v5 = this.protocolVersion === 5;
    const subId = v5 ? p.properties?.subscriptionIdentifiers?.[0] : undefined;
    // MQTT 5.0 3.2.2.3.12: Subscription Identifiers when we announced they are unavailable: DISCONNECT 0xA1.
    if (subId !== undefined && !limits.subscriptionIdentifierAvailable) {
      this.#protocolError('subscription identifiers not supported', undefined, ReasonCode.SubscriptionIdentifiersNotSupported);
      return;
    }
    const fail = (v5code: number): number => (v5 ? v5code : SubackFailure);
    const codes: number[] = [];
    const retainedToSend: Array<{ filter: string; qos: QoS; subscription: StoredSubscription }> = [];
    for (const s of p.subscriptions) {
      const filter = s.topicFilter;
      const share = parseSharedSubscription(filter);
      const matchFilter = share === undefined ? filter : 'error' in share ? undefined : share.filter;
      // [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.8.2-1] [MQTT-4.8.2-2] an invalid filter or share name: 0x8F (v3 0x80).
      if (matchFilter === undefined || !isValidTopicFilter(filter)) {
        codes.push(fail(ReasonCode.TopicFilterInvalid));
        continue;
      }
      const overLimit = topicLimitExceeded(filter, limits);
      if (overLimit !== undefined) {
        // maximumTopicLength/Levels: SUBACK 0x8F Topic Filter invalid ("not accepted by the Server"; v3 0x80).
        core.limitsHit.hit(overLimit, this.clientId);
        codes.push(fail(ReasonCode.TopicFilterInvalid));
        continue;
      }
      if (share !== undefined) {
        if (!limits.sharedSubscriptionAvailable) {
          // MQTT 5.0 3.2.2.3.15: announced as unavailable, so a v5 client using it gets DISCONNECT 0x9E.
          if (v5) {
            this.#protocolError('shared subscriptions not supported', undefined, ReasonCode.SharedSubscriptionsNotSupported);
            return;
          }
          codes.push(SubackFailure);
          continue;
        }
        // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
        if (s.noLocal) {
          this.#protocolError('No Local on a shared subscription', 'MQTT-3.8.3-4');
          return;
        }
      }
      if (!limits.wildcardSubscriptionAvailable && (matchFilter.includes('+') || matchFilter.includes('#'))) {
        // MQTT 5.0 3.2.2.3.13: announced as unavailable, so a v5 client using one gets DISCONNECT 0xA2.
        if (v5) {
          this.#protocolError('wildcard subscriptions not supported', undefined, ReasonCode.WildcardSubscriptionsNotSupported);
          return;
        }
        codes.push(SubackFailure);
        continue;
      }
      if (!core.canSubscribe(this.clientId, this.username, filter, s.qos)) {
        codes.push(fail(ReasonCode.NotAuthorized));
        continue;
      }
      const maxSubscriptions = limits.maximumSubscriptionsPerClient;
      if (maxSubscriptions > 0 && session.subscriptions.size >= maxSubscriptions && !session.subscriptions.has(filter)) {
        // maximumSubscriptionsPerClient: SUBACK 0x97 Quota exceeded (MQTT 5.0 3.9.3; v3 0x80). A filter the client
        // already has is a replacement [MQTT-3.8.4-3] and always allowed.
        core.limitsHit.hit('subscriptions', this.clientId);
        codes.push(fail(ReasonCode.QuotaExceeded));
        continue;
      }
      // MQTT 5.0 3.8.4: the granted QoS may be lower than requested: capped by our Maximum QoS.
      const qos = Math.min(s.qos, limits.maximumQoS) as QoS;
      const subscription: StoredSubscription = {
        topicFilter: filter,
        qos,
        noLocal: s.noLocal,
        retainAsPublished: s.retainAsPublished,
        retainHandling: s.retainHandling,
      };
      if (subId !== undefined) subscription.subscriptionIdentifier = subId;
      // [MQTT-3.8.4-3] an identical filter replaces the existing subscription.
      const isNew = core.subscribe(session, subscription);
      this.#persist({ op: 'putSubscription', clientId: session.clientId, subscription });
      codes.push(qos);
      // [MQTT-3.3.1-9] Retain Handling 0: send retained; [MQTT-3.3.1-10] 1: only for a new subscription;
      // [MQTT-3.3.1-11] 2: never. Shared subscriptions get no retained messages (MQTT 5.0 4.8.2).
      if (share === undefined && (s.retainHandling === 0 || (s.retainHandling === 1 && isNew))) {
        retainedToSend.push({ filter: matchFilter, qos, subscription });
      }
    }
    this.#awaitCommit();
    // [MQTT-3.8.4-1] [MQTT-3.8.4-2] SUBACK with the same packet id; [MQTT-3.9.3-1] one code per filter, in order.
    this.#emit({ type: 'send', packet: { type: 'suback', packetId: p.packetId, reasonCodes: codes } });
    if (!limits.retainAvailable) return;
    for (const r of retainedToSend) {
      for (const m of core.retained.match(r.filter, now)) {
        const message: StoredMessage = { topic: m.topic, payload: m.payload, qos: m.qos, retain: true, origin: '' };
        if (m.properties !== undefined) message.properties = m.properties;
        if (m.expiresAt !== undefined) message.expiresAt = m.expiresAt;
        // (3.1.1: [MQTT-3.3.1-8]; MQTT 5.0 3.3.1.3) retained messages sent because of a subscription have RETAIN=1.
        const delivery: StoredDelivery = { message, qos: Math.min(m.qos, r.qos) as QoS, retain: true };
        if (r.subscription.subscriptionIdentifier !== undefined) {
          delivery.subscriptionIdentifiers = [r.subscription.subscriptionIdentifier];
        }
        this.deliver(delivery, now);
      }
    }
  }

  #onUnsubscribe(p: UnsubscribePacket): void {
    const core = this.#core;
    const session = this.#session as Session;
    const codes: number[] = [];
    for (const filter of p.topicFilters) {
      const existed = core.unsubscribe(session, filter);
      if (existed) this.#persist({ op: 'deleteSubscription', clientId: session.clientId, topicFilter: filter });
      codes.push(existed ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
    }
    this.#awaitCommit();
    // [MQTT-3.10.4-4] UNSUBACK with the same packet id; [MQTT-3.10.4-5] even when nothing was removed.
    this.#emit({
      type: 'send',
      packet: { type: 'unsuback', packetId: p.packetId, reasonCodes: this.protocolVersion === 5 ? codes : [] },
    });
  }

  #onDisconnect(p: DisconnectPacket): void {
    const session = this.#session as Session;
    const code = p.reasonCode ?? 0;
    const expiry = p.properties?.sessionExpiryInterval;
    if (expiry !== undefined) {
      // MQTT 5.0 3.14.2.2.2: a Session Expiry Interval of 0 at CONNECT may not be raised at DISCONNECT.
      if (this.#requestedExpiry === 0 && expiry !== 0) {
        this.#protocolError('session expiry raised from 0 at DISCONNECT', undefined);
        return;
      }
      session.expiryInterval = Math.min(expiry, this.#core.limits.maximumSessionExpiryInterval);
    }
    // [MQTT-3.14.4-3] DISCONNECT 0x00 discards the will; 0x04 (Disconnect with Will Message) keeps it.
    if (code !== ReasonCode.DisconnectWithWillMessage) this.#discardWill = true;
    this.state = 'disconnecting';
    // [MQTT-3.14.4-1] the client closes after DISCONNECT; we close too so nothing lingers.
    this.#emit({ type: 'close', reason: `client disconnected (0x${code.toString(16).padStart(2, '0')})`, error: false });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Sending messages

  /**
   * Sends a QoS 1/2 delivery under a new packet id [MQTT-4.3.2-1]. `moved`: it leaves another stored row (the
   * queue, or another session's in-flight table), whose removal is committed with the next batch.
   */
  #sendInflight(session: Session, delivery: StoredDelivery, now: number, moved = false): void {
    const packetId = session.allocatePacketId();
    if (packetId === undefined) {
      this.#core.enqueue(session, delivery);
      return;
    }
    if (!this.#sendPublish(delivery, packetId, false, now)) return;
    const outgoing: StoredOutgoing = { packetId, state: 'publish', delivery };
    session.outgoing.set(packetId, outgoing);
    // A PUBLISH that goes out now may be acknowledged before the store commits, and the store may then wait for
    // that; not one held behind a pending commit (ours or an earlier 'await' of this call: waiting would only stall
    // both), nor a message moved from another row (the row's removal may commit first: the message would be in
    // neither).
    const sentNow = !moved && !(this.#out !== undefined && this.#awaiting) && this.#sink.outputHeld !== true;
    this.#persist({ op: 'putOutgoing', clientId: session.clientId, outgoing, sentNow });
  }

  /** Sends queued messages while the client's Receive Maximum allows. */
  #drain(session: Session, now: number): void {
    const queue = session.queue;
    while (queue.length > 0 && session.outgoingCount < this.#clientReceiveMaximum) {
      const item = queue.shift() as { seq: number; delivery: StoredDelivery };
      this.#core.dequeued(session, item.delivery);
      this.#persist({ op: 'dequeue', clientId: session.clientId, seq: item.seq });
      const expiresAt = item.delivery.message.expiresAt;
      // [MQTT-3.3.2-5] expired while queued: dropped.
      if (expiresAt !== undefined && expiresAt <= now) continue;
      if (item.delivery.qos === 0) this.#sendPublish(item.delivery, undefined, false, now);
      else this.#sendInflight(session, item.delivery, now, true);
    }
  }

  /**
   * Builds and emits one PUBLISH. Returns false when it was not sent because it exceeds the client's Maximum
   * Packet Size [MQTT-3.1.2-25]; the message then counts as delivered for this client.
   */
  #sendPublish(delivery: StoredDelivery, packetId: number | undefined, dup: boolean, now: number): boolean {
    const m = delivery.message;
    const core = this.#core;
    if (core.checksReads && !core.canRead(this.clientId, this.username, m.topic)) {
      // Delivery-time read check: rules may have changed since the subscription was granted (ACL reload, resumed
      // session). The message is withheld from this client only.
      core.limitsHit.hit('readDenied', this.clientId, m.topic);
      core.stats.messagesDropped++;
      return false;
    }
    const packet: PublishPacket = {
      type: 'publish',
      topic: m.topic,
      payload: m.payload,
      qos: delivery.qos,
      retain: delivery.retain,
      dup,
    };
    if (packetId !== undefined) packet.packetId = packetId;
    if (this.protocolVersion === 5) {
      const ids = delivery.subscriptionIdentifiers;
      const aliasMax = this.#clientTopicAliasMaximum;
      if (m.expiresAt === undefined && ids === undefined && aliasMax === 0) {
        // Unchanged properties object: the connection can share the encoded bytes with other subscribers.
        if (m.properties !== undefined) packet.properties = m.properties;
      } else {
        const props: Properties = m.properties === undefined ? {} : { ...m.properties };
        if (m.expiresAt !== undefined) {
          // [MQTT-3.3.2-6] forward the remaining lifetime, not the original interval.
          props.messageExpiryInterval = Math.max(0, Math.ceil((m.expiresAt - now) / 1000));
        }
        // [MQTT-3.3.4-3] every matching Subscription Identifier.
        if (ids !== undefined) props.subscriptionIdentifiers = ids;
        packet.properties = props;
        if (aliasMax > 0) this.#applyOutgoingAlias(packet, props, aliasMax);
      }
    }
    const max = this.#clientMaximumPacketSize;
    if (max !== undefined && this.#core.encodedLength(packet, this.protocolVersion) > max) {
      // [MQTT-3.1.2-24] never send a packet larger than the client's Maximum Packet Size; [MQTT-3.1.2-25] discard
      // it and behave as if it had been sent.
      this.#core.stats.messagesDropped++;
      // An alias this packet would have set is unknown to the client: forget it (it is the newest, so no gap).
      if (packet.topic.length > 0 && packet.properties?.topicAlias !== undefined) this.#outAliases?.delete(packet.topic);
      return false;
    }
    this.#core.stats.messagesSent++;
    this.#emit({ type: 'send', packet, message: m });
    return true;
  }

  /** Broker-assigned topic aliases (v5): the first PUBLISH on a topic sets one, later ones send an empty topic. */
  #applyOutgoingAlias(packet: PublishPacket, props: Properties, aliasMax: number): void {
    const aliases = (this.#outAliases ??= new Map());
    const known = aliases.get(packet.topic);
    if (known !== undefined) {
      props.topicAlias = known;
      packet.topic = '';
    } else if (aliases.size < aliasMax) {
      // [MQTT-3.3.2-11] aliases we send stay within the client's Topic Alias Maximum.
      const alias = aliases.size + 1;
      aliases.set(packet.topic, alias);
      props.topicAlias = alias;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Errors and closing

  /**
   * A rule broken by the client: v5 gets DISCONNECT with `reasonCode` where the state allows one (after CONNACK),
   * or CONNACK with it before; then the connection closes.
   */
  #protocolError(message: string, rule: string | undefined, reasonCode: number = ReasonCode.ProtocolError): void {
    if (this.state === 'authenticating' && this.protocolVersion === 5) {
      this.#refuse(reasonCode, message);
      return;
    }
    this.#disconnectWith(reasonCode, message, rule, true);
  }

  /** Server-initiated DISCONNECT (v5 only [MQTT-3.14.0-1]: v3 has no server DISCONNECT) and close. */
  #disconnectWith(reasonCode: number, reason: string, rule: string | undefined, error = false): void {
    if (this.protocolVersion === 5 && this.state === 'connected') {
      const packet: DisconnectPacket = { type: 'disconnect', reasonCode };
      if (this.#problemInformation) packet.properties = { reasonString: reason };
      this.#emit({ type: 'send', packet });
    }
    this.#close(reason, rule, error);
  }

  #close(reason: string, rule: string | undefined, error = false): void {
    this.#releasePlace();
    if (this.state !== 'closed') this.state = 'disconnecting';
    const action: Action = { type: 'close', reason, error };
    if (rule !== undefined) action.rule = rule;
    this.#emit(action);
  }

  #releasePlace(): void {
    if (!this.#holdsPlace) return;
    this.#holdsPlace = false;
    this.#core.releaseConnectionPlace();
  }

  /** Puts an 'await' action before what follows when durable writes are still in flight. */
  #awaitCommit(): void {
    const commit = this.#core.takePending();
    if (commit !== undefined) {
      this.#emit({ type: 'await', promise: commit });
      this.#awaiting = true;
    }
  }

  /** Writes a change of this connection's session through to the store, unless the session is not stored at all. */
  #persist(op: Parameters<BrokerCore['persist']>[0]): void {
    if (this.#session?.durable === true) this.#core.persist(op);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Output plumbing

  #begin(): void {
    this.#out = [];
    this.#awaiting = false;
  }

  #end(): readonly Action[] {
    const out = this.#out;
    this.#out = undefined;
    // Writes no acknowledgement waits for (e.g. a subscriber's PUBACK): their failures are still logged.
    this.#core.discardPending();
    return out === undefined || out.length === 0 ? NO_ACTIONS : out;
  }

  #emit(action: Action): void {
    if (this.#out !== undefined) this.#out.push(action);
    else this.#sink.push(action);
  }

  /** Keep alive in seconds as enforced (after Server Keep Alive). */
  get keepAlive(): number {
    return this.#keepAlive;
  }
}
