/**
 * The behaviour every Store must have, as a reusable suite: `runStoreConformance('sqlite', () => new SqliteStore(...))`
 * runs the same tests against another implementation. Each test gets a fresh store from `create`; a store may be
 * synchronous or asynchronous (every call is awaited).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store, StoredDelivery, StoredSubscription } from '../../../../src/broker/persistence/store.js';

export interface StoreFactory {
  create(): Store | Promise<Store>;
  /** Opens the same data again (durable stores); omit for stores that lose their data on close. */
  reopen?(previous: Store): Store | Promise<Store>;
}

const delivery = (text: string, qos: 0 | 1 | 2 = 1): StoredDelivery => ({
  message: { topic: 't', payload: Buffer.from(text), qos, retain: false, origin: 'p' },
  qos,
  retain: false,
});

const sub = (topicFilter: string, qos: 0 | 1 | 2 = 1): StoredSubscription => ({
  topicFilter,
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
});

export function runStoreConformance(name: string, factory: StoreFactory): void {
  const fresh = async (t: { after(fn: () => unknown): void }): Promise<Store> => {
    const store = await factory.create();
    t.after(() => store.close());
    return store;
  };

  test(`${name}: an empty store loads no sessions`, async (t) => {
    const store = await fresh(t);
    assert.deepEqual(await store.loadSessions(), []);
  });

  test(`${name}: a session round-trips with its subscriptions, queue, outgoing and incoming state`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 60 });
    await store.putSubscription('c', { ...sub('a/+', 2), noLocal: true, subscriptionIdentifier: 7 });
    await store.putSubscription('c', sub('$share/g/b'));
    await store.enqueue('c', 1, delivery('q1'));
    await store.enqueue('c', 2, delivery('q2', 2));
    await store.putOutgoing('c', { packetId: 10, state: 'publish', delivery: delivery('o1') });
    await store.putIncomingQoS2('c', 33);
    const [s, ...rest] = await store.loadSessions();
    assert.equal(rest.length, 0);
    assert.deepEqual(s?.record, { clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 60 });
    assert.deepEqual(
      s?.subscriptions.sort((x, y) => x.topicFilter.localeCompare(y.topicFilter)),
      [sub('$share/g/b'), { ...sub('a/+', 2), noLocal: true, subscriptionIdentifier: 7 }],
    );
    assert.deepEqual(s?.queue.map((q) => [q.seq, q.delivery.message.payload.toString(), q.delivery.qos]), [[1, 'q1', 1], [2, 'q2', 2]]);
    assert.deepEqual(s?.outgoing.map((o) => [o.packetId, o.state, o.delivery.message.payload.toString()]), [[10, 'publish', 'o1']]);
    assert.deepEqual(s?.incomingQoS2, [33]);
  });

  test(`${name}: putSession replaces the record and keeps subscriptions and messages`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 4, sessionExpiryInterval: 10 });
    await store.putSubscription('c', sub('x'));
    await store.enqueue('c', 1, delivery('m'));
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 20, disconnectedAt: 1234 });
    const [s] = await store.loadSessions();
    assert.deepEqual(s?.record, { clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 20, disconnectedAt: 1234 });
    assert.equal(s?.subscriptions.length, 1);
    assert.equal(s?.queue.length, 1);
  });

  test(`${name}: putSubscription replaces the same filter; deleteSubscription removes it`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
    await store.putSubscription('c', sub('x', 0));
    await store.putSubscription('c', sub('x', 2));
    let [s] = await store.loadSessions();
    assert.deepEqual(s?.subscriptions, [sub('x', 2)]);
    await store.deleteSubscription('c', 'x');
    await store.deleteSubscription('c', 'never-there');
    [s] = await store.loadSessions();
    assert.deepEqual(s?.subscriptions, []);
  });

  test(`${name}: the queue keeps order and dequeue removes by sequence number`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
    for (let i = 1; i <= 5; i++) await store.enqueue('c', i, delivery(`m${i}`));
    await store.dequeue('c', 1);
    await store.dequeue('c', 3);
    const [s] = await store.loadSessions();
    assert.deepEqual(s?.queue.map((q) => q.seq), [2, 4, 5]);
  });

  test(`${name}: outgoing messages keep their first-send order when updated to 'pubrel'`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
    await store.putOutgoing('c', { packetId: 5, state: 'publish', delivery: delivery('a') });
    await store.putOutgoing('c', { packetId: 2, state: 'publish', delivery: delivery('b') });
    await store.putOutgoing('c', { packetId: 9, state: 'publish', delivery: delivery('c') });
    await store.putOutgoing('c', { packetId: 5, state: 'pubrel', delivery: delivery('a') });
    await store.deleteOutgoing('c', 9);
    const [s] = await store.loadSessions();
    assert.deepEqual(s?.outgoing.map((o) => [o.packetId, o.state]), [[5, 'pubrel'], [2, 'publish']]);
  });

  test(`${name}: incoming QoS 2 ids are added and removed`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
    await store.putIncomingQoS2('c', 1);
    await store.putIncomingQoS2('c', 2);
    await store.deleteIncomingQoS2('c', 1);
    const [s] = await store.loadSessions();
    assert.deepEqual(s?.incomingQoS2, [2]);
  });

  test(`${name}: deleteSession removes everything of that session and nothing of others`, async (t) => {
    const store = await fresh(t);
    for (const id of ['a', 'b']) {
      await store.putSession({ clientId: id, protocolVersion: 4, sessionExpiryInterval: 10 });
      await store.putSubscription(id, sub('x'));
      await store.enqueue(id, 1, delivery('m'));
    }
    await store.deleteSession('a');
    await store.deleteSession('missing');
    const all = await store.loadSessions();
    assert.deepEqual(all.map((s) => s.record.clientId), ['b']);
    // A new session under the old id starts empty.
    await store.putSession({ clientId: 'a', protocolVersion: 4, sessionExpiryInterval: 10 });
    const again = (await store.loadSessions()).find((s) => s.record.clientId === 'a');
    assert.deepEqual([again?.subscriptions, again?.queue, again?.outgoing], [[], [], []]);
  });

  test(`${name}: payloads, properties and binary data survive unchanged`, async (t) => {
    const store = await fresh(t);
    await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
    const d: StoredDelivery = {
      message: {
        topic: 'a/b',
        payload: Buffer.from([0, 255, 1, 128]),
        qos: 2,
        retain: true,
        origin: 'pub',
        expiresAt: 1_700_000_000_000,
        properties: { contentType: 'x', correlationData: Buffer.from([9]), userProperties: [['k', 'v'], ['k', 'w']] },
      },
      qos: 1,
      retain: true,
      subscriptionIdentifiers: [3, 4],
      shareFilter: '$share/g/a/+',
    };
    await store.enqueue('c', 1, d);
    const [s] = await store.loadSessions();
    assert.deepEqual(s?.queue[0]?.delivery, d);
  });

  const reopen = factory.reopen;
  if (reopen !== undefined) {
    test(`${name}: data survives close and reopen`, async (t) => {
      const store = await factory.create();
      await store.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 10 });
      await store.enqueue('c', 1, delivery('kept'));
      const again = await reopen(store);
      t.after(() => again.close());
      const [s] = await again.loadSessions();
      assert.equal(s?.queue[0]?.delivery.message.payload.toString(), 'kept');
    });
  }
}
