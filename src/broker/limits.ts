/**
 * Limits against abuse: what is counted when one is hit, rate-limited logging of those events, the per-client
 * publish token bucket and the topic size checks. Plain functions and numbers: they run on the hot path.
 */
import type { Clock, TimerHandle } from '../shared/clock.js';
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
    const n = this.count(kind);
    if ((n & (n - 1)) !== 0) return;
    this.#logger.warn({ limit: kind, clientId, total: n, ...(detail === undefined ? {} : { detail }) }, 'limit reached');
  }

  /** Counts one event of `kind` without logging it (the caller logs through its own limiter); returns the total. */
  count(kind: LimitKind): number {
    return ++this.hits[kind];
  }

  /** Sum of all events (for $SYS and the admin API). */
  get total(): number {
    let sum = 0;
    for (const k in this.hits) sum += this.hits[k as LimitKind];
    return sum;
  }
}

/**
 * Open sockets allowed (0 = no limit): maximumConnections counts connected clients, so room is left for sockets
 * that are still sending CONNECT or authenticating, refused ones getting their CONNACK 0x89, and closing ones.
 * Beyond it a new socket is closed at once: idle sockets cannot pile up until connectTimeout closes them.
 */
export function maximumSockets(maximumConnections: number): number {
  if (maximumConnections === 0) return 0;
  return maximumConnections + Math.max(100, Math.ceil(maximumConnections / 10));
}

/** Log lines that one client per connection can cause, each rate-limited on its own (see {@link LogLimiter}). */
export type ConnectionLogKind = 'protocolError' | 'closedBeforeConnect' | 'connectRefused' | 'connectionsExceeded';

export interface LogLimiterOptions {
  /** Lines of one kind logged per interval; more are only counted. */
  burst: number;
  intervalMs: number;
}

/** Defaults: a scan or a fuzzer stays visible without writing a line per connection. */
export const CONNECTION_LOG_LIMIT: LogLimiterOptions = { burst: 10, intervalMs: 10_000 };

interface LogWindow {
  /** When the current window ends; 0 before the first line. */
  endsAt: number;
  logged: number;
  suppressed: number;
  timer: TimerHandle | undefined;
}

/**
 * Per-kind fixed windows: the first `burst` lines of a window are logged, the rest only counted, and one summary
 * line (kind, suppressed, intervalMs) follows at the end of the window. Lines are caused by remote peers opening
 * connections, so unlike {@link LimitCounter} (per client, per packet) the cost must stay flat per interval, not
 * grow with the logarithm of the count.
 */
export class LogLimiter<K extends string> {
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #windows = new Map<K, LogWindow>();

  constructor(logger: Logger, clock: Clock, options: LogLimiterOptions = CONNECTION_LOG_LIMIT) {
    this.#logger = logger;
    this.#clock = clock;
    this.#burst = options.burst;
    this.#intervalMs = options.intervalMs;
  }

  /** Whether this event's line may be logged now; false means it was counted for the summary instead. */
  allow(kind: K): boolean {
    const now = this.#clock.now();
    let w = this.#windows.get(kind);
    if (w === undefined) this.#windows.set(kind, (w = { endsAt: 0, logged: 0, suppressed: 0, timer: undefined }));
    // The summary timer may be late (busy loop): close the window here, so no window lets more than `burst` through.
    if (now >= w.endsAt) {
      this.#summarize(kind, w);
      w.endsAt = now + this.#intervalMs;
      w.logged = 0;
    }
    if (w.logged < this.#burst) {
      w.logged++;
      return true;
    }
    if (w.suppressed++ === 0) {
      // Only a window with suppressed lines needs a timer: a quiet broker has none pending.
      w.timer = this.#clock.setTimeout(() => {
        w.timer = undefined;
        this.#summarize(kind, w);
      }, w.endsAt - now);
      w.timer.unref?.();
    }
    return false;
  }

  /** Logs the pending summaries now and cancels their timers (broker shutdown). */
  flush(): void {
    for (const [kind, w] of this.#windows) this.#summarize(kind, w);
  }

  #summarize(kind: K, w: LogWindow): void {
    if (w.timer !== undefined) this.#clock.clearTimeout(w.timer);
    w.timer = undefined;
    if (w.suppressed === 0) return;
    this.#logger.warn({ kind, suppressed: w.suppressed, intervalMs: this.#intervalMs }, 'log lines suppressed');
    w.suppressed = 0;
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
