/** Subscription trie: overlapping subscriptions, No Local, replace/remove, shared subscription groups. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionTree, type MatchResult } from '../../../../src/broker/router/subscription-tree.js';
import { entry } from './helpers.js';

/** Copies a match result (the tree reuses its result objects). */
function snapshot(result: MatchResult<string>) {
  return {
    clients: result.clients
      .map((c) => ({
        clientId: c.clientId,
        owner: c.owner,
        qos: c.qos,
        retainAsPublished: c.retainAsPublished,
        ids: [...c.subscriptionIdentifiers].sort((a, b) => a - b),
      }))
      .sort((a, b) => a.clientId.localeCompare(b.clientId)),
    shared: result.shared.map((g) => `${g.shareName}|${g.topicFilter}`).sort(),
  };
}

test('an empty tree matches nothing', () => {
  const tree = new SubscriptionTree<string>();
  assert.deepEqual(snapshot(tree.match('a/b')), { clients: [], shared: [] });
  assert.equal(tree.count, 0);
});

test('[MQTT-3.3.4-2] overlapping subscriptions give one result per client with the maximum QoS', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry({ qos: 0 }));
  tree.add('c1', 'a/#', entry({ qos: 2 }));
  tree.add('c1', 'a/b', entry({ qos: 1 }));
  tree.add('c2', 'a/b', entry({ qos: 1 }));
  const r = snapshot(tree.match('a/b'));
  assert.equal(r.clients.length, 2);
  assert.equal(r.clients[0]?.clientId, 'c1');
  assert.equal(r.clients[0]?.qos, 2);
  assert.equal(r.clients[1]?.qos, 1);
  // Only the matching ones count: 'a/c' matches a/+ (0) and a/# (2) but not a/b.
  tree.add('c3', 'a/c', entry({ qos: 2 }));
  tree.add('c3', '#', entry({ qos: 0 }));
  const r2 = snapshot(tree.match('a/x'));
  assert.deepEqual(
    r2.clients.map((c) => [c.clientId, c.qos]),
    [
      ['c1', 2],
      ['c3', 0],
    ],
  );
});

test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] the single copy carries every matching Subscription Identifier', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry({ subscriptionIdentifier: 7 }));
  tree.add('c1', 'a/#', entry({ subscriptionIdentifier: 3 }));
  tree.add('c1', '+/b', entry()); // no identifier: contributes none
  tree.add('c1', 'x/#', entry({ subscriptionIdentifier: 9 })); // does not match
  assert.deepEqual(snapshot(tree.match('a/b')).clients[0]?.ids, [3, 7]);
  // The reused identifier array is reset between calls.
  assert.deepEqual(snapshot(tree.match('x')).clients[0]?.ids, [9]);
  assert.deepEqual(snapshot(tree.match('q/b')).clients[0]?.ids, []);
});

test('Retain As Published: true when any overlapping matching subscription asks for it', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry({ retainAsPublished: false }));
  tree.add('c1', 'a/#', entry({ retainAsPublished: true }));
  assert.equal(tree.match('a/b').clients[0]?.retainAsPublished, true);
  assert.equal(tree.match('a').clients[0]?.retainAsPublished, true);
  tree.remove('c1', 'a/#');
  assert.equal(tree.match('a/b').clients[0]?.retainAsPublished, false);
});

test('the owner in a result is the one of the client’s latest subscription', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a', entry({ owner: 'session-1' }));
  assert.equal(tree.match('a').clients[0]?.owner, 'session-1');
  tree.add('c1', 'b', entry({ owner: 'session-2' }));
  assert.equal(tree.match('a').clients[0]?.owner, 'session-2');
});

test('[MQTT-3.8.3-3] a No Local subscription does not match messages published by the same client id', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a', entry({ noLocal: true }));
  tree.add('c2', 'a', entry({ noLocal: true }));
  assert.deepEqual(
    snapshot(tree.match('a', 'c1')).clients.map((c) => c.clientId),
    ['c2'],
  );
  assert.deepEqual(
    snapshot(tree.match('a', 'c3')).clients.map((c) => c.clientId),
    ['c1', 'c2'],
  );
  assert.deepEqual(
    snapshot(tree.match('a')).clients.map((c) => c.clientId),
    ['c1', 'c2'],
  );
});

