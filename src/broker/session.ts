/**
 * Session state that outlives a connection (MQTT 5.0 section 4.1): subscriptions, QoS 1/2 messages in flight in
 * both directions, messages queued for the client, and the pending will. Plain data; the channel and the broker
 * core change it and mirror every change to the Store.
 */
import type { ProtocolVersion, Will } from '../protocol/index.js';
import type { TimerHandle } from '../shared/clock.js';
import type { StoredDelivery, StoredOutgoing, StoredSubscription } from './persistence/store.js';

/** Session Expiry Interval meaning "never expires". */
export const SESSION_NEVER_EXPIRES = 0xffff_ffff;

/** Minimal view of the connection currently bound to a session (implemented by Channel). */
export interface SessionOwner {
  /**
   * Takes one more message; the channel sends or queues it. `moved`: the message leaves another stored row (a
   * shared-subscription member's session ended), so its new row must be committed with that row's removal.
   */
  deliver(delivery: StoredDelivery, now: number, moved?: boolean): void;
  /** Server-initiated disconnect with a v5 reason code (0x8E on takeover, 0x8B on shutdown). */
  disconnect(reasonCode: number, now: number): void;
}

export class Session {
  readonly clientId: string;
  protocolVersion: ProtocolVersion;
  /** Seconds; SESSION_NEVER_EXPIRES = forever. */
  expiryInterval = 0;
  /**
   * Whether the session is mirrored to the Store. A session that began with expiry 0 ends with its connection
   * (and its expiry cannot be raised later, MQTT 5.0 3.14.2.2.2), so after a restart there is nothing to restore:
   * it is never written. Once set, it stays set, so a stored session is always deleted from the store at its end.
   */
  durable = false;
  // The maps are created on first use: an idle connection's session then costs a few hundred bytes less
  // (thousands of idle clients are the common case for a broker).
  #subscriptions: Map<string, StoredSubscription> | undefined = undefined;
  #outgoing: Map<number, StoredOutgoing> | undefined = undefined;
  #incomingQoS2: Set<number> | undefined = undefined;
  /** Messages waiting for a connection or for a free slot under the client's Receive Maximum. */
  readonly queue: Array<{ seq: number; delivery: StoredDelivery }> = [];
  nextSeq = 1;
  #nextPacketId = 1;
  /** The connected channel, undefined while offline. */
  owner: SessionOwner | undefined = undefined;
  /** Will waiting for its Will Delay Interval (v5) after the connection ended. */
  pendingWill: { will: Will; timer: TimerHandle | undefined } | undefined = undefined;
  expiryTimer: TimerHandle | undefined = undefined;
  /** Username of the last connection, for authorization of deliveries that need it. */
  username: string | undefined = undefined;

  constructor(clientId: string, protocolVersion: ProtocolVersion) {
    this.clientId = clientId;
    this.protocolVersion = protocolVersion;
  }

  get subscriptions(): Map<string, StoredSubscription> {
    return (this.#subscriptions ??= new Map());
  }

  /** QoS 1/2 messages sent and not completed, keyed by packet id, in first-send order. */
  get outgoing(): Map<number, StoredOutgoing> {
    return (this.#outgoing ??= new Map());
  }

  /** Packet ids of QoS 2 messages received (PUBREC sent) whose PUBREL has not come yet. */
  get incomingQoS2(): Set<number> {
    return (this.#incomingQoS2 ??= new Set());
  }

  /** Number of outgoing QoS 1/2 messages, without creating the map. */
  get outgoingCount(): number {
    return this.#outgoing === undefined ? 0 : this.#outgoing.size;
  }

  /** A packet id not used by an outgoing message; undefined when all 65,535 are in use. */
  allocatePacketId(): number | undefined {
    const outgoing = this.outgoing;
    if (outgoing.size >= 0xffff) return undefined;
    let id = this.#nextPacketId;
    while (outgoing.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.#nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }
}
