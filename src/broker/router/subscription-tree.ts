/**
 * Subscription trie over topic levels: plain subscriptions with `+`/`#`, and shared subscriptions
 * (`$share/{ShareName}/{filter}`) kept as groups on the same nodes. Pure data structure: no I/O, no timers.
 */
import type { QoS } from '../../protocol/constants.js';
import type { RetainHandling } from '../../protocol/packets.js';
import { parseSharedSubscription } from '../../protocol/topic.js';

const DOLLAR = 0x24;

/** The shared empty output; frozen, and every push site checks for it first. */
const NONE: never[] = [];
Object.freeze(NONE);
const EMPTY_RESULT: MatchResult<never> = Object.freeze({ clients: NONE, shared: NONE });

/**
 * One subscription as granted by the broker. `owner` is opaque to the tree: the broker stores whatever lets it reach
 * the session (typically the session object itself), so routing needs no extra map lookup.
 */
export interface SubscriptionEntry<O = unknown> {
  /** Granted (not requested) maximum QoS. */
  readonly qos: QoS;
  /** v5 No Local; always false from v3 clients. Never true on a shared subscription [MQTT-3.8.3-4]. */
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: RetainHandling;
  /** v5 Subscription Identifier (1..268,435,455), when the SUBSCRIBE carried one. */
  readonly subscriptionIdentifier?: number;
  readonly owner: O;
}

/** A stored subscription, as returned by {@link SubscriptionTree.get} and {@link SubscriptionTree.pickMember}. */
export interface SubscriptionInfo<O = unknown> {
  readonly clientId: string;
  /** The filter exactly as subscribed, including any `$share/{ShareName}/` prefix. */
  readonly filter: string;
  /** The filter used for matching (without the `$share/{ShareName}/` prefix). */
  readonly topicFilter: string;
  /**
   * ShareName when this is a shared subscription, else undefined. Retained messages go to new Non-shared
   * Subscriptions only (MQTT 5.0 section 3.3.1.3): the broker checks this before consulting the retained store.
   */
  readonly shareName: string | undefined;
  readonly entry: SubscriptionEntry<O>;
}

/**
 * One client's combined view of all its non-shared subscriptions matching a topic (one result per client,
 * MQTT 5.0 section 3.3.4: "single copy" delivery).
 */
export interface MatchedClient<O = unknown> {
  readonly clientId: string;
  /** Owner of the client's most recently added (or replaced) subscription. */
  readonly owner: O;
  /** Maximum granted QoS over the matching subscriptions [MQTT-3.3.4-2] (3.1.1: [MQTT-3.3.5-1]). */
  readonly qos: QoS;
  /**
   * True when ANY matching subscription has Retain As Published. A single copy cannot both keep and clear RETAIN;
   * keeping it loses nothing for the subscription that asked for it, and RETAIN on a forwarded message is only
   * informational to the other one.
   */
  readonly retainAsPublished: boolean;
  /**
   * Subscription Identifiers of every matching subscription that has one, order not significant [MQTT-3.3.4-4].
   * May be an array shared with the tree (frozen): never mutate it.
   */
  readonly subscriptionIdentifiers: readonly number[];
}

/** A shared subscription: all sessions subscribed to `$share/{shareName}/{topicFilter}`. */
export interface ShareGroup<O = unknown> {
  readonly shareName: string;
  readonly topicFilter: string;
  /** Members in subscription order (round-robin order). */
  readonly members: readonly SubscriptionInfo<O>[];
}

/**
 * Result of {@link SubscriptionTree.match}. Never mutated after it is returned, so it may be kept, and a `match`
 * nested inside the loop that delivers it (a session ending mid-delivery re-routing its shared messages, say)
 * cannot change it. Cost per publish: one small object per matched client plus the arrays, nothing when nothing
 * matches; identifier arrays are shared with the subscriptions unless overlapping subscriptions add up several.
 * The {@link ShareGroup} objects are live: their `members` follow later subscribes and unsubscribes.
 */