test('[MQTT-3.8.3-3] No Local applies per subscription: an overlapping plain subscription still delivers', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/#', entry({ noLocal: true, qos: 2, subscriptionIdentifier: 1 }));
  tree.add('c1', 'a/+', entry({ noLocal: false, qos: 0, subscriptionIdentifier: 2 }));
  const own = snapshot(tree.match('a/b', 'c1')).clients;
  assert.deepEqual(own, [{ clientId: 'c1', owner: 'owner', qos: 0, retainAsPublished: false, ids: [2] }]);
  const other = snapshot(tree.match('a/b', 'c2')).clients;
  assert.deepEqual(other, [{ clientId: 'c1', owner: 'owner', qos: 2, retainAsPublished: false, ids: [1, 2] }]);
  assert.deepEqual(snapshot(tree.match('a', 'c1')).clients, []);
});

test('[MQTT-3.8.4-3] subscribing again to an identical filter replaces the subscription', () => {
  const tree = new SubscriptionTree<string>();
  assert.equal(tree.add('c1', 'a/+', entry({ qos: 2, subscriptionIdentifier: 5 })), true);
  assert.equal(tree.add('c1', 'a/+', entry({ qos: 0 })), false);
  assert.equal(tree.count, 1);
  assert.deepEqual(snapshot(tree.match('a/b')).clients, [
    { clientId: 'c1', owner: 'owner', qos: 0, retainAsPublished: false, ids: [] },
  ]);
  assert.equal(tree.get('c1', 'a/+')?.entry.qos, 0);
  // A different client with the same filter is a different subscription.
  assert.equal(tree.add('c2', 'a/+', entry()), true);
  assert.equal(tree.count, 2);
});

test('remove: only the exact filter of that client, and reports whether it existed', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry());
  tree.add('c1', 'a/#', entry());
  tree.add('c2', 'a/+', entry());
  assert.equal(tree.remove('c1', 'a/b'), false);
  assert.equal(tree.remove('c3', 'a/+'), false);
  assert.equal(tree.remove('c1', 'a/+'), true);
  assert.equal(tree.remove('c1', 'a/+'), false);
  assert.equal(tree.count, 2);
  assert.deepEqual(
    snapshot(tree.match('a/b')).clients.map((c) => c.clientId),
    ['c1', 'c2'],
  );
  assert.equal(tree.remove('c1', 'a/#'), true);
  assert.equal(tree.clientCount, 1);
  assert.deepEqual(
    snapshot(tree.match('a/b')).clients.map((c) => c.clientId),
    ['c2'],
  );
  assert.equal(tree.get('c1', 'a/#'), undefined);
});

test('remove swaps the last subscription of a node into the freed slot without losing it', () => {
  const tree = new SubscriptionTree<string>();
  for (let i = 0; i < 5; i++) tree.add(`c${i}`, 'x/y', entry());
  tree.remove('c1', 'x/y');
  tree.remove('c0', 'x/y');
  tree.remove('c4', 'x/y');
  assert.deepEqual(
    snapshot(tree.match('x/y')).clients.map((c) => c.clientId),
    ['c2', 'c3'],
  );
  assert.equal(tree.remove('c3', 'x/y'), true);
  assert.equal(tree.remove('c2', 'x/y'), true);
  assert.deepEqual(snapshot(tree.match('x/y')).clients, []);
});

test('removeClient drops every subscription of that client, shared ones included, and nobody else’s', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry());
  tree.add('c1', '#', entry());
  tree.add('c1', '$share/g/a/+', entry());
  tree.add('c2', 'a/b', entry());
  tree.add('c2', '$share/g/a/+', entry());
  assert.equal(tree.removeClient('c1'), 3);
  assert.equal(tree.removeClient('c1'), 0);
  assert.equal(tree.count, 2);
  const r = tree.match('a/b');
  assert.deepEqual(
    r.clients.map((c) => c.clientId),
    ['c2'],
  );
  assert.deepEqual(
    r.shared[0]?.members.map((m) => m.clientId),
    ['c2'],
  );
  assert.deepEqual([...tree.subscriptionsOf('c1')], []);
  // The client can subscribe again afterwards.
  assert.equal(tree.add('c1', 'a/+', entry()), true);
  assert.equal(tree.match('a/b').clients.length, 2);
});

