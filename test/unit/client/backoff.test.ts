import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../../src/client/backoff.js';

test('reconnect delay grows exponentially up to the maximum, jittered within [base/2, base]', () => {
  const opts = { initialDelay: 100, maxDelay: 1000, factor: 2 };
  assert.equal(backoffDelay(0, opts, () => 0), 50);
  assert.equal(backoffDelay(0, opts, () => 1), 100);
  assert.equal(backoffDelay(2, opts, () => 1), 400);
  assert.equal(backoffDelay(3, opts, () => 0.5), 600);
  assert.equal(backoffDelay(10, opts, () => 1), 1000);
  assert.equal(backoffDelay(50, opts, () => 0), 500);
});

test('defaults: 1 s doubling to 30 s', () => {
  assert.equal(backoffDelay(0, {}, () => 1), 1000);
  assert.equal(backoffDelay(1, {}, () => 1), 2000);
  assert.equal(backoffDelay(20, {}, () => 1), 30_000);
});
