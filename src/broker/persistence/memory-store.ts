/**
 * The in-memory {@link Store}: every method completes synchronously, so the broker awaits nothing.
 * Nothing survives a restart. Records are copied on write so callers may mutate their objects afterwards.
 */
import type {
  PersistedSession,
  SessionRecord,
  Store,
  StoredDelivery,
  StoredOutgoing,
  StoredSubscription,
  StoredWill,
} from './store.js';

interface Entry {
  record: SessionRecord;
  subscriptions: Map<string, StoredSubscription>;
  queue: Map<number, StoredDelivery>;
  outgoing: Map<number, StoredOutgoing>;
  incomingQoS2: Set<number>;
  will: StoredWill | undefined;
}

export class MemoryStore implements Store {
  readonly #sessions = new Map<string, Entry>();

  #entry(clientId: string): Entry | undefined {
    return this.#sessions.get(clientId);
  }

  loadSessions(): PersistedSession[] {
    const out: PersistedSession[] = [];
    for (const e of this.#sessions.values()) {
      const s: PersistedSession = {
        record: { ...e.record },
        subscriptions: [...e.subscriptions.values()].map((x) => ({ ...x })),
        queue: [...e.queue].sort((a, b) => a[0] - b[0]).map(([seq, delivery]) => ({ seq, delivery })),
        outgoing: [...e.outgoing.values()].map((o) => ({ ...o })),
        incomingQoS2: [...e.incomingQoS2],
      };
      if (e.will !== undefined) s.will = { ...e.will };
      out.push(s);
    }
    return out;
  }

  putSession(record: SessionRecord): void {
    const e = this.#sessions.get(record.clientId);
    if (e) e.record = { ...record };
    else {
      this.#sessions.set(record.clientId, {
        record: { ...record },
        subscriptions: new Map(),
        queue: new Map(),
        outgoing: new Map(),
        incomingQoS2: new Set(),
        will: undefined,
      });
    }
  }

  deleteSession(clientId: string): void {
    this.#sessions.delete(clientId);
  }

  putSubscription(clientId: string, subscription: StoredSubscription): void {
    this.#entry(clientId)?.subscriptions.set(subscription.topicFilter, { ...subscription });
  }

  deleteSubscription(clientId: string, topicFilter: string): void {
    this.#entry(clientId)?.subscriptions.delete(topicFilter);
  }

  putWill(clientId: string, will: StoredWill): void {
    const e = this.#entry(clientId);
    if (e !== undefined) e.will = { ...will };
  }

  deleteWill(clientId: string): void {
    const e = this.#entry(clientId);
    if (e !== undefined) e.will = undefined;
  }

  enqueue(clientId: string, seq: number, delivery: StoredDelivery): void {
    this.#entry(clientId)?.queue.set(seq, delivery);
  }

  dequeue(clientId: string, seq: number): void {
    this.#entry(clientId)?.queue.delete(seq);
  }

  putOutgoing(clientId: string, outgoing: StoredOutgoing): void {
    // Map.set on an existing key keeps its insertion position: the resend order stays the first-send order.
    this.#entry(clientId)?.outgoing.set(outgoing.packetId, { ...outgoing });
  }

  deleteOutgoing(clientId: string, packetId: number): void {
    this.#entry(clientId)?.outgoing.delete(packetId);
  }

  putIncomingQoS2(clientId: string, packetId: number): void {
    this.#entry(clientId)?.incomingQoS2.add(packetId);
  }

  deleteIncomingQoS2(clientId: string, packetId: number): void {
    this.#entry(clientId)?.incomingQoS2.delete(packetId);
  }

  close(): void {
    this.#sessions.clear();
  }
}
