/**
 * State shared by all connections: the session registry, subscription tree, retained store, wills, statistics and
 * the write-through to the Store. No sockets; time comes from the injected Clock (timers for will delay and
 * session expiry), so it runs under a fake clock in tests.
 */
import { randomBytes } from 'node:crypto';
import { encodedLength, type Packet, type Properties, type ProtocolVersion, type QoS, type Will } from '../protocol/index.js';
import type { Clock, TimerHandle } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Authenticator, Authorizer, EnhancedAuthenticator } from './auth/auth.js';
import type { MqttLimitsConfig } from './config.js';
import { LimitCounter, LogLimiter, type ConnectionLogKind } from './limits.js';
import {
  applyStoreOp,
  type Store,
  type StoredDelivery,
  type StoredMessage,
  type StoredSubscription,
  type StoredWill,
  type StoreOp,
} from './persistence/store.js';
import { SubscriptionTree, type RetainedStore, type ShareGroup } from './router/index.js';
import { SESSION_NEVER_EXPIRES, Session, type SessionOwner } from './session.js';

/** Counters for $SYS and the admin API. Plain numbers: incremented on the hot path. */
export interface BrokerStats {
  startedAt: number;
  clientsConnected: number;
  /** Connections accepted since start (CONNACK 0x00 sent). */
  clientsTotal: number;
  messagesReceived: number;
  messagesSent: number;
  /** Messages not delivered: queue overflow, too large for the client, expired. */
  messagesDropped: number;
  bytesReceived: number;
  bytesSent: number;
  /** Connections closed for breaking the protocol (malformed input, connect timeout), logged or not. */
  protocolErrors: number;
  /** Connections closed before CONNECT completed for another reason (refused CONNECT), logged or not. */
  closedBeforeConnect: number;
}

export interface CoreOptions {
  limits: MqttLimitsConfig;
  clock: Clock;
  logger: Logger;
  store: Store;
  retained: RetainedStore;
  authenticator: Authenticator;
  authorizer: Authorizer;
  enhancedAuthenticator?: EnhancedAuthenticator | undefined;
}

export interface ConnectParams {
  clientId: string;
  cleanStart: boolean;
  expiryInterval: number;
  protocolVersion: ProtocolVersion;
  username: string | undefined;
}

export class BrokerCore {
  readonly limits: MqttLimitsConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Store;
  readonly retained: RetainedStore;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly enhancedAuthenticator: EnhancedAuthenticator | undefined;
  /** Short random tag in assigned client ids, so ids from different broker runs do not collide. */
  readonly instanceId = randomBytes(4).toString('hex');
  readonly sessions = new Map<string, Session>();
  readonly tree: SubscriptionTree<Session>;
  readonly stats: BrokerStats;
  /** Limit events by kind (counted and logged, rate-limited), see limits.ts. */
  readonly limitsHit: LimitCounter;
  /** Shared by all connections: a flood of bad connections costs a few log lines per interval, not one each. */
  readonly connectionLog: LogLimiter<ConnectionLogKind>;
  /** Whether the authorizer checks each delivery (canRead); decided once so brokers without it pay nothing. */
  readonly checksReads: boolean;
  /** Queued payload and topic bytes per session (maximumQueuedBytes); absent while nothing is queued. */
  readonly #queuedBytes = new WeakMap<Session, number>();
  /** Promises of durable writes made since the last takePending(); empty with a synchronous store. */
  #pending: Promise<void>[] = [];