export interface MatchResult<O = unknown> {
  /** One entry per client with at least one matching non-shared subscription. */
  readonly clients: readonly MatchedClient<O>[];
  /**
   * Every shared subscription whose filter matches; the broker delivers to exactly one member of each, chosen by
   * {@link SubscriptionTree.pickMember} (MQTT 5.0 section 4.8.2). A client in a group and also subscribed
   * directly gets both copies: they are distinct subscriptions.
   */
  readonly shared: readonly ShareGroup<O>[];
}

export interface SubscriptionTreeOptions<O> {
  /**
   * Tells {@link SubscriptionTree.pickMember} whether a group member can take a message now (e.g. its session
   * is connected). Default: every member is available.
   */
  isAvailable?: (member: SubscriptionInfo<O>) => boolean;
  /**
   * Entries of the topic -> matching-trie-nodes cache used by {@link SubscriptionTree.match}; 0 disables it.
   * Default 16,384. It maps a topic to the nodes its walk reaches, so adding or removing subscriptions on existing
   * filters keeps it valid. A new literal filter drops one entry; a wildcard filter new to the tree clears it.
   * Topics longer than 256 characters bypass it.
   */
  matchCacheSize?: number;
}

class Node<O> {
  children: Map<string, Node<O>> | undefined = undefined;
  plus: Node<O> | undefined = undefined;
  hash: Node<O> | undefined = undefined;
  readonly subs: Sub<O>[] = [];
  groups: Group<O>[] | undefined = undefined;
  constructor(
    readonly parent: Node<O> | undefined,
    readonly key: string,
  ) {}

  isEmpty(): boolean {
    return (
      this.subs.length === 0 &&
      this.groups === undefined &&
      this.plus === undefined &&
      this.hash === undefined &&
      (this.children === undefined || this.children.size === 0)
    );
  }
}

class MatchedClientImpl<O> implements MatchedClient<O> {
  /** False while `subscriptionIdentifiers` is a subscription's frozen `ids`, true once this match copied it. */
  idsOwned = false;
  constructor(
    readonly clientId: string,
    readonly owner: O,
    public qos: QoS,
    public retainAsPublished: boolean,
    public subscriptionIdentifiers: readonly number[],
  ) {}
}

class ClientRecord<O> {
  /** Full filter -> subscription (shared ones included). */
  readonly subs = new Map<string, Sub<O>>();
  /** Match generation that created `matched`; dedupes overlapping subscriptions without a Map. */
  gen = 0;
  /** This client's result in the match of generation `gen`. */
  matched: MatchedClientImpl<O> | undefined = undefined;
  constructor(
    readonly clientId: string,
    public owner: O,
  ) {}
}

class Sub<O> implements SubscriptionInfo<O> {
  /** Position in node.subs (plain) — kept for O(1) removal. */
  index = -1;
  /** Frozen `[subscriptionIdentifier]` or NONE: the common single-subscription match shares it, no allocation. */
  ids: readonly number[] = NONE;
  #entry: SubscriptionEntry<O>;
  constructor(
    readonly client: ClientRecord<O>,
    readonly filter: string,
    readonly topicFilter: string,
    readonly shareName: string | undefined,
    entry: SubscriptionEntry<O>,
    readonly node: Node<O>,
    readonly group: Group<O> | undefined,
  ) {
    this.#entry = entry;
    this.entry = entry;
  }
  get entry(): SubscriptionEntry<O> {
    return this.#entry;
  }
  set entry(entry: SubscriptionEntry<O>) {
    this.#entry = entry;
    const id = entry.subscriptionIdentifier;
    this.ids = id === undefined ? NONE : Object.freeze([id]);
  }
  get clientId(): string {
    return this.client.clientId;
  }
}

class Group<O> implements ShareGroup<O> {
  readonly members: Sub<O>[] = [];
  /** Index of the member to try first on the next pick. */
  cursor = 0;
  constructor(
    readonly shareName: string,
    readonly topicFilter: string,
    readonly node: Node<O>,
  ) {}
}

const alwaysAvailable = (): boolean => true;
const DEFAULT_CACHE_SIZE = 16_384;
const CACHE_MAX_TOPIC_LENGTH = 256;
/** Empty records/nodes tolerated before a sweep is considered. */
const SWEEP_MIN = 1024;

