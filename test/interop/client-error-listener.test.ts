/** An application's 'error' listener that throws must not break the client's own bookkeeping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ConnectionRefusedError } from '../../src/client/index.js';
import type { Authenticator } from '../../src/broker/index.js';
import { startBroker } from '../helpers/broker.js';
import { Proxy } from './client-proxy.js';

// Regression for e199178: the refusal was emitted inside a promise callback, so a throwing listener turned into an
// unhandled rejection and the next reconnect attempt was never scheduled.
test('a refused reconnect reported to a throwing error listener does not stop reconnecting', { timeout: 15_000 }, async (t) => {
  let attempts = 0;
  // Accepts the first CONNECT, refuses the next two (bad credentials), then accepts again.
  const authenticator: Authenticator = {
    authenticate: () => {
      attempts++;
      return attempts === 2 || attempts === 3 ? { ok: false, reasonCode: 0x86, reason: 'not yet' } : { ok: true };
    },
  };
  const broker = await startBroker(t, {}, { authenticator });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const client = await connect(proxy.url, { reconnect: { initialDelay: 10, maxDelay: 20 } });
  t.after(() => client.end());
  const refusals: number[] = [];
  const throwing = (err: Error): void => {
    if (err instanceof ConnectionRefusedError) refusals.push(err.reasonCode);
    throw new Error('a bug in the application listener');
  };
  client.on('error', throwing);
  const back = new Promise<void>((resolve) => client.once('connect', () => resolve()));
  // Cut the socket rather than asking the broker to disconnect: a DISCONNECT would be reported as an error too,
  // synchronously from the socket's data handler, which is not the path under test.
  proxy.cut();
  const timedOut = Symbol('timed out');
  const outcome = await Promise.race([back, new Promise<symbol>((resolve) => setTimeout(resolve, 5000, timedOut).unref())]);
  // The broker's shutdown DISCONNECT in t.after is reported as an error too: not to this listener.
  client.off('error', throwing);
  assert.notEqual(outcome, timedOut, `no reconnect after the refusals (CONNECT attempts: ${attempts})`);
  assert.deepEqual(refusals, [0x86, 0x86]);
  assert.equal(attempts, 4);
  assert.equal(client.connected, true);
});