  constructor(options: CoreOptions) {
    this.limits = options.limits;
    this.clock = options.clock;
    this.logger = options.logger;
    this.store = options.store;
    this.retained = options.retained;
    this.authenticator = options.authenticator;
    this.authorizer = options.authorizer;
    this.enhancedAuthenticator = options.enhancedAuthenticator;
    this.limitsHit = new LimitCounter(options.logger);
    this.connectionLog = new LogLimiter(options.logger, options.clock);
    this.checksReads = options.authorizer.canRead !== undefined;
    // A shared subscription prefers members that are connected.
    this.tree = new SubscriptionTree<Session>({ isAvailable: (m) => m.entry.owner.owner !== undefined });
    this.stats = {
      startedAt: this.clock.now(),
      clientsConnected: 0,
      clientsTotal: 0,
      messagesReceived: 0,
      messagesSent: 0,
      messagesDropped: 0,
      bytesReceived: 0,
      bytesSent: 0,
      protocolErrors: 0,
      closedBeforeConnect: 0,
    };
  }

  // --- persistence --------------------------------------------------------------------------------------------

  /** Writes through to the store; a returned promise is collected for the next takePending(). */
  persist(op: StoreOp): void {
    const r = applyStoreOp(this.store, op);
    if (r !== undefined) this.#pending.push(r);
  }

  /** A promise for all writes since the last call, or undefined when they all completed synchronously. */
  takePending(): Promise<void> | undefined {
    if (this.#pending.length === 0) return undefined;
    const all = this.#pending;
    this.#pending = [];
    if (all.length === 1) return all[0];
    return Promise.all(all).then(() => undefined);
  }

  /** Drops the wait on pending writes (QoS 0: no acknowledgement depends on them); failures are still logged. */
  discardPending(): void {
    const p = this.takePending();
    if (p !== undefined) p.catch((err: unknown) => this.logger.error({ err }, 'store write failed'));
  }

  /** Restores sessions from the store (startup). */
  async restore(): Promise<void> {
    const now = this.clock.now();
    for (const s of await this.store.loadSessions()) {
      const session = new Session(s.record.clientId, s.record.protocolVersion);
      session.expiryInterval = s.record.sessionExpiryInterval;
      session.durable = true;
      for (const sub of s.subscriptions) {
        session.subscriptions.set(sub.topicFilter, sub);
        this.#addToTree(session, sub);
      }
      for (const q of s.queue) {
        session.queue.push(q);
        session.nextSeq = Math.max(session.nextSeq, q.seq + 1);
      }
      if (s.queue.length > 0) this.#queuedBytes.set(session, s.queue.reduce((n, q) => n + queuedSize(q.delivery), 0));
      for (const o of s.outgoing) session.outgoing.set(o.packetId, o);
      for (const id of s.incomingQoS2) session.incomingQoS2.add(id);
      this.sessions.set(session.clientId, session);
      const since = s.record.disconnectedAt ?? now;
      this.#scheduleExpiry(session, Math.max(0, session.expiryInterval * 1000 - (now - since)));
      if (s.will !== undefined) {
        // The username is not stored with the session: the will's is the last connection's.
        session.username = s.will.username;
        // [MQTT-3.1.3-9] the rest of the delay, counting the downtime (at once when it ran out meanwhile); the
        // expiry timer above ends the session and sends the will earlier when the session ends first. Timers, not
        // a publish here: every stored session is in the tree before a will is routed.
        this.#deferWill(session, willOf(s.will), Math.max(0, s.will.dueAt - now));
      }
    }
  }

  // --- hooks -------------------------------------------------------------------------------------------------

  /** Authorizer.canPublish, with a throw turned into a refusal and a log line. */
  canPublish(clientId: string, username: string | undefined, topic: string, qos: QoS, retain: boolean): boolean {
    try {
      return this.authorizer.canPublish({ clientId, username, topic, qos, retain }) === true;
    } catch (err) {
      this.logger.error({ err, clientId, topic }, 'authorizer canPublish threw; publish refused');
      return false;
    }
  }

  canSubscribe(clientId: string, username: string | undefined, topicFilter: string, qos: QoS): boolean {
    try {
      return this.authorizer.canSubscribe({ clientId, username, topicFilter, qos }) === true;
    } catch (err) {
      this.logger.error({ err, clientId, topicFilter }, 'authorizer canSubscribe threw; subscription refused');
      return false;
    }
  }

  /** Authorizer.canRead (only called when {@link checksReads}); a throw withholds the message and is logged. */
  canRead(clientId: string, username: string | undefined, topic: string): boolean {
    try {
      return this.authorizer.canRead?.({ clientId, username, topic }) === true;
    } catch (err) {
      this.logger.error({ err, clientId, topic }, 'authorizer canRead threw; message withheld');
      return false;
    }
  }

  encodedLength(packet: Packet, version: ProtocolVersion): number {
    return encodedLength(packet, version);
  }

  // --- sessions ----------------------------------------------------------------------------------------------

  /**
   * Binds a session to a newly accepted connection: takes over a connected one [MQTT-3.1.4-3], ends the old
   * session on Clean Start [MQTT-3.1.2-4], or resumes it [MQTT-3.1.2-5].
   */
  connect(owner: SessionOwner, p: ConnectParams, now: number): { session: Session; sessionPresent: boolean } {
    let session = this.sessions.get(p.clientId);
    // [MQTT-3.1.4-3] the same client id already connected: the existing connection is closed (v5: 0x8E).
    if (session?.owner !== undefined) session.owner.disconnect(0x8e, now);
    session = this.sessions.get(p.clientId);
    if (session !== undefined && p.cleanStart) {
      this.endSession(session, now);
      session = undefined;
    }
    let sessionPresent = false;
    if (session === undefined) {
      session = new Session(p.clientId, p.protocolVersion);
      this.sessions.set(p.clientId, session);
    } else {
      sessionPresent = true;
      if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer);
      session.expiryTimer = undefined;
      const pending = session.pendingWill;
      if (pending !== undefined) {
        // [MQTT-3.1.3-9] a new connection before the Will Delay Interval passed: the will is not sent, and
        // [MQTT-3.1.2-10] leaves the stored session (committed before CONNACK, with the putSession below).
        if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
        session.pendingWill = undefined;
        if (session.durable) this.persist({ op: 'deleteWill', clientId: p.clientId });
      }
    }
    session.owner = owner;
    session.protocolVersion = p.protocolVersion;
    session.expiryInterval = p.expiryInterval;
    session.username = p.username;
    if (p.expiryInterval > 0) session.durable = true;
    if (session.durable) {
      this.persist({
        op: 'putSession',
        record: { clientId: p.clientId, protocolVersion: p.protocolVersion, sessionExpiryInterval: p.expiryInterval },
      });
    }
    this.stats.clientsConnected++;
    this.stats.clientsTotal++;
    return { session, sessionPresent };
  }

