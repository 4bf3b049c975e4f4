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
  /**
   * v5 PUBLISH properties as received, minus Topic Alias (connection-scoped). The broker rewrites Message Expiry
   * Interval when sending.
   */
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
 * every read, and writes changes through to storage; it loads the mirror at startup. `expiresAt`/`storedAt` are in
 * the broker clock, which need not survive a restart: such a store persists remaining time or wall-clock time and
 * converts when loading.
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

/** Cleared topics tolerated before a sweep is considered. */
const SWEEP_MIN = 1024;

/**
 * In-memory {@link RetainedStore}. A topic trie makes a filter with a literal prefix visit only that subtree; a flat
 * topic index makes `get`/`set` O(1); a min-heap on `expiresAt` makes `purgeExpired` proportional to what expires.
 * Cleared topics keep their (empty) entries until a bulk sweep: deleting and re-adding the same key of a large V8
 * Map, as a topic whose retained message is set and cleared in a loop would, degrades that key's bucket chain.
 * Traversals are iterative: a topic can have tens of thousands of levels.
 */
export class MemoryRetainedStore implements RetainedStore {
  readonly #root = new TopicNode(undefined, '');
  /** Topic -> node, cleared (message-less) nodes included until the next sweep. */
  readonly #byTopic = new Map<string, TopicNode>();
  #cleared = 0;
  #bytes = 0;
  /** Min-heap on `at`; entries whose message was replaced or removed are skipped lazily. */
  #heap: ExpiryItem[] = [];
  #expiring = 0;

  get count(): number {
    return this.#byTopic.size - this.#cleared;
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
    } else if (node.message === undefined) {
      this.#cleared--;
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
    const message = this.#byTopic.get(topic)?.message;
    if (message === undefined) return undefined;
    if (now !== undefined && isExpired(message, now)) {
      this.delete(topic);
      return undefined;
    }
    return message;
  }

  delete(topic: string): boolean {
    const node = this.#byTopic.get(topic);
    if (node?.message === undefined) return false;
    this.#unaccount(node);
    node.message = undefined;
    if (++this.#cleared > SWEEP_MIN && this.#cleared > this.#byTopic.size / 2) this.#sweep();
    return true;
  }

  match(filter: string, now: number): RetainedMessage[] {
    if (filter.indexOf('+') === -1 && filter.indexOf('#') === -1) {
      // No wildcard: the filter is a topic name.
      const message = this.get(filter, now);
      return message === undefined ? [] : [message];
    }
    const out: RetainedMessage[] = [];
    let expired: TopicNode[] | undefined;
    const take = (node: TopicNode): void => {
      const message = node.message;
      if (message === undefined) return;
      if (isExpired(message, now)) (expired ??= []).push(node);
      else out.push(message);
    };
    const levels = filter.split('/');
    const last = levels.length;
    // Depth-first over (node, filter levels consumed); `whole` collects entire subtrees for '#'.
    const nodes: TopicNode[] = [this.#root];
    const depths: number[] = [0];
    const whole: TopicNode[] = [];
    while (nodes.length > 0) {
      const node = nodes.pop() as TopicNode;
      const i = depths.pop() as number;
      if (i === last) {
        take(node);
        continue;
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
            whole.push(child);
          }
        }
        continue;
      }
      if (children === undefined) continue;
      if (level === '+') {
        for (const child of children.values()) {
          // [MQTT-4.7.2-1]
          if (i === 0 && child.key.charCodeAt(0) === DOLLAR) continue;
          nodes.push(child);
          depths.push(i + 1);
        }
      } else {
        const child = children.get(level);
        if (child !== undefined) {
          nodes.push(child);
          depths.push(i + 1);
        }
      }
    }
    while (whole.length > 0) {
      const node = whole.pop() as TopicNode;
      take(node);
      if (node.children !== undefined) for (const child of node.children.values()) whole.push(child);
    }
    // Deleted after the walk, so no children map changes while it is iterated.
    if (expired !== undefined) for (const node of expired) this.delete(node.topic);
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

  /** Drops cleared topics from the index and their empty branches from the trie. */
  #sweep(): void {
    this.#cleared = 0;
    for (const [topic, node] of this.#byTopic) {
      if (node.message !== undefined) continue;
      this.#byTopic.delete(topic);
      let n: TopicNode = node;
      while (n.parent !== undefined && n.message === undefined && (n.children === undefined || n.children.size === 0)) {
        n.parent.children?.delete(n.key);
        n = n.parent;
      }
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
