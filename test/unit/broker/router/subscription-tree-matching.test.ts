/**
 * Topic matching table for the subscription trie (MQTT 5.0 section 4.7; 3.1.1 section 4.7 is the same).
 * Each row runs twice: alone in a tree, and inside one tree holding every filter of the table, so that
 * neighbouring branches cannot leak matches into each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionTree } from '../../../../src/broker/router/subscription-tree.js';
import { bruteMatch, entry } from './helpers.js';

interface Row {
  rule: string;
  filter: string;
  topic: string;
  matches: boolean;
}

const rows: Row[] = [
  // 4.7.1.2 multi-level wildcard
  { rule: '4.7.1.2 # matches the parent level', filter: 'sport/tennis/player1/#', topic: 'sport/tennis/player1', matches: true },
  { rule: '4.7.1.2 # matches one level below', filter: 'sport/tennis/player1/#', topic: 'sport/tennis/player1/ranking', matches: true },
  { rule: '4.7.1.2 # matches many levels below', filter: 'sport/tennis/player1/#', topic: 'sport/tennis/player1/score/wimbledon', matches: true },
  { rule: '4.7.1.2 sport/# matches sport', filter: 'sport/#', topic: 'sport', matches: true },
  { rule: '4.7.1.2 sport/tennis/# matches sport/tennis', filter: 'sport/tennis/#', topic: 'sport/tennis', matches: true },
  { rule: '4.7.1.2 sport/tennis/# does not match sport', filter: 'sport/tennis/#', topic: 'sport', matches: false },
  { rule: '4.7.1.2 # is a whole level, not a prefix', filter: 'sport/tennis/#', topic: 'sport/tennisplayer1', matches: false },
  { rule: '4.7.1.2 # alone matches a single level', filter: '#', topic: 'a', matches: true },
  { rule: '4.7.1.2 # alone matches many levels', filter: '#', topic: 'a/b/c', matches: true },
  { rule: '4.7.1.2 # alone matches a leading empty level', filter: '#', topic: '/finance', matches: true },
  { rule: '4.7.1.2 # alone matches "/"', filter: '#', topic: '/', matches: true },
  { rule: '4.7.1.2 a/# matches a trailing empty level', filter: 'a/#', topic: 'a/', matches: true },
  { rule: '4.7.1.2 a/# does not match b', filter: 'a/#', topic: 'b', matches: false },
  // 4.7.1.3 single-level wildcard
  { rule: '4.7.1.3 + matches one level', filter: 'sport/tennis/+', topic: 'sport/tennis/player1', matches: true },
  { rule: '4.7.1.3 + matches exactly one level', filter: 'sport/tennis/+', topic: 'sport/tennis/player1/ranking', matches: false },
  { rule: '4.7.1.3 sport/+ does not match sport', filter: 'sport/+', topic: 'sport', matches: false },
  { rule: '4.7.1.3 sport/+ matches sport/ (empty level)', filter: 'sport/+', topic: 'sport/', matches: true },
  { rule: '4.7.1.3 +/+ matches /finance', filter: '+/+', topic: '/finance', matches: true },
  { rule: '4.7.1.3 /+ matches /finance', filter: '/+', topic: '/finance', matches: true },
  { rule: '4.7.1.3 + does not match /finance', filter: '+', topic: '/finance', matches: false },
  { rule: '4.7.1.3 +/+ matches /', filter: '+/+', topic: '/', matches: true },
  { rule: '4.7.1.3 + matches a single level', filter: '+', topic: 'finance', matches: true },
  { rule: '4.7.1.3 + and # combined', filter: '+/tennis/#', topic: 'sport/tennis/player1/ranking', matches: true },
  { rule: '4.7.1.3 + and # combined, # at parent', filter: '+/tennis/#', topic: 'sport/tennis', matches: true },
  { rule: '4.7.1.3 + in the middle', filter: 'sport/+/player1', topic: 'sport/tennis/player1', matches: true },
  { rule: '4.7.1.3 + in the middle, wrong tail', filter: 'sport/+/player1', topic: 'sport/tennis/player2', matches: false },
  // empty levels are levels
  { rule: '4.7.1.3 + matches an empty middle level', filter: 'a/+/b', topic: 'a//b', matches: true },
  { rule: '4.7.1.3 three + match a//b', filter: '+/+/+', topic: 'a//b', matches: true },
  { rule: '4.7.3 a/b does not match a//b', filter: 'a/b', topic: 'a//b', matches: false },
  { rule: '4.7.3 literal empty level a//b', filter: 'a//b', topic: 'a//b', matches: true },
  { rule: '4.7.3 literal / matches /', filter: '/', topic: '/', matches: true },
  { rule: '4.7.3 trailing slash is a level', filter: 'a/b', topic: 'a/b/', matches: false },
  { rule: '4.7.3 missing level', filter: 'a/b/c', topic: 'a/b', matches: false },
  { rule: '4.7.3 extra level', filter: 'a/b', topic: 'a/b/c', matches: false },
  { rule: '4.7.3 exact match', filter: 'a/b/c', topic: 'a/b/c', matches: true },
  // [MQTT-4.7.2-1] $ topics
  { rule: '[MQTT-4.7.2-1] # does not match $SYS topics', filter: '#', topic: '$SYS/broker/uptime', matches: false },
  { rule: '[MQTT-4.7.2-1] # does not match a bare $ level', filter: '#', topic: '$SYS', matches: false },
  { rule: '[MQTT-4.7.2-1] + does not match $SYS', filter: '+', topic: '$SYS', matches: false },
  { rule: '[MQTT-4.7.2-1] +/monitor/Clients does not match $SYS/monitor/Clients', filter: '+/monitor/Clients', topic: '$SYS/monitor/Clients', matches: false },
  { rule: '[MQTT-4.7.2-1] +/# does not match $SYS/x', filter: '+/#', topic: '$SYS/x', matches: false },
  { rule: '[MQTT-4.7.2-1] $SYS/# matches $SYS/monitor/Clients', filter: '$SYS/#', topic: '$SYS/monitor/Clients', matches: true },
  { rule: '[MQTT-4.7.2-1] $SYS/# matches $SYS', filter: '$SYS/#', topic: '$SYS', matches: true },
  { rule: '[MQTT-4.7.2-1] $SYS/monitor/+ matches $SYS/monitor/Clients', filter: '$SYS/monitor/+', topic: '$SYS/monitor/Clients', matches: true },
  { rule: '[MQTT-4.7.2-1] $ below the first level is ordinary', filter: 'a/+', topic: 'a/$b', matches: true },
  { rule: '[MQTT-4.7.2-1] # matches $ below the first level', filter: '#', topic: 'a/$b', matches: true },
  // [MQTT-4.7.3-4] no normalisation
  { rule: '[MQTT-4.7.3-4] case sensitive', filter: 'ACCOUNTS', topic: 'Accounts', matches: false },
  { rule: '[MQTT-4.7.3-4] spaces are significant', filter: 'Accounts payable', topic: 'Accounts  payable', matches: false },
  { rule: '[MQTT-4.7.3-4] space level', filter: 'a/ ', topic: 'a/ ', matches: true },
  { rule: '[MQTT-4.7.3-4] no Unicode normalisation', filter: 'caf\u00e9', topic: 'cafe\u0301', matches: false },
  { rule: '[MQTT-4.7.3-4] non-ASCII levels compare exactly', filter: 'z\u00fcrich/+', topic: 'z\u00fcrich/\u{1F600}', matches: true },
];

test('the matching table agrees with the reference matcher', () => {
  for (const row of rows) assert.equal(bruteMatch(row.filter, row.topic), row.matches, row.rule);
});

for (const row of rows) {
  test(`${row.rule}: '${row.filter}' ${row.matches ? 'matches' : 'does not match'} '${row.topic}'`, () => {
    const tree = new SubscriptionTree<string>();
    tree.add('c', row.filter, entry({ qos: 1 }));
    const result = tree.match(row.topic);
    assert.deepEqual(
      result.clients.map((c) => c.clientId),
      row.matches ? ['c'] : [],
    );

    // Same filter as a shared subscription.
    const shared = new SubscriptionTree<string>();
    shared.add('c', `$share/g/${row.filter}`, entry({ qos: 1 }));
    const sharedResult = shared.match(row.topic);
    assert.equal(sharedResult.clients.length, 0);
    assert.deepEqual(
      sharedResult.shared.map((g) => g.topicFilter),
      row.matches ? [row.filter] : [],
    );
  });
}

test('every table row holds inside one tree holding all the filters', () => {
  const tree = new SubscriptionTree<string>();
  const filters = [...new Set(rows.map((r) => r.filter))];
  filters.forEach((f, i) => tree.add(`c${i}`, f, entry()));
  for (const topic of new Set(rows.map((r) => r.topic))) {
    const expected = filters.flatMap((f, i) => (bruteMatch(f, topic) ? [`c${i}`] : [])).sort();
    const actual = tree.match(topic).clients.map((c) => c.clientId).sort();
    assert.deepEqual(actual, expected, topic);
  }
});
