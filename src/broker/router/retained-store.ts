/**
 * Retained messages: the store interface the broker routes through, and its in-memory implementation over a
 * topic trie. Pure data structure: no I/O, no timers; time comes in as `now`.
 */
import type { QoS } from '../../protocol/constants.js';
import type { Properties } from '../../protocol/packets.js';

const DOLLAR = 0x24;

/** A retained Application Message as stored. */
export interface RetainedMessage {
  readonly topic: string;
  /** Never empty: an empty payload clears the topic instead of being stored. */
  readonly payload: Buffer;
  readonly qos: QoS;
  /** v5 PUBLISH properties as received (the broker rewrites Message Expiry Interval when sending). */
  readonly properties?: Properties;
  /**
   * When the message expires, in the broker clock's milliseconds (the same clock as every `now` passed to the
   * store), computed from the v5 Message Expiry Interval. Absent: never expires.
   */
  readonly expiresAt?: number;
  /** When it was stored, same clock; lets the broker send the remaining expiry interval [MQTT-3.3.2-6]. */
  readonly storedAt: number;
}

/**
 * Where the broker keeps retained messages. Synchronous because it sits on the publish and subscribe hot paths.
 * A persistent implementation (SQLite, ...) keeps a memory mirror (e.g. a {@link MemoryRetainedStore}) that answers
 * every read, and writes changes through to storage; it loads the mirror at startup.
 *
 * Expired messages are never returned; `match`/`get` drop those they meet, `purgeExpired` drops the rest.
 */
export interface RetainedStore {
  /** Number of retained messages (expired ones not yet purged included). */
  readonly count: number;
  /** Payload bytes plus topic UTF-8 bytes of all retained messages (properties not counted). */
  readonly byteSize: number;
  /**
   * Stores `message` as the retained message of `topic`, replacing any previous one [MQTT-3.3.1-5]; an empty
   * payload removes it instead [MQTT-3.3.1-6] and is itself not stored [MQTT-3.3.1-7]
   * (3.1.1: [MQTT-3.3.1-10] [MQTT-3.3.1-11]). `message.topic` must equal `topic`.
   */
  set(topic: string, message: RetainedMessage): void;
  /** The retained message of exactly `topic`; when `now` is given, an expired one is dropped and not returned. */
  get(topic: string, now?: number): RetainedMessage | undefined;
  /** Removes the retained message of `topic` (admin API). @returns whether there was one. */
  delete(topic: string): boolean;
  /**
   * Retained messages whose topic matches the (valid, non-`$share`) topic filter, skipping and dropping expired
   * ones. Wildcards at the first level do not match `$` topics [MQTT-4.7.2-1]. Returns a fresh array, no order
   * guaranteed.
   */
  match(filter: string, now: number): RetainedMessage[];
  /** Drops every message with `expiresAt <= now`. @returns how many. */
  purgeExpired(now: number): number;
}

class TopicNode {
  children: Map<string, TopicNode> | undefined = undefined;
  message: RetainedMessage | undefined = undefined;
  /** The topic `message` is retained under (its key in the flat index). */
  topic = '';
  /** Bytes counted for `message` in byteSize. */
  bytes = 0;
  constructor(
    readonly parent: TopicNode | undefined,
    readonly key: string,
  ) {}
}

interface ExpiryItem {
  readonly at: number;
  readonly topic: string;
  readonly message: RetainedMessage;
}

function isExpired(message: RetainedMessage, now: number): boolean {
  return message.expiresAt !== undefined && message.expiresAt <= now;
}

/**
 * In-memory {@link RetainedStore}. A topic trie makes a filter with a literal prefix visit only that subtree; a flat
 * topic index makes `get`/`set` O(1); a min-heap on `expiresAt` makes `purgeExpired` proportional to what expires.
 */
export class MemoryRetainedStore implements RetainedStore {
  readonly #root = new TopicNode(undefined, '');
  readonly #byTopic = new Map<string, TopicNode>();
  #bytes = 0;
  /** Min-heap on `at`; entries whose message was replaced or removed are skipped lazily. */
  #heap: ExpiryItem[] = [];
  #expiring = 0;

  get count(): number {
    return this.#byTopic.size;
  }

  get byteSize(): number {
    return this.#bytes;
  }