  /** The session's connection ended. Handles the will and the session expiry. */
  disconnected(session: Session, will: Will | undefined, now: number): void {
    session.owner = undefined;
    this.stats.clientsConnected--;
    if (will !== undefined) {
      const delay = session.protocolVersion === 5 ? (will.properties?.willDelayInterval ?? 0) : 0;
      if (delay > 0 && session.expiryInterval > 0) {
        // [MQTT-3.1.3-9] the will waits for its delay or the end of the session, whichever comes first.
        this.#deferWill(session, will, delay * 1000);
        // Stored with the session, so that a broker restart within the delay neither loses it nor sends it early.
        if (session.durable) {
          this.persist({ op: 'putWill', clientId: session.clientId, will: storedWill(will, now + delay * 1000, session.username) });
        }
      } else {
        // [MQTT-3.1.2-8] published when the connection closes without DISCONNECT 0x00.
        this.publishWill(session.clientId, will, now, session.username);
      }
    }
    if (session.expiryInterval === 0) {
      // [MQTT-3.1.2-?] Session Expiry Interval 0 (v3 Clean Session 1): the session ends with the connection.
      this.endSession(session, now);
      return;
    }
    if (session.durable) {
      this.persist({
        op: 'putSession',
        record: {
          clientId: session.clientId,
          protocolVersion: session.protocolVersion,
          sessionExpiryInterval: session.expiryInterval,
          disconnectedAt: now,
        },
      });
    }
    this.discardPending();
    this.#scheduleExpiry(session, session.expiryInterval * 1000);
  }