test('subscriptionsOf and get describe stored subscriptions, with the share prefix split out', () => {
  const tree = new SubscriptionTree<string>();
  const e = entry({ qos: 1 });
  tree.add('c1', 'a/+', e);
  tree.add('c1', '$share/grp/a/#', entry());
  const plain = tree.get('c1', 'a/+');
  assert.equal(plain?.clientId, 'c1');
  assert.equal(plain.filter, 'a/+');
  assert.equal(plain.topicFilter, 'a/+');
  assert.equal(plain.shareName, undefined);
  assert.equal(plain.entry, e);
  const shared = tree.get('c1', '$share/grp/a/#');
  assert.equal(shared?.filter, '$share/grp/a/#');
  assert.equal(shared.topicFilter, 'a/#');
  assert.equal(shared.shareName, 'grp');
  assert.deepEqual(
    [...tree.subscriptionsOf('c1')].map((s) => s.filter).sort(),
    ['$share/grp/a/#', 'a/+'],
  );
  assert.deepEqual([...tree.subscriptionsOf('nobody')], []);
});

test('emptied branches are pruned: churn leaves an empty tree that still works', () => {
  const tree = new SubscriptionTree<string>();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 50; i++) {
      tree.add(`c${i}`, `t/${i}/+/x`, entry());
      tree.add(`c${i}`, `$share/g${i % 3}/t/${i}/#`, entry());
    }
    assert.equal(tree.count, 100);
    for (let i = 0; i < 50; i++) tree.removeClient(`c${i}`);
    assert.equal(tree.count, 0);
    assert.equal(tree.clientCount, 0);
  }
  tree.add('z', 't/1/q/x', entry());
  assert.deepEqual(
    tree.match('t/1/q/x').clients.map((c) => c.clientId),
    ['z'],
  );
});

test('a result is never changed by later or nested matches (safe to keep while delivering)', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/#', entry({ qos: 1, subscriptionIdentifier: 1 }));
  tree.add('c1', 'a/+', entry({ qos: 0, subscriptionIdentifier: 2 }));
  tree.add('c2', 'a/b', entry({ qos: 2 }));
  tree.add('c3', '$share/g/a/#', entry());
  const outer = tree.match('a/b');
  const before = snapshot(outer);
  const seen: string[] = [];
  for (const c of outer.clients) {
    // A nested match from inside the delivery loop, overlapping the same clients.
    const inner = tree.match('a', c.clientId);
    seen.push(`${c.clientId}:${inner.clients.length}`);
  }
  tree.match('a/c');
  assert.deepEqual(snapshot(outer), before);
  assert.deepEqual(before.clients[0], { clientId: 'c1', owner: 'owner', qos: 1, retainAsPublished: false, ids: [1, 2] });
  assert.deepEqual(before.shared, ['g|a/#']);
  assert.deepEqual(seen, ['c1:1', 'c2:1']);
  const empty = tree.match('zzz');
  assert.deepEqual([empty.clients.length, empty.shared.length], [0, 0]);
});

test('a malformed $share filter is kept as an ordinary literal filter, without throwing', () => {
  const tree = new SubscriptionTree<string>();
  assert.equal(tree.add('c1', '$share/g', entry()), true);
  assert.equal(tree.get('c1', '$share/g')?.shareName, undefined);
  assert.deepEqual(
    tree.match('$share/g').clients.map((c) => c.clientId),
    ['c1'],
  );
});

// ---- shared subscriptions (MQTT 5.0 section 4.8.2) ----

test('4.8.2 shared subscriptions are matched as groups, not as per-client results', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', '$share/g/a/+', entry({ qos: 1 }));
  tree.add('c2', '$share/g/a/+', entry({ qos: 2 }));
  tree.add('c3', '$share/h/a/+', entry());
  tree.add('c3', '$share/g/a/#', entry()); // same ShareName, different filter: another shared subscription
  tree.add('c3', 'a/b', entry());
  const r = snapshot(tree.match('a/b'));
  assert.deepEqual(
    r.clients.map((c) => c.clientId),
    ['c3'],
  );
  assert.deepEqual(r.shared, ['g|a/#', 'g|a/+', 'h|a/+']);
  assert.equal(tree.count, 5);
  assert.deepEqual(snapshot(tree.match('b')).shared, []);
});

test('[MQTT-4.7.2-1] shared wildcard filters do not match $ topics either', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', '$share/g/#', entry());
  tree.add('c1', '$share/g/$SYS/#', entry());
  assert.deepEqual(snapshot(tree.match('$SYS/x')).shared, ['g|$SYS/#']);
});

