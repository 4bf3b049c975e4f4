import type { QoS } from '../protocol/constants.js';
import type { Properties, RetainHandling } from '../protocol/packets.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { BackoffOptions } from './backoff.js';
import type { OutgoingStore } from './store.js';
import type { TlsOptions } from './transport.js';

/** A received application message. */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** DUP flag as received: the broker may have sent this message before. */
  dup: boolean;
  /** v5 properties (user properties, content type, response topic, subscription identifiers, ...). */
  properties?: Properties;
}

export interface WillOptions {
  topic: string;
  payload: string | Uint8Array;
  qos?: QoS;
  retain?: boolean;
  /** v5 will properties, e.g. willDelayInterval, messageExpiryInterval. */
  properties?: Properties;
}

/**
 * MQTT 5 enhanced authentication: computes the next Authentication Data when the broker sends AUTH 0x18
 * (Continue authentication) with its `data`. The client sends the result back in AUTH 0x18.
 */
export type AuthHandler = (method: string, data: Buffer | undefined, reasonCode: number) => Uint8Array | Promise<Uint8Array>;

export interface ConnectOptions {
  /** 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0 (default). */
  protocolVersion?: 3 | 4 | 5;
  /** Generated ('telemq-' + 16 hex digits) when absent or empty. */
  clientId?: string;
  username?: string;
  password?: string | Uint8Array;
  /** Seconds; 0 disables. Default 60. The broker's Server Keep Alive (v5) wins. */
  keepAlive?: number;
  /** Clean Start (v5) / Clean Session (v3). Default true. */
  cleanStart?: boolean;
  /** v5 Session Expiry Interval in seconds. Default 0 (session ends with the connection). */
  sessionExpiryInterval?: number;
  will?: WillOptions;
  /** Further v5 CONNECT properties: receiveMaximum, maximumPacketSize, topicAliasMaximum, userProperties, ... */
  properties?: Properties;
  /** v5 enhanced authentication: the Authentication Method of every CONNECT, e.g. 'SCRAM-SHA-256'. */
  authenticationMethod?: string;
  /** v5: Authentication Data sent with the method in every CONNECT (and by default in reauthenticate()). */
  authenticationData?: Uint8Array;
  /** v5: answers the broker's AUTH 0x18 challenges, at connect and during reauthenticate(). */
  onAuth?: AuthHandler;
  /** Milliseconds to wait for CONNACK (the whole AUTH exchange included). Default 30000. */
  connectTimeout?: number;
  /** Reconnect after a lost connection (default on, backoff 1 s doubling to 30 s, jittered); false disables. */
  reconnect?: boolean | BackoffOptions;
  /** Messages publish() accepts while disconnected before it rejects with MQTT_ERR_QUEUE_FULL. Default 10000. */
  offlineQueueLimit?: number;
  /** v3/v4 only (v5 uses the broker's Receive Maximum): QoS 1/2 PUBLISH in flight at once. Default 65535. */
  maxInflight?: number;
  /** Messages kept while no 'message' listener or iterator exists, for the first one to attach. Default 1000. */
  backlogLimit?: number;
  /** v5: replace repeated topic names by Topic Aliases, up to the broker's Topic Alias Maximum. Default false. */
  topicAliases?: boolean;
  /** Durable record of outgoing QoS 1/2 messages (e.g. FileStore from 'telemq/client/file-store'). */
  store?: OutgoingStore;
  tls?: TlsOptions;
  /** Extra headers for the WebSocket upgrade request (Node only). */
  wsHeaders?: Record<string, string>;
  clock?: Clock;
  logger?: Logger;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** v5 PUBLISH properties; the client manages topicAlias itself. */
  properties?: Properties;
}

/** How a publish flow ended: PUBACK / PUBREC-PUBCOMP reason code (0 for QoS 0 and for v3). */
export interface PublishResult {
  packetId?: number;
  reasonCode: number;
  properties?: Properties;
}

export interface SubscribeOptions {
  qos?: QoS;
  /** v5 subscription options. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: RetainHandling;
  /** v5 SUBSCRIBE properties (subscriptionIdentifiers: [n], userProperties). */
  properties?: Properties;
}

export interface SubscriptionRequest extends SubscribeOptions {
  topicFilter: string;
}

/** Emitted with 'delivered' when a QoS 1/2 flow completes — also for messages restored from a store after a restart. */
export interface DeliveredEvent {
  packetId: number;
  topic: string;
  qos: 1 | 2;
  reasonCode: number;
  /** True when the message was published by an earlier process and restored from the store. */
  restored: boolean;
}
