import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidTopicFilter, isValidTopicName, parseSharedSubscription, splitLevels, topicMatches } from '../../../src/protocol/index.js';

test('[MQTT-4.7.0-1] topic names: no wildcards; [MQTT-4.7.3-1] non-empty; [MQTT-4.7.3-2] no U+0000; [MQTT-4.7.3-3] <= 65535 bytes', () => {
  for (const ok of ['a', '/', 'a/b', '/a/', 'sport/tennis/player1', '$SYS/broker', 'ü/€/😀', ' ', 'a//b', '\uFEFFa']) {
    assert.equal(isValidTopicName(ok), true, ok);
  }
  for (const bad of ['', 'a/+', '+', '#', 'a/#', 'a+b', 'a#', 'a\u0000b', '\ud800', 'a\udc00b', 'x'.repeat(65536)]) {
    assert.equal(isValidTopicName(bad), false, JSON.stringify(bad.slice(0, 10)));
  }
  assert.equal(isValidTopicName('x'.repeat(65535)), true);
  // 21,846 three-byte characters are 65,538 bytes although only 21,846 UTF-16 units.
  assert.equal(isValidTopicName('€'.repeat(21845)), true);
  assert.equal(isValidTopicName('€'.repeat(21846)), false);
});

test('[MQTT-4.7.1-1] # alone and last; [MQTT-4.7.1-2] + occupies a whole level', () => {
  for (const ok of ['#', 'a/#', 'a/b/#', '+', '+/+', '/+', '+/', 'a/+/b', '+/#', '/#', 'sport/tennis/#', '$SYS/#', 'a/b']) {
    assert.equal(isValidTopicFilter(ok), true, ok);
  }
  for (const bad of ['', 'a#', 'a/#/b', '#/a', 'a/b#', 'a+', '+a', 'a/+b', 'a/b+/c', '##', '++', 'a\u0000', '\udfff', 'x'.repeat(65536)]) {
    assert.equal(isValidTopicFilter(bad), false, JSON.stringify(bad.slice(0, 10)));
  }
});

test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] $share/{ShareName}/{filter} parsing', () => {
  assert.equal(parseSharedSubscription('a/b'), undefined);
  assert.equal(parseSharedSubscription('$share'), undefined);
  assert.equal(parseSharedSubscription('$SYS/#'), undefined);
  assert.deepEqual(parseSharedSubscription('$share/g/a/b'), { group: 'g', filter: 'a/b' });
  assert.deepEqual(parseSharedSubscription('$share/group-1/#'), { group: 'group-1', filter: '#' });
  assert.deepEqual(parseSharedSubscription('$share/g//'), { group: 'g', filter: '/' });
  assert.deepEqual(parseSharedSubscription('$share/g/$SYS/+'), { group: 'g', filter: '$SYS/+' });
  assert.deepEqual(parseSharedSubscription('$share/g'), { error: 'missing-filter' });
  assert.deepEqual(parseSharedSubscription('$share/g/'), { error: 'missing-filter' });
  assert.deepEqual(parseSharedSubscription('$share/'), { error: 'empty-share-name' });
  assert.deepEqual(parseSharedSubscription('$share//a'), { error: 'empty-share-name' });
  assert.deepEqual(parseSharedSubscription('$share/g+/a'), { error: 'invalid-share-name' });
  assert.deepEqual(parseSharedSubscription('$share/#/a'), { error: 'invalid-share-name' });
  assert.deepEqual(parseSharedSubscription('$share/g/a/#/b'), { error: 'invalid-filter' });
  assert.deepEqual(parseSharedSubscription('$share/g/a+'), { error: 'invalid-filter' });
});

const matching: Array<[string, string, boolean]> = [
  // Spec section 4.7.1.2 examples.
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/#', 'sport', true],
  ['#', 'sport/tennis', true],
  ['#', '/', true],
  // Section 4.7.1.3 examples.
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player2', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['+', 'finance', true],
  // Exact and structural cases.
  ['a/b', 'a/b', true],
  ['a/b', 'a/b/', false],
  ['a/b', 'a', false],
  ['a', 'a/b', false],
  ['a/+/c', 'a/b/c', true],
  ['a/+/c', 'a//c', true],
  ['a/+/c', 'a/b/d', false],
  ['a/+/#', 'a/b', true],
  ['a/+/#', 'a', false],
  ['+/#', 'a', true],
  ['a//b', 'a//b', true],
  ['A', 'a', false],
  ['ü/+', 'ü/€', true],
  // [MQTT-4.7.2-1] wildcards at the first level do not match $ topics.
  ['#', '$SYS/broker/uptime', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['+', '$SYS', false],
  ['$SYS/#', '$SYS/monitor/Clients', true],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$SYS/#', '$SYS', true],
  ['a/#', 'a/$b', true],
];

for (const [filter, topic, expected] of matching) {
  test(`${expected ? '' : 'no '}match: filter ${JSON.stringify(filter)} topic ${JSON.stringify(topic)}${topic.startsWith('$') ? ' [MQTT-4.7.2-1]' : ''}`, () => {
    assert.equal(topicMatches(filter, topic), expected);
  });
}

test('topicMatches agrees with a level-by-level reference on generated inputs', () => {
  const reference = (filter: string, topic: string): boolean => {
    if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
    const f = filter.split('/');
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= t.length) return false;
      if (f[i] !== '+' && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  };
  const levels = ['a', 'b', '', '$x'];
  const fLevels = [...levels, '+', '#'];
  let seed = 7;
  const pick = <T>(xs: readonly T[]): T => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return xs[seed % xs.length]!;
  };
  for (let i = 0; i < 5000; i++) {
    const topic = Array.from({ length: 1 + (i % 4) }, () => pick(levels)).join('/') || 'a';
    const filter = Array.from({ length: 1 + ((i >> 2) % 4) }, () => pick(fLevels)).join('/');
    if (!isValidTopicFilter(filter) || !isValidTopicName(topic)) continue;
    assert.equal(topicMatches(filter, topic), reference(filter, topic), `${filter} vs ${topic}`);
  }
});

test('splitLevels keeps empty levels', () => {
  assert.deepEqual(splitLevels('/a//b/'), ['', 'a', '', 'b', '']);
});
