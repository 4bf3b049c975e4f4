import type { Properties } from '../protocol/packets.js';

/** One outgoing QoS 1/2 message as a store keeps it. */
export interface StoredMessage {
  packetId: number;
  /** 'publish': PUBLISH not yet acknowledged; 'pubrel': PUBREC received, PUBCOMP outstanding (QoS 2). */
  state: 'publish' | 'pubrel';
  topic: string;
  payload: Uint8Array;
  qos: 1 | 2;
  retain: boolean;
  properties?: Properties;
}

/**
 * Durable record of outgoing QoS 1/2 flows. The client calls the methods in order without waiting for
 * earlier calls, so a store must apply them in call order (FileStore batches them into one write and one
 * fdatasync). A message counts as accepted once its `put` resolved, and PUBREL is sent only after
 * `release` resolved (so a restarted client never re-sends a PUBLISH the broker already released).
 */
export interface OutgoingStore {
  /** Every message not yet completed, in the order it was published. */
  load(): Promise<StoredMessage[]>;
  put(message: StoredMessage): Promise<void>;
  release(packetId: number): Promise<void>;
  delete(packetId: number): Promise<void>;
  close(): Promise<void>;
}

/** Keeps flows in memory only: survives reconnects, not a restart. What the client uses without a store. */
export class MemoryStore implements OutgoingStore {
  #messages = new Map<number, StoredMessage>();
  load(): Promise<StoredMessage[]> {
    return Promise.resolve([...this.#messages.values()]);
  }
  put(message: StoredMessage): Promise<void> {
    this.#messages.set(message.packetId, message);
    return Promise.resolve();
  }
  release(packetId: number): Promise<void> {
    const m = this.#messages.get(packetId);
    if (m !== undefined) m.state = 'pubrel';
    return Promise.resolve();
  }
  delete(packetId: number): Promise<void> {
    this.#messages.delete(packetId);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
