/** The per-kind log limiter: a burst per window, then one summary line per window with the suppressed count. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogLimiter } from '../../../src/broker/limits.js';
import type { Clock } from '../../../src/shared/clock.js';
import { recordingLogger } from '../../helpers/log-recorder.js';
import { FakeClock } from './harness.js';

test('the first lines of a window pass, the rest are counted and summed up once when the window ends', () => {
  const clock = new FakeClock();
  const { logger, lines } = recordingLogger(['warn']);
  const limiter = new LogLimiter<'a' | 'b'>(logger, clock, { burst: 3, intervalMs: 1000 });
  const allowed = Array.from({ length: 10 }, () => limiter.allow('a'));
  assert.deepEqual(allowed, [true, true, true, false, false, false, false, false, false, false]);
  // Another kind has its own budget.
  assert.equal(limiter.allow('b'), true);
  assert.equal(lines.length, 0, 'no summary before the window ends');
  clock.advance(999);
  assert.equal(lines.length, 0);
  clock.advance(1);
  assert.deepEqual(lines, [{ level: 'warn', obj: { kind: 'a', suppressed: 7, intervalMs: 1000 }, msg: 'log lines suppressed' }]);
  // A new window: a burst again, and no second summary for a window without suppressed lines.
  assert.deepEqual([limiter.allow('a'), limiter.allow('a'), limiter.allow('a')], [true, true, true]);
  clock.advance(5000);
  assert.equal(lines.length, 1);
});

test('a late summary timer still closes the window at the next event; flush() reports what is pending', () => {
  // A clock whose timers never fire: a busy event loop runs the summary timer late.
  let now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => ({}), clearTimeout: () => undefined };
  const { logger, lines } = recordingLogger(['warn']);
  const limiter = new LogLimiter<'a'>(logger, clock, { burst: 1, intervalMs: 1000 });
  limiter.allow('a');
  limiter.allow('a');
  now = 1500;
  // The next event summarizes the old window and opens a new one.
  assert.equal(limiter.allow('a'), true);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.obj['suppressed'], 1);
  assert.equal(limiter.allow('a'), false);
  limiter.flush();
  assert.equal(lines.length, 2);
  assert.equal(lines[1]?.obj['suppressed'], 1);
  limiter.flush();
  assert.equal(lines.length, 2, 'nothing left to report');
});
