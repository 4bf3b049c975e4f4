/**
 * Storage interfaces for sessions and messages. The broker keeps its working state in memory and writes every
 * change through a {@link Store}; a durable store (SQLite, a later issue) makes that state survive a restart.
 *
 * Every method may complete synchronously (return `undefined`) or return a promise. The broker awaits only
 * promises, so an in-memory store costs no promise per message, while a durable store gets "acknowledge only after
 * commit": an ack that depends on a write is sent after the write's promise settled.
 * Retained messages live in the router's RetainedStore, not here.
 */
import type { ProtocolVersion, QoS } from '../../protocol/index.js';
import type { Properties, RetainHandling } from '../../protocol/index.js';

export type MaybePromise<T> = T | Promise<T>;

/** A session's own fields (not its subscriptions or messages). */
export interface SessionRecord {
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection; 0xFFFFFFFF = forever. */
  sessionExpiryInterval: number;
  /** Wall-clock ms (Date.now()) when the client disconnected; absent while it is connected. */
  disconnectedAt?: number;
}

/** One subscription of a session, as requested and granted. */
export interface StoredSubscription {
  /** The filter as sent, including a `$share/group/` prefix. */
  topicFilter: string;
  /** Granted QoS. */
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: RetainHandling;
  subscriptionIdentifier?: number;
}

/** An application message as it travels from publisher to subscribers. */
export interface StoredMessage {
  topic: string;
  payload: Buffer;
  /** QoS it was published with. */
  qos: QoS;
  retain: boolean;
  /** v5 properties passed through to subscribers (never a Topic Alias or Subscription Identifier). */
  properties?: Properties;
  /** Wall-clock ms (Date.now()) after which the message must not be delivered. */
  expiresAt?: number;
  /** Client id of the publisher (for No Local); '' for messages of the broker itself. */
  origin: string;
}

/** A message addressed to one session: the message plus what the subscription made of it. */
export interface StoredDelivery {
  message: StoredMessage;
  /** QoS of the delivery: min(published QoS, granted QoS). */
  qos: QoS;
  /** RETAIN flag to send. */
  retain: boolean;
  subscriptionIdentifiers?: number[];
  /** Set when the delivery came through a shared subscription: `$share/{group}/{filter}`. */
  shareFilter?: string;
}

/** A QoS 1/2 message sent to the client and not yet completed. */
export interface StoredOutgoing {
  packetId: number;
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREC received, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  delivery: StoredDelivery;
}

/**
 * A will waiting for its Will Delay Interval after the connection ended (MQTT 5.0 3.1.3.2.2). Stored with the
 * session so that a restart within the delay neither loses the will nor sends it early [MQTT-3.1.3-9].
 */
export interface StoredWill {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** The will properties as the client sent them (Message Expiry counts from publication, so it stays relative). */
  properties?: Properties;
  /** Wall-clock ms (Date.now()) when the Will Delay Interval ends. */
  dueAt: number;
  /** Username of the connection that left the will: the will is authorized as its publish when it goes out. */
  username?: string;
}

/** Everything stored about one session, as loaded at startup. */
export interface PersistedSession {
  record: SessionRecord;
  subscriptions: StoredSubscription[];
  /** Messages not yet sent, oldest first, each with its store sequence number. */
  queue: Array<{ seq: number; delivery: StoredDelivery }>;
  /** Unacknowledged outgoing messages, in the order they were first sent. */
  outgoing: StoredOutgoing[];
  /** QoS 2 packet ids received from the client (PUBREC sent) and awaiting PUBREL. */
  incomingQoS2: number[];
  /**
   * The will still waiting for its delay. A durable store also loads a session that expired while the broker was
   * down when it has a will: the will must still go out, and the broker then ends the session at once.
   */
  will?: StoredWill;
}

