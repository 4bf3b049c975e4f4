/** MemoryRetainedStore: set/replace/clear, byte accounting, wildcard matching with the $ rule, expiry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRetainedStore, type RetainedMessage } from '../../../../src/broker/router/retained-store.js';
import { bruteMatch } from './helpers.js';

function msg(topic: string, payload: string, extra: { expiresAt?: number; storedAt?: number } = {}): RetainedMessage {
  return { topic, payload: Buffer.from(payload), qos: 1, storedAt: extra.storedAt ?? 0, ...extra };
}

function topics(messages: RetainedMessage[]): string[] {
  return messages.map((m) => m.topic).sort();
}

test('[MQTT-3.3.1-5] a retained message is stored and replaces the previous one for its topic', () => {
  const store = new MemoryRetainedStore();
  store.set('a/b', msg('a/b', 'one'));
  assert.equal(store.get('a/b')?.payload.toString(), 'one');
  store.set('a/b', msg('a/b', 'two'));
  assert.equal(store.get('a/b')?.payload.toString(), 'two');
  assert.equal(store.count, 1);
  assert.deepEqual(
    store.match('a/b', 0).map((m) => m.payload.toString()),
    ['two'],
  );
  assert.equal(store.get('a'), undefined);
});

test('[MQTT-3.3.1-6] an empty retained payload removes the topic’s retained message (3.1.1: [MQTT-3.3.1-10])', () => {
  const store = new MemoryRetainedStore();
  store.set('a/b', msg('a/b', 'one'));
  store.set('a/c', msg('a/c', 'two'));
  store.set('a/b', msg('a/b', ''));
  assert.equal(store.get('a/b'), undefined);
  assert.equal(store.count, 1);
  assert.deepEqual(topics(store.match('a/#', 0)), ['a/c']);
});

test('[MQTT-3.3.1-7] an empty retained payload is not stored itself (3.1.1: [MQTT-3.3.1-11])', () => {
  const store = new MemoryRetainedStore();
  store.set('x', msg('x', ''));
  assert.equal(store.count, 0);
  assert.equal(store.byteSize, 0);
  assert.equal(store.get('x'), undefined);
  assert.deepEqual(store.match('#', 0), []);
});

test('byteSize counts payload bytes and topic UTF-8 bytes, following replace and delete', () => {
  const store = new MemoryRetainedStore();
  store.set('caf\u00e9', msg('caf\u00e9', 'abc')); // topic 5 bytes + 3
  assert.equal(store.byteSize, 8);
  store.set('caf\u00e9', msg('caf\u00e9', 'abcdef'));
  assert.equal(store.byteSize, 11);
  store.set('b', msg('b', 'xy'));
  assert.equal(store.byteSize, 14);
  assert.equal(store.delete('caf\u00e9'), true);
  assert.equal(store.delete('caf\u00e9'), false);
  assert.equal(store.byteSize, 3);
  store.set('b', msg('b', ''));
  assert.equal(store.byteSize, 0);
});

const stored = ['a', 'a/b', 'a/b/c', 'a//c', 'a/', '/x', '/', 'b/c', '$SYS', '$SYS/uptime', '$SYS/a/b', 'a/$x'];

const cases: Array<[string, string[]]> = [
  ['#', ['/', '/x', 'a', 'a/', 'a/$x', 'a//c', 'a/b', 'a/b/c', 'b/c']],
  ['a/#', ['a', 'a/', 'a/$x', 'a//c', 'a/b', 'a/b/c']],
  ['a/+', ['a/', 'a/$x', 'a/b']],
  ['+', ['a']],
  ['+/+', ['/', '/x', 'a/', 'a/$x', 'a/b', 'b/c']],
  ['a/+/c', ['a//c', 'a/b/c']],
  ['/+', ['/', '/x']],
  ['+/b/c', ['a/b/c']],
  ['a/b', ['a/b']],
  ['a/b/c/#', ['a/b/c']],
  ['a/b/c/d', []],
  ['nothing/#', []],
  ['$SYS/#', ['$SYS', '$SYS/a/b', '$SYS/uptime']],
  ['$SYS/+', ['$SYS/uptime']],
  ['+/uptime', []],
  ['+/#', ['/', '/x', 'a', 'a/', 'a/$x', 'a//c', 'a/b', 'a/b/c', 'b/c']],
];

for (const [filter, expected] of cases) {
  const rule = filter.startsWith('+') || filter.startsWith('#') ? '[MQTT-4.7.2-1] ' : '';
  test(`${rule}retained match '${filter}'`, () => {
    const store = new MemoryRetainedStore();
    for (const t of stored) store.set(t, msg(t, t));
    assert.deepEqual(topics(store.match(filter, 0)), expected);
    assert.deepEqual(
      expected,
      stored.filter((t) => bruteMatch(filter, t)).sort(),
    );
  });
}

test('retained messages expire: get(topic, now) and match(filter, now) skip and purge them', () => {
  const store = new MemoryRetainedStore();
  store.set('a/1', msg('a/1', 'x', { expiresAt: 1000 }));
  store.set('a/2', msg('a/2', 'y', { expiresAt: 2000 }));
  store.set('a/3', msg('a/3', 'z'));
  assert.deepEqual(topics(store.match('a/+', 999)), ['a/1', 'a/2', 'a/3']);
  assert.deepEqual(topics(store.match('a/+', 1000)), ['a/2', 'a/3']);
  assert.equal(store.count, 2, 'the expired one was purged by match');
  assert.equal(store.get('a/2', 1999)?.payload.toString(), 'y');
  assert.equal(store.get('a/2')?.payload.toString(), 'y', 'without now, no expiry check');
  assert.equal(store.get('a/2', 2000), undefined);
  assert.equal(store.count, 1);
  assert.equal(store.byteSize, 1 + 3);
});

test('purgeExpired drops exactly the messages due, in any insertion order', () => {
  const store = new MemoryRetainedStore();
  const due = [50, 10, 40, 30, 20, 60, 5];
  due.forEach((at, i) => store.set(`t/${i}`, msg(`t/${i}`, 'p', { expiresAt: at })));
  store.set('forever', msg('forever', 'p'));
  assert.equal(store.purgeExpired(4), 0);
  assert.equal(store.purgeExpired(20), 3);
  assert.deepEqual(topics(store.match('#', 0)), ['forever', 't/0', 't/2', 't/3', 't/5']);
  assert.equal(store.purgeExpired(1_000), 4);
  assert.equal(store.count, 1);
  assert.equal(store.purgeExpired(1_000), 0);
});

test('purgeExpired does not drop a message that replaced an expiring one', () => {
  const store = new MemoryRetainedStore();
  store.set('a', msg('a', 'old', { expiresAt: 10 }));
  store.set('a', msg('a', 'new'));
  store.set('b', msg('b', 'old', { expiresAt: 10 }));
  store.set('b', msg('b', 'newer', { expiresAt: 100 }));
  assert.equal(store.purgeExpired(50), 0);
  assert.equal(store.get('a', 50)?.payload.toString(), 'new');
  assert.equal(store.get('b', 50)?.payload.toString(), 'newer');
  assert.equal(store.purgeExpired(100), 1);
  assert.equal(store.get('b'), undefined);
});

test('many replacements of expiring messages keep purgeExpired correct (heap rebuild path)', () => {
  const store = new MemoryRetainedStore();
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 20; i++) store.set(`t/${i}`, msg(`t/${i}`, `r${round}`, { expiresAt: 1000 + round * 10 + i }));
  }
  // Live expiries are 1190..1209.
  assert.equal(store.purgeExpired(1189), 0);
  assert.equal(store.count, 20);
  assert.equal(store.purgeExpired(1199), 10);
  assert.deepEqual(
    store.match('t/+', 0).map((m) => m.payload.toString()),
    Array<string>(10).fill('r19'),
  );
  assert.equal(store.purgeExpired(1209), 10);
  assert.equal(store.count, 0);
  assert.equal(store.byteSize, 0);
});

test('deleting prunes the trie: a later match on the emptied branch finds nothing, a new set works', () => {
  const store = new MemoryRetainedStore();
  store.set('a/b/c/d', msg('a/b/c/d', '1'));
  store.set('a/b', msg('a/b', '2'));
  store.delete('a/b/c/d');
  assert.deepEqual(topics(store.match('a/#', 0)), ['a/b']);
  store.delete('a/b');
  assert.deepEqual(store.match('#', 0), []);
  store.set('a/b/c/d', msg('a/b/c/d', '3'));
  assert.deepEqual(topics(store.match('+/+/+/+', 0)), ['a/b/c/d']);
});

test('a wildcard-free filter is answered by exact lookup, expiry included', () => {
  const store = new MemoryRetainedStore();
  store.set('a/b', msg('a/b', 'x', { expiresAt: 10 }));
  store.set('a/c', msg('a/c', 'y'));
  assert.deepEqual(topics(store.match('a/b', 9)), ['a/b']);
  assert.deepEqual(store.match('a/x', 9), []);
  assert.deepEqual(store.match('a/b', 10), []);
  assert.equal(store.count, 1);
});

test('a retained topic with 30,000 levels is stored and matched without exhausting the stack', () => {
  const store = new MemoryRetainedStore();
  const deep = Array<string>(30_000).fill('a').join('/');
  store.set(deep, msg(deep, 'x'));
  assert.equal(store.match('#', 0).length, 1);
  assert.equal(store.match('a/+/#', 0).length, 1);
  assert.equal(store.match(`${deep.slice(0, -2)}/+`, 0).length, 1);
  assert.equal(store.match(deep, 0).length, 1);
  assert.equal(store.delete(deep), true);
  assert.deepEqual(store.match('#', 0), []);
});

test('bulk sweeps of cleared topics keep count, bytes and matches right (set/clear loops)', () => {
  const store = new MemoryRetainedStore();
  store.set('keep/1', msg('keep/1', 'k'));
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3000; i++) store.set(`t/${i}/s`, msg(`t/${i}/s`, 'v'));
    assert.equal(store.count, 3001);
    for (let i = 0; i < 3000; i++) store.set(`t/${i}/s`, msg(`t/${i}/s`, ''));
    for (let k = 0; k < 2000; k++) {
      store.set('flap', msg('flap', 'on'));
      store.set('flap', msg('flap', ''));
    }
    assert.equal(store.count, 1);
    assert.equal(store.byteSize, 'keep/1'.length + 1);
    assert.deepEqual(topics(store.match('#', 0)), ['keep/1']);
    assert.equal(store.get('t/5/s'), undefined);
    assert.equal(store.delete('t/5/s'), false);
  }
  store.set('t/5/s', msg('t/5/s', 'back'));
  assert.deepEqual(topics(store.match('t/+/s', 0)), ['t/5/s']);
});
