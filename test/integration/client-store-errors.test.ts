import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { MemoryStore } from '../../src/client/store.js';
import { startBroker } from '../helpers/broker.js';

/** A store whose first delete fails, to drive the client's error path. */
class FlakyStore extends MemoryStore {
  failures = 1;
  override delete(packetId: number): Promise<void> {
    if (this.failures-- > 0) return Promise.reject(new Error('disk full'));
    return super.delete(packetId);
  }
}

test('a store failure reported to an error listener that throws does not stop later QoS 1 publishes', async (t) => {
  const { url } = await startBroker(t);
  const client = await connect(url, { protocolVersion: 5, reconnect: false, store: new FlakyStore() });
  t.after(() => client.end());
  const seen: string[] = [];
  client.on('error', (err) => {
    seen.push(err.message);
    // Only the store's error: errors from socket events propagate to the caller as with any emitter.
    if (err.message === 'disk full') throw new Error('listener bug');
  });
  await client.publish('t/1', 'a', { qos: 1 });
  await client.persisted();
  assert.deepEqual(seen, ['disk full']);
  // Before, the store chain stayed rejected here and this publish never went out.
  const second = await Promise.race([
    client.publish('t/2', 'b', { qos: 1 }).then(() => 'acked'),
    new Promise((resolve) => setTimeout(() => resolve('stuck'), 2000)),
  ]);
  assert.equal(second, 'acked');
});