export interface SessionStore {
  /** All stored sessions. Called once at startup. */
  loadSessions(): MaybePromise<PersistedSession[]>;
  /** Creates or replaces the session's own fields; subscriptions and messages stay. */
  putSession(record: SessionRecord): MaybePromise<void>;
  /** Removes the session with its subscriptions, queue, outgoing and incoming state and its will. No-op when absent. */
  deleteSession(clientId: string): MaybePromise<void>;
  /** Creates or replaces the subscription with the same topicFilter. */
  putSubscription(clientId: string, subscription: StoredSubscription): MaybePromise<void>;
  deleteSubscription(clientId: string, topicFilter: string): MaybePromise<void>;
  /** Creates or replaces the session's waiting will (one per session). */
  putWill(clientId: string, will: StoredWill): MaybePromise<void>;
  /** Removes the waiting will (published, or cancelled by a reconnect). No-op when absent. */
  deleteWill(clientId: string): MaybePromise<void>;
}

export interface MessageStore {
  /** Appends to the session's queue; `seq` increases per session. */
  enqueue(clientId: string, seq: number, delivery: StoredDelivery): MaybePromise<void>;
  /** Removes a queued message (sent, expired or dropped). */
  dequeue(clientId: string, seq: number): MaybePromise<void>;
  /**
   * Creates or updates an outgoing message; an update keeps its position in the order. `sentNow`: the PUBLISH goes
   * to the connected client at once (not held behind other output), so its acknowledgement may come back soon and a
   * store may wait briefly for it before writing (a promise it returns may then settle at that acknowledgement).
   */
  putOutgoing(clientId: string, outgoing: StoredOutgoing, sentNow?: boolean): MaybePromise<void>;
  deleteOutgoing(clientId: string, packetId: number): MaybePromise<void>;
  putIncomingQoS2(clientId: string, packetId: number): MaybePromise<void>;
  deleteIncomingQoS2(clientId: string, packetId: number): MaybePromise<void>;
}

/** What the broker needs from persistence. */
export interface Store extends SessionStore, MessageStore {
  /** Flushes and releases resources. */
  close(): MaybePromise<void>;
}

/** One write, as data, so the sans-I/O channel can return it in an action. */
export type StoreOp =
  | { op: 'putSession'; record: SessionRecord }
  | { op: 'deleteSession'; clientId: string }
  | { op: 'putSubscription'; clientId: string; subscription: StoredSubscription }
  | { op: 'deleteSubscription'; clientId: string; topicFilter: string }
  | { op: 'putWill'; clientId: string; will: StoredWill }
  | { op: 'deleteWill'; clientId: string }
  | { op: 'enqueue'; clientId: string; seq: number; delivery: StoredDelivery }
  | { op: 'dequeue'; clientId: string; seq: number }
  | { op: 'putOutgoing'; clientId: string; outgoing: StoredOutgoing; sentNow?: boolean }
  | { op: 'deleteOutgoing'; clientId: string; packetId: number }
  | { op: 'putIncomingQoS2'; clientId: string; packetId: number }
  | { op: 'deleteIncomingQoS2'; clientId: string; packetId: number };

/** Applies one {@link StoreOp}; returns the store's promise when it has one. */
export function applyStoreOp(store: Store, o: StoreOp): MaybePromise<void> {
  switch (o.op) {
    case 'putSession':
      return store.putSession(o.record);
    case 'deleteSession':
      return store.deleteSession(o.clientId);
    case 'putSubscription':
      return store.putSubscription(o.clientId, o.subscription);
    case 'deleteSubscription':
      return store.deleteSubscription(o.clientId, o.topicFilter);
    case 'putWill':
      return store.putWill(o.clientId, o.will);
    case 'deleteWill':
      return store.deleteWill(o.clientId);
    case 'enqueue':
      return store.enqueue(o.clientId, o.seq, o.delivery);
    case 'dequeue':
      return store.dequeue(o.clientId, o.seq);
    case 'putOutgoing':
      return store.putOutgoing(o.clientId, o.outgoing, o.sentNow);
    case 'deleteOutgoing':
      return store.deleteOutgoing(o.clientId, o.packetId);
    case 'putIncomingQoS2':
      return store.putIncomingQoS2(o.clientId, o.packetId);
    case 'deleteIncomingQoS2':
      return store.deleteIncomingQoS2(o.clientId, o.packetId);
    default: {
      const _exhaustive: never = o;
      return _exhaustive;
    }
  }
}
