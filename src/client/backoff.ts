/** Reconnect delays: exponential growth with "full jitter", so a fleet of clients does not reconnect in lockstep. */
export interface BackoffOptions {
  /** Delay before the first reconnect attempt, in ms. Default 1000. */
  initialDelay?: number;
  /** Upper bound of any delay, in ms. Default 30000. */
  maxDelay?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
}

/**
 * Delay for reconnect attempt `attempt` (0-based): a uniformly random value in
 * [base/2, base] where base = min(maxDelay, initialDelay * factor^attempt). Keeping half of the
 * base avoids the near-zero delays of pure full jitter hammering a broker that just went down.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialDelay ?? 1000;
  const max = options.maxDelay ?? 30_000;
  const factor = options.factor ?? 2;
  const base = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(base / 2 + random() * (base / 2));
}
