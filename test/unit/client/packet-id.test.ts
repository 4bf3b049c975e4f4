import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketIdAllocator } from '../../../src/client/packet-id.js';

test('packet ids are non-zero and skip ids still in use after wrap-around [MQTT-2.2.1-2] [MQTT-2.2.1-3]', () => {
  const ids = new PacketIdAllocator();
  const first = ids.allocate();
  assert.equal(first, 1);
  for (let i = 2; i <= 65_535; i++) assert.equal(ids.allocate(), i);
  assert.equal(ids.allocate(), undefined, 'all 65535 taken');
  ids.release(7);
  ids.release(3);
  // The counter wrapped: the next free id after 65535 is 3, then 7; never 0.
  assert.equal(ids.allocate(), 3);
  assert.equal(ids.allocate(), 7);
  assert.equal(ids.allocate(), undefined);
});

test('restored ids are reserved and fresh ids continue after them', () => {
  const ids = new PacketIdAllocator();
  ids.reserve(10);
  ids.reserve(11);
  assert.equal(ids.allocate(), 12);
  assert.equal(ids.has(10), true);
  ids.release(10);
  assert.equal(ids.has(10), false);
  assert.equal(ids.size, 2);
});
