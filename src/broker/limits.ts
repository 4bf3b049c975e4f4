/**
 * Limits against abuse: what is counted when one is hit, rate-limited logging of those events, the per-client
 * publish token bucket and the topic size checks. Plain functions and numbers: they run on the hot path.
 */
import type { Logger } from '../shared/logger.js';

/** The limits a client can run into; each is counted in {@link LimitCounter.hits}. */
export type LimitKind =
  | 'connections'
  | 'subscriptions'
  | 'topicLength'
  | 'topicLevels'
  | 'publishRate'
  | 'queuedBytes'
  | 'readDenied';

export type LimitHits = Record<LimitKind, number>;

/** Counts limit events and logs them without letting a flood flood the log. */
export class LimitCounter {
  readonly hits: LimitHits = {
    connections: 0,
    subscriptions: 0,
    topicLength: 0,
    topicLevels: 0,
    publishRate: 0,
    queuedBytes: 0,
    readDenied: 0,
  };
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * Counts one event of `kind` and logs the 1st, 2nd, 4th, 8th, ... of each kind (with the running total), so a
   * client hammering a limit costs a few dozen log lines over its lifetime, not one per packet.
   */
  hit(kind: LimitKind, clientId: string, detail?: string): void {
    const n = ++this.hits[kind];
    if ((n & (n - 1)) !== 0) return;
    this.#logger.warn({ limit: kind, clientId, total: n, ...(detail === undefined ? {} : { detail }) }, 'limit reached');
  }

  /** Sum of all events (for $SYS and the admin API). */
  get total(): number {
    let sum = 0;
    for (const k in this.hits) sum += this.hits[k as LimitKind];
    return sum;
  }
}

/**
 * Per-client publish rate: refills `rate` tokens per second up to `burst`; one PUBLISH takes one token. Created
 * only when a rate is configured, so clients of a broker without one carry nothing.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;
  readonly #rate: number;
  readonly #burst: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes a token; false when the bucket is empty (the publish is over the rate). */
  take(now: number): boolean {
    let t = this.#tokens + ((now - this.#at) * this.#rate) / 1000;
    if (t > this.#burst) t = this.#burst;
    this.#at = now;
    if (t < 1) {
      this.#tokens = t;
      return false;
    }
    this.#tokens = t - 1;
    return true;
  }
}

/** Number of topic levels (separators + 1), counting no further than `max + 1`. */
export function topicLevels(topic: string, max: number): number {
  let levels = 1;
  for (let i = topic.indexOf('/'); i !== -1 && levels <= max; i = topic.indexOf('/', i + 1)) levels++;
  return levels;
}

/** Which topic limit `topic` (a name or a filter) exceeds, if any. */
export function topicLimitExceeded(
  topic: string,
  limits: { maximumTopicLength: number; maximumTopicLevels: number },
): 'topicLength' | 'topicLevels' | undefined {
  if (topic.length > limits.maximumTopicLength) return 'topicLength';
  // n characters hold at most n + 1 levels: most topics need no scan.
  if (topic.length < limits.maximumTopicLevels) return undefined;
  if (topicLevels(topic, limits.maximumTopicLevels) > limits.maximumTopicLevels) return 'topicLevels';
  return undefined;
}