  set(topic: string, message: RetainedMessage): void {
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-6] an empty retained payload removes the topic's retained message;
      // [MQTT-3.3.1-7] and is itself not stored.
      this.delete(topic);
      return;
    }
    let node = this.#byTopic.get(topic);
    if (node === undefined) {
      node = this.#root;
      for (const level of topic.split('/')) {
        const children: Map<string, TopicNode> = (node.children ??= new Map());
        let next: TopicNode | undefined = children.get(level);
        if (next === undefined) {
          next = new TopicNode(node, level);
          children.set(level, next);
        }
        node = next;
      }
      node.topic = topic;
      this.#byTopic.set(topic, node);
    } else {
      // [MQTT-3.3.1-5] a new retained message replaces the previous one.
      this.#unaccount(node);
    }
    node.message = message;
    node.bytes = message.payload.length + Buffer.byteLength(topic);
    this.#bytes += node.bytes;
    if (message.expiresAt !== undefined) {
      this.#expiring++;
      this.#heapPush({ at: message.expiresAt, topic, message });
    }
  }

  get(topic: string, now?: number): RetainedMessage | undefined {
    const node = this.#byTopic.get(topic);
    if (node === undefined) return undefined;
    const message = node.message as RetainedMessage;
    if (now !== undefined && isExpired(message, now)) {
      this.delete(topic);
      return undefined;
    }
    return message;
  }

  delete(topic: string): boolean {
    const node = this.#byTopic.get(topic);
    if (node === undefined) return false;
    this.#byTopic.delete(topic);
    this.#unaccount(node);
    node.message = undefined;
    this.#prune(node);
    return true;
  }

  match(filter: string, now: number): RetainedMessage[] {
    if (filter.indexOf('+') === -1 && filter.indexOf('#') === -1) {
      // No wildcard: the filter is a topic name.
      const message = this.get(filter, now);
      return message === undefined ? [] : [message];
    }
    const out: RetainedMessage[] = [];
    const expired: string[] = [];
    const levels = filter.split('/');
    const visit = (node: TopicNode, i: number): void => {
      if (i === levels.length) {
        take(node);
        return;
      }
      const level = levels[i] as string;
      const children = node.children;
      if (level === '#') {
        // '#' also matches the parent level: 'a/#' matches 'a' (the root holds no message).
        take(node);
        if (children !== undefined) {
          for (const child of children.values()) {
            // [MQTT-4.7.2-1] a first-level wildcard does not match '$' topics.
            if (i === 0 && child.key.charCodeAt(0) === DOLLAR) continue;
            all(child);
          }
        }
        return;
      }
      if (children === undefined) return;
      if (level === '+') {
        for (const child of children.values()) {
          // [MQTT-4.7.2-1]
          if (i === 0 && child.key.charCodeAt(0) === DOLLAR) continue;
          visit(child, i + 1);
        }
        return;
      }
      const child = children.get(level);
      if (child !== undefined) visit(child, i + 1);
    };
    const all = (node: TopicNode): void => {
      take(node);
      if (node.children !== undefined) for (const child of node.children.values()) all(child);
    };
    const take = (node: TopicNode): void => {
      const message = node.message;
      if (message === undefined) return;
      if (isExpired(message, now)) expired.push(node.topic);
      else out.push(message);
    };
    visit(this.#root, 0);
    // Deleting after the walk: pruning while iterating the children maps would skip siblings.
    for (const topic of expired) this.delete(topic);
    return out;
  }

  purgeExpired(now: number): number {
    let purged = 0;
    // Re-read #heap each turn: delete() may rebuild it.
    while (this.#heap.length > 0 && (this.#heap[0] as ExpiryItem).at <= now) {
      const item = this.#heapPop();
      const node = this.#byTopic.get(item.topic);
      if (node !== undefined && node.message === item.message) {
        this.delete(item.topic);
        purged++;
      }
    }
    return purged;
  }

  #unaccount(node: TopicNode): void {
    this.#bytes -= node.bytes;
    node.bytes = 0;
    if (node.message?.expiresAt !== undefined) {
      this.#expiring--;
      // Replaced/removed messages stay in the heap until popped; rebuild when they dominate.
      if (this.#heap.length > 64 && this.#heap.length > 2 * this.#expiring) this.#rebuildHeap(node);
    }
  }

  /** Rebuilds the heap from live messages, leaving out `dropping` (about to be replaced or removed). */
  #rebuildHeap(dropping: TopicNode): void {
    const items: ExpiryItem[] = [];
    for (const [topic, node] of this.#byTopic) {
      const message = node.message;
      if (node !== dropping && message?.expiresAt !== undefined) items.push({ at: message.expiresAt, topic, message });
    }
    items.sort((a, b) => a.at - b.at); // a sorted array is a valid min-heap
    this.#heap = items;
  }

  #prune(start: TopicNode): void {
    let node = start;
    while (
      node.parent !== undefined &&
      node.message === undefined &&
      (node.children === undefined || node.children.size === 0)
    ) {
      node.parent.children?.delete(node.key);
      node = node.parent;
    }
  }

  #heapPush(item: ExpiryItem): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as ExpiryItem;
      if (p.at <= item.at) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  #heapPop(): ExpiryItem {
    const heap = this.#heap;
    const top = heap[0] as ExpiryItem;
    const last = heap.pop() as ExpiryItem;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (heap[r] as ExpiryItem).at < (heap[l] as ExpiryItem).at ? r : l;
        if ((heap[c] as ExpiryItem).at >= last.at) break;
        heap[i] = heap[c] as ExpiryItem;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}