test('4.8.2 pickMember rotates round-robin over the group members', () => {
  const tree = new SubscriptionTree<string>();
  for (const c of ['c1', 'c2', 'c3']) tree.add(c, '$share/g/a', entry());
  const group = tree.match('a').shared[0];
  assert.ok(group);
  const picks = Array.from({ length: 7 }, () => tree.pickMember(group)?.clientId);
  assert.deepEqual(picks, ['c1', 'c2', 'c3', 'c1', 'c2', 'c3', 'c1']);
});

test('4.8.2 pickMember skips members reported unavailable, and returns undefined when none is', () => {
  const offline = new Set<string>(['c2']);
  const tree = new SubscriptionTree<string>({ isAvailable: (m) => !offline.has(m.clientId) });
  for (const c of ['c1', 'c2', 'c3']) tree.add(c, '$share/g/a', entry());
  const group = tree.match('a').shared[0];
  assert.ok(group);
  assert.deepEqual(
    Array.from({ length: 4 }, () => tree.pickMember(group)?.clientId),
    ['c1', 'c3', 'c1', 'c3'],
  );
  offline.add('c1').add('c3');
  assert.equal(tree.pickMember(group), undefined);
  offline.clear();
  assert.equal(tree.pickMember(group)?.clientId, 'c1');
});

test('4.8.2 the rotation stays fair when members leave and join', () => {
  const tree = new SubscriptionTree<string>();
  for (const c of ['c1', 'c2', 'c3', 'c4']) tree.add(c, '$share/g/a', entry());
  const group = tree.match('a').shared[0];
  assert.ok(group);
  assert.equal(tree.pickMember(group)?.clientId, 'c1');
  assert.equal(tree.pickMember(group)?.clientId, 'c2');
  tree.remove('c1', '$share/g/a'); // before the cursor
  assert.equal(tree.pickMember(group)?.clientId, 'c3');
  tree.remove('c4', '$share/g/a'); // the next one
  assert.equal(tree.pickMember(group)?.clientId, 'c2');
  tree.add('c5', '$share/g/a', entry());
  assert.deepEqual(
    Array.from({ length: 3 }, () => tree.pickMember(group)?.clientId),
    ['c3', 'c5', 'c2'],
  );
});

test('4.8.2 the picked member carries its own subscription options', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', '$share/g/a', entry({ qos: 1, subscriptionIdentifier: 4, owner: 's1' }));
  const group = tree.match('a').shared[0];
  assert.ok(group);
  const member = tree.pickMember(group);
  assert.equal(member?.entry.qos, 1);
  assert.equal(member.entry.subscriptionIdentifier, 4);
  assert.equal(member.entry.owner, 's1');
  assert.equal(member.shareName, 'g');
});

test('4.8.2 a group whose last member left is no longer matched; a foreign group object picks nobody', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', '$share/g/a', entry());
  const group = tree.match('a').shared[0];
  assert.ok(group);
  assert.equal(tree.remove('c1', '$share/g/a'), true);
  assert.deepEqual(snapshot(tree.match('a')).shared, []);
  assert.equal(tree.pickMember(group), undefined);
  assert.equal(tree.pickMember({ shareName: 'g', topicFilter: 'a', members: [] }), undefined);
});

test('4.8.2 a client in a group and subscribed directly is reported in both', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', '$share/g/a/#', entry());
  tree.add('c1', 'a/#', entry());
  const r = snapshot(tree.match('a/b'));
  assert.deepEqual(
    r.clients.map((c) => c.clientId),
    ['c1'],
  );
  assert.deepEqual(r.shared, ['g|a/#']);
  assert.equal(tree.add('c1', '$share/g/a/#', entry({ qos: 2 })), false, 'replaces the shared one');
  assert.equal(tree.count, 2);
});

// ---- the topic -> nodes match cache ----