/**
 * Topic trie holding every subscription of the broker. All methods are synchronous and throw nothing of their own
 * (only what an `isAvailable` callback throws).
 * Filters must already be valid (isValidTopicFilter / parseSharedSubscription from src/protocol/topic.ts);
 * a malformed `$share/...` filter is stored as an ordinary filter.
 *
 * @typeParam O - the broker's opaque per-subscription owner (e.g. its Session).
 */
export class SubscriptionTree<O = unknown> {
  readonly #root = new Node<O>(undefined, '');
  readonly #clients = new Map<string, ClientRecord<O>>();
  readonly #isAvailable: (member: SubscriptionInfo<O>) => boolean;

  // Walk cache: topic -> nodes whose subscriptions/groups the walk collects (see matchCacheSize).
  readonly #cache = new Map<string, Node<O>[]>();
  readonly #cacheSize: number;
  /** Nodes collected by the current (uncached) walk, when it is to be cached. */
  #recording: Node<O>[] | undefined = undefined;
  #cacheHits = 0;
  #cacheMisses = 0;
  /** Matches left to run without the cache after it proved useless (more misses than hits while filling). */
  #cacheCooldown = 0;
  #count = 0;
  /**
   * Client records and trie nodes left empty by removals. They are deleted in bulk sweeps, not one by one: V8's
   * Map keeps a deleted entry in its bucket chain until the next rehash, so deleting and re-adding the SAME key of
   * a large map (a client flapping, re-subscribing the same per-device filter) makes that chain, and every later
   * operation on the key, grow with each cycle (measured: 21 us per delete+set in a 10k-entry map).
   */
  #emptyClients = 0;
  #emptiedNodes = 0;

  // Match scratch state, reused across calls (never part of a result).
  readonly #levels: string[] = [];
  // Explicit walk stack: a topic may have ~32k levels, too deep for recursion.
  readonly #stackNodes: Node<O>[] = [];
  readonly #stackLevels: number[] = [];
  #gen = 0;
  #publisher: string | undefined = undefined;
  // Output arrays, allocated lazily per match (`arr.length = 0` on a reused array costs more than a fresh one).
  #clientsOut: MatchedClientImpl<O>[] = NONE;
  #sharedOut: Group<O>[] = NONE;

  constructor(options: SubscriptionTreeOptions<O> = {}) {
    this.#isAvailable = options.isAvailable ?? alwaysAvailable;
    this.#cacheSize = Math.max(0, options.matchCacheSize ?? DEFAULT_CACHE_SIZE);
  }

  /** Number of subscriptions, shared ones included. */
  get count(): number {
    return this.#count;
  }

  /** Number of clients holding at least one subscription. */
  get clientCount(): number {
    return this.#clients.size - this.#emptyClients;
  }

  /**
   * Adds a subscription, or replaces the client's existing one with the identical filter.
   * @returns true when new; false when it replaced an existing subscription [MQTT-3.8.4-3] — the broker uses this
   *   for Retain Handling 1 ("send retained only if the subscription did not exist").
   */
  add(clientId: string, filter: string, entry: SubscriptionEntry<O>): boolean {
    let client = this.#clients.get(clientId);
    if (client === undefined) {
      client = new ClientRecord(clientId, entry.owner);
      this.#clients.set(clientId, client);
    } else if (client.subs.size === 0) {
      this.#emptyClients--;
    }
    client.owner = entry.owner;
    const existing = client.subs.get(filter);
    if (existing !== undefined) {
      // [MQTT-3.8.4-3] same filter for the same session: replace in place, keeping position and round-robin order.
      existing.entry = entry;
      return false;
    }

    const share = parseSharedSubscription(filter);
    let sub: Sub<O>;
    if (share !== undefined && !('error' in share)) {
      const node = this.#nodeFor(share.filter);
      let group = node.groups?.find((g) => g.shareName === share.group);
      if (group === undefined) {
        group = new Group(share.group, share.filter, node);
        (node.groups ??= []).push(group);
      }
      sub = new Sub(client, filter, share.filter, share.group, entry, node, group);
      sub.index = group.members.length;
      group.members.push(sub);
    } else {
      const node = this.#nodeFor(filter);
      sub = new Sub(client, filter, filter, undefined, entry, node, undefined);
      sub.index = node.subs.length;
      node.subs.push(sub);
    }
    client.subs.set(filter, sub);
    this.#count++;
    return true;
  }