  #scheduleExpiry(session: Session, ms: number): void {
    if (session.expiryInterval === SESSION_NEVER_EXPIRES) return;
    this.#longTimeout(
      ms,
      () => {
        session.expiryTimer = undefined;
        if (session.owner === undefined) this.endSession(session, this.clock.now());
      },
      (timer) => (session.expiryTimer = timer),
    );
  }

  /**
   * Runs `fn` after `ms`, which may exceed setTimeout's limit (2^31-1 ms, ~24.8 days: a Session Expiry or Will Delay
   * Interval may be up to 2^32-1 s): longer waits re-arm in steps. `keep` gets each step's timer, so that clearing
   * the last one kept cancels the whole wait. Unref'ed: a waiting session does not keep the process alive.
   */
  #longTimeout(ms: number, fn: () => void, keep: (timer: TimerHandle) => void): void {
    const timer = this.clock.setTimeout(() => {
      if (ms > MAX_TIMER_MS) this.#longTimeout(ms - MAX_TIMER_MS, fn, keep);
      else fn();
    }, Math.min(ms, MAX_TIMER_MS));
    timer.unref?.();
    keep(timer);
  }

  /** Holds `will` for `ms` as the session's pending will; endSession() sends it earlier, a reconnect cancels it. */
  #deferWill(session: Session, will: Will, ms: number): void {
    const pending: NonNullable<Session['pendingWill']> = { will, timer: undefined };
    this.#longTimeout(
      ms,
      () => {
        if (session.pendingWill !== pending) return;
        session.pendingWill = undefined;
        // [MQTT-3.1.2-10] removed from the stored session once published.
        if (session.durable) this.persist({ op: 'deleteWill', clientId: session.clientId });
        this.publishWill(session.clientId, will, this.clock.now(), session.username);
        this.discardPending();
      },
      (timer) => (pending.timer = timer),
    );
    session.pendingWill = pending;
  }

  /**
   * Shutdown: cancels every session's expiry and will timer, so that nothing fires into a closed store. A durable
   * session's waiting will is stored and re-armed at the next start; a non-durable one ends with the process.
   */
  stopTimers(): void {
    for (const session of this.sessions.values()) {
      if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer);
      session.expiryTimer = undefined;
      const pending = session.pendingWill;
      if (pending?.timer !== undefined) this.clock.clearTimeout(pending.timer);
    }
  }

  /** Ends a session: its pending will goes out now, unacknowledged shared-subscription messages go to another member. */
  endSession(session: Session, now: number): void {
    if (this.sessions.get(session.clientId) !== session) return;
    this.sessions.delete(session.clientId);
    if (session.expiryTimer !== undefined) this.clock.clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
    this.tree.removeClient(session.clientId);
    // Deleting the stored session deletes its stored will too.
    if (session.durable) this.persist({ op: 'deleteSession', clientId: session.clientId });
    const pending = session.pendingWill;
    if (pending !== undefined) {
      if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
      session.pendingWill = undefined;
      this.publishWill(session.clientId, pending.will, now, session.username);
    }
    // MQTT 5.0 4.8.2: messages of a shared subscription not completed by a member whose session ends go to
    // another member of the group.
    const orphans: StoredDelivery[] = [];
    if (session.outgoingCount > 0) {
      for (const o of session.outgoing.values()) {
        if (o.state === 'publish' && o.delivery.shareFilter !== undefined) orphans.push(o.delivery);
      }
      session.outgoing.clear();
    }
    for (const q of session.queue) if (q.delivery.shareFilter !== undefined) orphans.push(q.delivery);
    session.queue.length = 0;
    this.#queuedBytes.delete(session);
    for (const d of orphans) this.#redeliverShared(d, now);
    this.discardPending();
  }

  #redeliverShared(d: StoredDelivery, now: number): void {
    const match = this.tree.match(d.message.topic, d.message.origin);
    for (const g of match.shared) {
      if (`$share/${g.shareName}/${g.topicFilter}` !== d.shareFilter) continue;
      this.#deliverShared(g, d.message, now, true);
      return;
    }
  }

  /** MQTT 5.0 4.8.2: one member of the share group receives the message. */
  #deliverShared(g: ShareGroup<Session>, message: StoredMessage, now: number, moved = false): void {
    const member = this.tree.pickMember(g) ?? g.members[0];
    if (member === undefined) return;
    const e = member.entry;
    const delivery = deliveryOf(message, e.qos, e.retainAsPublished);
    delivery.shareFilter = member.filter;
    if (e.subscriptionIdentifier !== undefined) delivery.subscriptionIdentifiers = [e.subscriptionIdentifier];
    this.#deliverTo(e.owner, delivery, now, moved);
  }

  // --- subscriptions -----------------------------------------------------------------------------------------

  /** Adds or replaces a subscription. @returns true when it did not exist before (Retain Handling 1). */
  subscribe(session: Session, sub: StoredSubscription): boolean {
    session.subscriptions.set(sub.topicFilter, sub);
    return this.#addToTree(session, sub);
  }

  #addToTree(session: Session, sub: StoredSubscription): boolean {
    const entry = {
      qos: sub.qos,
      noLocal: sub.noLocal,
      retainAsPublished: sub.retainAsPublished,
      retainHandling: sub.retainHandling,
      owner: session,
      ...(sub.subscriptionIdentifier === undefined ? {} : { subscriptionIdentifier: sub.subscriptionIdentifier }),
    };
    return this.tree.add(session.clientId, sub.topicFilter, entry);
  }

  /** @returns whether the subscription existed. */
  unsubscribe(session: Session, topicFilter: string): boolean {
    session.subscriptions.delete(topicFilter);
    return this.tree.remove(session.clientId, topicFilter);
  }

  // --- routing -----------------------------------------------------------------------------------------------

  /**
   * Routes an application message to every matching session and updates the retained store. Durable writes it
   * causes are collected for the caller's takePending().
   */
  publish(message: StoredMessage, now: number): void {
    if (message.retain && this.limits.retainAvailable) {
      // [MQTT-3.3.1-5] store (replace) the retained message; [MQTT-3.3.1-6] an empty payload clears it.
      const retained = { topic: message.topic, payload: message.payload, qos: message.qos, storedAt: now };
      if (message.properties !== undefined) Object.assign(retained, { properties: message.properties });
      if (message.expiresAt !== undefined) Object.assign(retained, { expiresAt: message.expiresAt });
      this.retained.set(message.topic, retained);
    }
    const match = this.tree.match(message.topic, message.origin);
    const clients = match.clients;
    for (let i = 0; i < clients.length; i++) {
      const c = clients[i];
      if (c === undefined) continue;
      const ids = c.subscriptionIdentifiers;
      const delivery = deliveryOf(message, c.qos, c.retainAsPublished);
      if (ids.length > 0) delivery.subscriptionIdentifiers = ids.slice();
      this.#deliverTo(c.owner, delivery, now);
    }
    const shared = match.shared;
    for (let i = 0; i < shared.length; i++) {
      const g = shared[i];
      if (g !== undefined) this.#deliverShared(g, message, now);
    }
  }

  #deliverTo(session: Session, delivery: StoredDelivery, now: number, moved = false): void {
    const owner = session.owner;
    if (owner !== undefined) owner.deliver(delivery, now, moved);
    // QoS 0 messages are not kept for offline sessions (MQTT 5.0 4.1: "MAY"); QoS 1/2 are [MQTT-3.1.2-5].
    else if (delivery.qos > 0) this.enqueue(session, delivery);
  }

  /** Publishes a will as an application message from `clientId`. */
  publishWill(clientId: string, will: Will, now: number, username?: string): void {
    const message: StoredMessage = {
      topic: will.topic,
      payload: will.payload,
      qos: will.qos,
      retain: will.retain,
      origin: clientId,
    };
    const p = will.properties;
    if (p !== undefined) {
      if (p.messageExpiryInterval !== undefined) message.expiresAt = now + p.messageExpiryInterval * 1000;
      const fwd = forwardedProperties(p);
      if (fwd !== undefined) message.properties = fwd;
    }
    // The will is authorized as a publish of its client at the time it goes out.
    if (!this.canPublish(clientId, username, will.topic, will.qos, will.retain)) return;
    this.stats.messagesReceived++;
    this.publish(message, now);
    this.discardPending();
  }

  #overflowLogged = 0;

  /**
   * Queues a message for a session (offline, or at its Receive Maximum). When the queue is full the
   * `queueOverflow` policy drops the oldest or the new message; drops are counted and logged (rate-limited).
   */
  enqueue(session: Session, delivery: StoredDelivery): void {
    if (this.limits.maximumQueuedBytes > 0 && !this.#fitBytes(session, delivery)) return;
    const limit = this.limits.maximumQueuedMessages;
    if (session.queue.length >= limit) {
      this.stats.messagesDropped++;
      if (this.limits.queueOverflow === 'dropNewest' || limit === 0) {
        this.#logOverflow(session);
        return;
      }
      const dropped = this.#shiftQueue(session);
      if (dropped !== undefined && session.durable) this.persist({ op: 'dequeue', clientId: session.clientId, seq: dropped.seq });
      this.#logOverflow(session);
    }
    const seq = session.nextSeq++;
    session.queue.push({ seq, delivery });
    if (this.limits.maximumQueuedBytes > 0) this.#queuedBytes.set(session, (this.#queuedBytes.get(session) ?? 0) + queuedSize(delivery));
    if (session.durable) this.persist({ op: 'enqueue', clientId: session.clientId, seq, delivery });
  }

  /**
   * maximumQueuedBytes: makes room for `delivery` by dropping the oldest messages (dropOldest), or reports that the
   * new one must be dropped (dropNewest, or larger than the whole limit). Drops are counted and logged.
   */
  #fitBytes(session: Session, delivery: StoredDelivery): boolean {
    const max = this.limits.maximumQueuedBytes;
    const size = queuedSize(delivery);
    if ((this.#queuedBytes.get(session) ?? 0) + size <= max) return true;
    this.limitsHit.hit('queuedBytes', session.clientId);
    if (this.limits.queueOverflow === 'dropNewest' || size > max) {
      this.stats.messagesDropped++;
      this.#logOverflow(session);
      return false;
    }
    while (session.queue.length > 0 && (this.#queuedBytes.get(session) ?? 0) + size > max) {
      const dropped = this.#shiftQueue(session);
      if (dropped === undefined) break;
      this.stats.messagesDropped++;
      if (session.durable) this.persist({ op: 'dequeue', clientId: session.clientId, seq: dropped.seq });
    }
    this.#logOverflow(session);
    return true;
  }

  /** Removes the oldest queued message, keeping the byte count. */
  #shiftQueue(session: Session): { seq: number; delivery: StoredDelivery } | undefined {
    const item = session.queue.shift();
    if (item !== undefined) this.dequeued(session, item.delivery);
    return item;
  }

  /** A queued message left the queue (sent, dropped): keeps the byte count of maximumQueuedBytes. */
  dequeued(session: Session, delivery: StoredDelivery): void {
    const bytes = this.#queuedBytes.get(session);
    if (bytes === undefined) return;
    if (session.queue.length === 0) this.#queuedBytes.delete(session);
    else this.#queuedBytes.set(session, bytes - queuedSize(delivery));
  }

  #logOverflow(session: Session): void {
    // Log the 1st, 2nd, 4th, 8th... drop: visible without flooding the log on the hot path.
    const n = ++this.#overflowLogged;
    if ((n & (n - 1)) === 0) {
      this.logger.warn(
        { clientId: session.clientId, policy: this.limits.queueOverflow, droppedTotal: this.stats.messagesDropped },
        'session queue full: message dropped',
      );
    }
  }

  /**
   * CONNECTs let through by maximumConnections whose authentication is still running. They count as connected:
   * otherwise every CONNECT arriving while an asynchronous authenticator works would pass the check.
   */
  #admitting = 0;

  /** Whether one more client may connect (maximumConnections; 0 = no limit). */
  get connectionsAvailable(): boolean {
    const max = this.limits.maximumConnections;
    return max === 0 || this.stats.clientsConnected + this.#admitting < max;
  }

  /** A CONNECT passed the maximumConnections check: it holds a place until connect() or its close. */
  holdConnectionPlace(): void {
    this.#admitting++;
  }

  releaseConnectionPlace(): void {
    this.#admitting--;
  }

  /** Number of subscriptions (shared included). */
  get subscriptionCount(): number {
    return this.tree.count;
  }

  /** Sends DISCONNECT 0x8B to every connected client (shutdown). */
  disconnectAll(reasonCode: number): void {
    const now = this.clock.now();
    for (const s of [...this.sessions.values()]) s.owner?.disconnect(reasonCode, now);
  }
}