test('match cache: subscriptions added or removed after a topic was cached are seen', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a/+', entry());
  assert.deepEqual(
    tree.match('a/b').clients.map((c) => c.clientId),
    ['c1'],
  );
  tree.add('c2', 'a/+', entry({ qos: 2 })); // existing filter node: the cached node list stays valid
  assert.deepEqual(snapshot(tree.match('a/b')).clients.map((c) => [c.clientId, c.qos]), [
    ['c1', 0],
    ['c2', 2],
  ]);
  tree.add('c3', 'a/b', entry()); // new filter node: the cache must not hide it
  tree.add('c4', '$share/g/+/b', entry());
  const r = snapshot(tree.match('a/b'));
  assert.deepEqual(
    r.clients.map((c) => c.clientId),
    ['c1', 'c2', 'c3'],
  );
  assert.deepEqual(r.shared, ['g|+/b']);
  tree.removeClient('c1');
  tree.remove('c3', 'a/b'); // node pruned while cached
  tree.remove('c4', '$share/g/+/b');
  assert.deepEqual(snapshot(tree.match('a/b')), {
    clients: [{ clientId: 'c2', owner: 'owner', qos: 2, retainAsPublished: false, ids: [] }],
    shared: [],
  });
  tree.add('c3', 'a/b', entry()); // recreated after pruning
  assert.deepEqual(
    snapshot(tree.match('a/b')).clients.map((c) => c.clientId),
    ['c2', 'c3'],
  );
});

test('match cache: No Local is decided per call, not cached', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('c1', 'a', entry({ noLocal: true }));
  assert.equal(tree.match('a', 'c1').clients.length, 0);
  assert.equal(tree.match('a', 'c2').clients.length, 1);
  assert.equal(tree.match('a', 'c1').clients.length, 0);
});

test('match cache: overflowing topics and a disabled cache give the same answers', () => {
  const small = new SubscriptionTree<string>({ matchCacheSize: 4 });
  const none = new SubscriptionTree<string>({ matchCacheSize: 0 });
  for (const tree of [small, none]) {
    tree.add('c1', 't/+', entry());
    tree.add('c2', 't/7', entry());
  }
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 50; i++) {
      for (const tree of [small, none]) {
        assert.deepEqual(
          snapshot(tree.match(`t/${i}`)).clients.map((c) => c.clientId),
          i === 7 ? ['c1', 'c2'] : ['c1'],
        );
      }
    }
  }
});

// ---- scale and robustness ----

test('a topic with 30,000 levels matches without exhausting the stack', () => {
  const tree = new SubscriptionTree<string>();
  const deep = Array<string>(30_000).fill('a').join('/');
  tree.add('c1', deep, entry());
  tree.add('c2', `${deep.slice(0, -2)}/+`, entry());
  tree.add('c3', 'a/a/#', entry());
  assert.deepEqual(snapshot(tree.match(deep)).clients.map((c) => c.clientId), ['c1', 'c2', 'c3']);
  assert.deepEqual(snapshot(tree.match(`${deep}/a`)).clients.map((c) => c.clientId), ['c3']);
  assert.equal(tree.removeClient('c1'), 1);
  assert.deepEqual(snapshot(tree.match(deep)).clients.map((c) => c.clientId), ['c2', 'c3']);
});

test('bulk sweeps of emptied clients and nodes keep results and counts right (flapping clients)', () => {
  const tree = new SubscriptionTree<string>();
  tree.add('stay', 'dev/+/cmd', entry());
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3000; i++) {
      tree.add(`c${i}`, `dev/${i}/cmd`, entry());
      tree.add(`c${i}`, `$share/g/dev/${i}/#`, entry());
    }
    assert.equal(tree.count, 6001);
    assert.equal(tree.clientCount, 3001);
    assert.deepEqual(snapshot(tree.match('dev/7/cmd')).clients.map((c) => c.clientId), ['c7', 'stay']);
    for (let i = 0; i < 3000; i++) {
      if (i % 2 === 0) tree.removeClient(`c${i}`);
      else {
        tree.remove(`c${i}`, `dev/${i}/cmd`);
        tree.remove(`c${i}`, `$share/g/dev/${i}/#`);
      }
    }
    assert.equal(tree.count, 1);
    assert.equal(tree.clientCount, 1);
    assert.deepEqual(snapshot(tree.match('dev/7/cmd')), {
      clients: [{ clientId: 'stay', owner: 'owner', qos: 0, retainAsPublished: false, ids: [] }],
      shared: [],
    });
    // The same client flapping on the same filter.
    for (let k = 0; k < 2000; k++) {
      tree.add('flap', 'dev/flap/cmd', entry());
      tree.removeClient('flap');
    }
    assert.equal(tree.get('flap', 'dev/flap/cmd'), undefined);
    assert.deepEqual([...tree.subscriptionsOf('c3')], []);
  }
});