  /**
   * Removes the client's subscription with exactly this filter (as subscribed, `$share/...` included).
   * @returns whether it existed (v5 UNSUBACK: Success vs No subscription existed).
   */
  remove(clientId: string, filter: string): boolean {
    const client = this.#clients.get(clientId);
    if (client === undefined) return false;
    const sub = client.subs.get(filter);
    if (sub === undefined) return false;
    client.subs.delete(filter);
    this.#detach(sub);
    if (client.subs.size === 0) this.#clientEmptied();
    return true;
  }

  /** Removes every subscription of the client (session ended). O(its subscriptions). @returns how many. */
  removeClient(clientId: string): number {
    const client = this.#clients.get(clientId);
    if (client === undefined) return 0;
    const n = client.subs.size;
    if (n === 0) return 0;
    for (const sub of client.subs.values()) this.#detach(sub);
    client.subs.clear();
    this.#clientEmptied();
    return n;
  }

  /** The client's subscription with exactly this filter, if any. */
  get(clientId: string, filter: string): SubscriptionInfo<O> | undefined {
    return this.#clients.get(clientId)?.subs.get(filter);
  }

  /** All subscriptions of a client (for session persistence and the admin API). Do not mutate the tree meanwhile. */
  subscriptionsOf(clientId: string): IterableIterator<SubscriptionInfo<O>> {
    const client = this.#clients.get(clientId);
    return (client?.subs ?? new Map<string, Sub<O>>()).values();
  }

  /**
   * Finds every subscription matching a PUBLISH topic name.
   *
   * - one {@link MatchedClient} per client, merging overlapping subscriptions [MQTT-3.3.4-2] [MQTT-3.3.4-4];
   * - a noLocal subscription does not match when `publisherClientId` is its client [MQTT-3.8.3-3];
   * - `#` and `+` as first level do not match topics starting with `$` [MQTT-4.7.2-1];
   * - `a/#` matches `a` (its parent level); `+` matches an empty level; levels compare exactly, with no
   *   normalisation [MQTT-4.7.3-4].
   *
   * `topic` must be a valid Topic Name (no wildcards).
   */
  match(topic: string, publisherClientId?: string): MatchResult<O> {
    this.#clientsOut = NONE;
    this.#sharedOut = NONE;
    if (this.#count === 0) return EMPTY_RESULT;
    this.#gen++;
    this.#publisher = publisherClientId;

    let record = false;
    if (this.#cacheSize > 0 && topic.length <= CACHE_MAX_TOPIC_LENGTH) {
      if (this.#cacheCooldown > 0) {
        this.#cacheCooldown--;
      } else {
        const nodes = this.#cache.get(topic);
        if (nodes !== undefined) {
          this.#cacheHits++;
          for (let k = 0; k < nodes.length; k++) this.#collect(nodes[k] as Node<O>);
          return this.#output();
        }
        record = true;
      }
    }
    if (record) this.#recording = [];

    // Split on '/' without regex or String#split's fresh array; '' levels are kept ('a//b', '/x').
    const levels = this.#levels;
    let n = 0;
    let start = 0;
    for (;;) {
      const slash = topic.indexOf('/', start);
      if (slash === -1) {
        levels[n++] = start === 0 ? topic : topic.slice(start);
        break;
      }
      levels[n++] = topic.slice(start, slash);
      start = slash + 1;
    }

    const root = this.#root;
    const nodes = this.#stackNodes;
    const depths = this.#stackLevels;
    let sp = 0;
    if (topic.charCodeAt(0) !== DOLLAR) {
      // [MQTT-4.7.2-1] only non-'$' topics reach first-level wildcards.
      if (root.hash !== undefined) this.#collect(root.hash);
      if (root.plus !== undefined) {
        nodes[sp] = root.plus;
        depths[sp++] = 1;
      }
    }
    const first = root.children?.get(levels[0] as string);
    if (first !== undefined) {
      nodes[sp] = first;
      depths[sp++] = 1;
    }
    // Depth-first over (node, number of levels consumed); each node is reached at most once per topic.
    while (sp > 0) {
      const node = nodes[--sp] as Node<O>;
      const i = depths[sp] as number;
      // '#' below this node matches the remaining levels, and also this level itself ('a/#' matches 'a').
      if (node.hash !== undefined) this.#collect(node.hash);
      if (i === n) {
        this.#collect(node);
        continue;
      }
      if (node.plus !== undefined) {
        nodes[sp] = node.plus;
        depths[sp++] = i + 1;
      }
      const child = node.children?.get(levels[i] as string);
      if (child !== undefined) {
        nodes[sp] = child;
        depths[sp++] = i + 1;
      }
    }
    // Drop references to the topic's substrings so they can be collected.
    for (let i = 0; i < n; i++) levels[i] = '';
    if (record) this.#remember(topic);
    return this.#output();
  }

  #output(): MatchResult<O> {
    const clients = this.#clientsOut;
    const shared = this.#sharedOut;
    // Release them: the tree keeps no reference to a result it handed out.
    this.#clientsOut = NONE;
    this.#sharedOut = NONE;
    return clients === NONE && shared === NONE ? EMPTY_RESULT : { clients, shared };
  }