/** setTimeout's longest delay (2^31-1 ms, ~24.8 days); longer ones fire at once, so long waits re-arm in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/** A will as stored while it waits for its delay. */
function storedWill(will: Will, dueAt: number, username: string | undefined): StoredWill {
  const out: StoredWill = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, dueAt };
  if (will.properties !== undefined) out.properties = will.properties;
  if (username !== undefined) out.username = username;
  return out;
}

function willOf(stored: StoredWill): Will {
  const will: Will = { topic: stored.topic, payload: stored.payload, qos: stored.qos, retain: stored.retain };
  if (stored.properties !== undefined) will.properties = stored.properties;
  return will;
}

/** What a queued message counts against maximumQueuedBytes: its payload and topic. */
function queuedSize(d: StoredDelivery): number {
  return d.message.payload.length + d.message.topic.length;
}

/** v5 PUBLISH (or will) properties forwarded unchanged; undefined when there are none. */
export function forwardedProperties(p: Properties): Properties | undefined {
  let out: Properties | undefined;
  // Payload Format Indicator [MQTT-3.3.2-4], Content Type [MQTT-3.3.2-20], Response Topic [MQTT-3.3.2-15],
  // Correlation Data [MQTT-3.3.2-16], User Properties in order [MQTT-3.3.2-17] [MQTT-3.3.2-18]: unaltered.
  if (p.payloadFormatIndicator !== undefined) (out ??= {}).payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.contentType !== undefined) (out ??= {}).contentType = p.contentType;
  if (p.responseTopic !== undefined) (out ??= {}).responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) (out ??= {}).correlationData = p.correlationData;
  if (p.userProperties !== undefined) (out ??= {}).userProperties = p.userProperties;
  return out;
}

/** What one subscription makes of a message: its QoS downgraded to the granted one, its RETAIN flag per Retain As Published. */
function deliveryOf(message: StoredMessage, granted: QoS, retainAsPublished: boolean): StoredDelivery {
  return {
    message,
    // Section 3.8.4 (both versions): delivered at the lower of the published and the granted QoS.
    qos: message.qos < granted ? message.qos : granted,
    // [MQTT-3.3.1-12] (3.1.1: [MQTT-3.3.1-9]) RETAIN is cleared on forwarding unless Retain As Published.
    retain: retainAsPublished ? message.retain : false,
  };
}
