/** Test helpers for the router tests: an independent brute-force matcher and entry builders. */
import type { QoS } from '../../../../src/protocol/constants.js';
import type { SubscriptionEntry } from '../../../../src/broker/router/subscription-tree.js';

/**
 * Reference matcher written straight from MQTT 5.0 section 4.7, level by level, for comparison with the trie.
 * `filter` has no `$share/` prefix.
 */
export function bruteMatch(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export interface EntryOptions {
  qos?: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  subscriptionIdentifier?: number;
  owner?: string;
}

export function entry(options: EntryOptions = {}): SubscriptionEntry<string> {
  const e: SubscriptionEntry<string> = {
    qos: options.qos ?? 0,
    noLocal: options.noLocal ?? false,
    retainAsPublished: options.retainAsPublished ?? false,
    retainHandling: 0,
    owner: options.owner ?? 'owner',
    ...(options.subscriptionIdentifier === undefined ? {} : { subscriptionIdentifier: options.subscriptionIdentifier }),
  };
  return e;
}