  /**
   * Picks the member of a shared subscription that receives the next message: round-robin over the members,
   * skipping those the `isAvailable` option rejects. Each call advances the rotation, so call it once per message
   * and group. @returns undefined when the group has no available member (the broker decides whether to drop or
   * queue the message for one of `group.members`).
   */
  pickMember(group: ShareGroup<O>): SubscriptionInfo<O> | undefined {
    if (!(group instanceof Group)) return undefined;
    const members = (group as Group<O>).members;
    const n = members.length;
    for (let k = 0; k < n; k++) {
      let i = group.cursor + k;
      if (i >= n) i -= n;
      const member = members[i] as Sub<O>;
      if (this.#isAvailable(member)) {
        group.cursor = i + 1 === n ? 0 : i + 1;
        return member;
      }
    }
    return undefined;
  }

  #collect(node: Node<O>): void {
    // Recorded even when empty now: subscriptions added to this node later are then found through the cache.
    if (this.#recording !== undefined) this.#recording.push(node);
    const subs = node.subs;
    for (let k = 0; k < subs.length; k++) {
      const sub = subs[k] as Sub<O>;
      const entry = sub.entry;
      const client = sub.client;
      // [MQTT-3.8.3-3] No Local: not to the publishing client id.
      if (entry.noLocal && client.clientId === this.#publisher) continue;
      if (client.gen !== this.#gen) {
        client.gen = this.#gen;
        const m = new MatchedClientImpl(client.clientId, client.owner, entry.qos, entry.retainAsPublished, sub.ids);
        client.matched = m;
        if (this.#clientsOut === NONE) this.#clientsOut = [m];
        else this.#clientsOut.push(m);
      } else {
        const m = client.matched as MatchedClientImpl<O>;
        // Overlap: one copy with the maximum QoS [MQTT-3.3.4-2] and every identifier [MQTT-3.3.4-4].
        if (entry.qos > m.qos) m.qos = entry.qos;
        if (entry.retainAsPublished) m.retainAsPublished = true;
        const id = entry.subscriptionIdentifier;
        if (id !== undefined) {
          if (m.idsOwned) (m.subscriptionIdentifiers as number[]).push(id);
          else {
            m.subscriptionIdentifiers = [...m.subscriptionIdentifiers, id];
            m.idsOwned = true;
          }
        }
      }
    }
    const groups = node.groups;
    if (groups !== undefined) {
      for (let k = 0; k < groups.length; k++) {
        const group = groups[k] as Group<O>;
        if (this.#sharedOut === NONE) this.#sharedOut = [group];
        else this.#sharedOut.push(group);
      }
    }
  }

  #remember(topic: string): void {
    const nodes = this.#recording as Node<O>[];
    this.#recording = undefined;
    const cache = this.#cache;
    this.#cacheMisses++;
    if (cache.size >= this.#cacheSize) {
      // Full: start over; if it was mostly missing (e.g. unique topics), stop paying for it for a while.
      if (this.#cacheHits < this.#cacheMisses) this.#cacheCooldown = this.#cacheSize;
      this.#clearCache();
      return;
    }
    cache.set(topic, nodes);
  }

  #clearCache(): void {
    this.#cache.clear();
    this.#cacheHits = 0;
    this.#cacheMisses = 0;
  }

  /** The node for a (non-shared) filter, created on demand, keeping the match cache valid. */
  #nodeFor(filter: string): Node<O> {
    const levels = filter.split('/');
    let node = this.#root;
    let wildcard = false;
    let clear = false;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string;
      let next: Node<O> | undefined;
      if (level === '+' || level === '#') {
        wildcard = true;
        next = level === '+' ? node.plus : node.hash;
        if (next === undefined) {
          next = new Node(node, level);
          if (level === '+') node.plus = next;
          else node.hash = next;
          clear = true;
        }
      } else {
        const children = (node.children ??= new Map());
        next = children.get(level);
        if (next === undefined) {
          next = new Node(node, level);
          children.set(level, next);
          // A new node is collected by the walks of the topics it matches exactly. Below a wildcard those are
          // unknown: clear. On a literal path it is one topic, the path itself: drop just that entry, so per-device
          // filters such as 'dev/42/cmd' do not flush the cache on every connect.
          if (wildcard) clear = true;
          else if (this.#cache.size > 0) this.#cache.delete(levels.slice(0, i + 1).join('/'));
        }
      }
      node = next;
    }
    // (Pruned nodes may stay in cached lists: they are empty for good, and a later subscription to the same filter
    // creates a new node and comes through here.)
    if (clear && this.#cache.size > 0) this.#clearCache();
    return node;
  }

  #detach(sub: Sub<O>): void {
    this.#count--;
    const node = sub.node;
    const group = sub.group;
    if (group === undefined) {
      // Swap-remove: order inside one node carries no meaning.
      const subs = node.subs;
      const last = subs.pop() as Sub<O>;
      if (last !== sub) {
        subs[sub.index] = last;
        last.index = sub.index;
      }
    } else {
      // Splice to keep the round-robin order; groups are small.
      const members = group.members;
      const i = members.indexOf(sub);
      members.splice(i, 1);
      if (i < group.cursor) group.cursor--;
      if (group.cursor >= members.length) group.cursor = 0;
      if (members.length === 0) {
        const groups = node.groups as Group<O>[];
        groups.splice(groups.indexOf(group), 1);
        if (groups.length === 0) node.groups = undefined;
      }
    }
    if (node.subs.length === 0 && node.groups === undefined && ++this.#emptiedNodes > SWEEP_MIN) {
      if (this.#emptiedNodes > this.#count) this.#sweepNodes();
    }
  }

  #clientEmptied(): void {
    if (++this.#emptyClients > SWEEP_MIN && this.#emptyClients > this.#clients.size / 2) {
      for (const [clientId, client] of this.#clients) {
        if (client.subs.size === 0) this.#clients.delete(clientId);
      }
      this.#emptyClients = 0;
    }
  }

  /**
   * Removes every empty subtree. Detached nodes may stay in cached node lists: they are empty for good, and a later
   * subscription to the same filter creates a new node, which updates the cache (#nodeFor).
   */
  #sweepNodes(): void {
    this.#emptiedNodes = 0;
    // Post-order without recursion: parents are visited after their children via a reversed pre-order list.
    const order: Node<O>[] = [];
    const stack: Node<O>[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop() as Node<O>;
      order.push(node);
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.hash !== undefined) stack.push(node.hash);
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
    }
    for (let k = order.length - 1; k > 0; k--) {
      const node = order[k] as Node<O>;
      if (!node.isEmpty()) continue;
      const parent = node.parent as Node<O>;
      if (parent.plus === node) parent.plus = undefined;
      else if (parent.hash === node) parent.hash = undefined;
      else parent.children?.delete(node.key);
    }
  }
}
