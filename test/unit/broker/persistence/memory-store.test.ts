import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../../../src/broker/persistence/memory-store.js';
import { runStoreConformance } from './store-conformance.js';

runStoreConformance('MemoryStore', { create: () => new MemoryStore() });

test('MemoryStore completes every write synchronously (no promise on the hot path)', () => {
  const s = new MemoryStore();
  assert.equal(s.putSession({ clientId: 'c', protocolVersion: 4, sessionExpiryInterval: 1 }), undefined);
  assert.equal(s.enqueue('c', 1, { message: { topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, origin: '' }, qos: 1, retain: false }), undefined);
});

test('MemoryStore copies records: later changes by the caller do not leak in', () => {
  const s = new MemoryStore();
  const record = { clientId: 'c', protocolVersion: 4 as const, sessionExpiryInterval: 1 };
  s.putSession(record);
  record.sessionExpiryInterval = 99;
  assert.equal(s.loadSessions()[0]?.record.sessionExpiryInterval, 1);
});
