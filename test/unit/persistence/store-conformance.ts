/**
 * The behaviour every Store must have, run against each implementation. `reload()` returns what a broker would
 * load at startup: a durable store closes and reopens its file first, so every case is also a restart test.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { PersistedSession, Store, StoredDelivery, StoredSubscription, StoredWill } from '../../../src/broker/persistence/store.js';

export interface StoreHarness {
  store: Store;
  /** Sessions as loaded at the next startup (after a restart for durable stores). */
  reload(): Promise<PersistedSession[]>;
}

export type StoreFactory = (t: TestContext) => Promise<StoreHarness>;

export function delivery(topic: string, payload: string, extra: Partial<StoredDelivery> = {}): StoredDelivery {
  return {
    message: { topic, payload: Buffer.from(payload), qos: 1, retain: false, origin: 'pub' },
    qos: 1,
    retain: false,
    ...extra,
  };
}

function sub(topicFilter: string, qos: 0 | 1 | 2 = 1): StoredSubscription {
  return { topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 };
}

function storedWill(payload: string, extra: Partial<StoredWill> = {}): StoredWill {
  return { topic: 'status/w', payload: Buffer.from(payload), qos: 1, retain: false, dueAt: Date.now() + 60_000, ...extra };
}

function only(sessions: PersistedSession[], clientId: string): PersistedSession {
  const s = sessions.find((x) => x.record.clientId === clientId);
  assert.ok(s, `session ${clientId} loaded`);
  return s;
}

export function storeConformance(name: string, factory: StoreFactory): void {
  test(`${name}: session record round trip, replaced in place`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'a', protocolVersion: 5, sessionExpiryInterval: 3600 });
    await s.putSession({ clientId: 'b', protocolVersion: 4, sessionExpiryInterval: 0xffffffff, disconnectedAt: Date.now() - 1000 });
    await s.putSubscription('a', sub('x/#'));
    // Replacing the record keeps subscriptions and messages.
    await s.putSession({ clientId: 'a', protocolVersion: 3, sessionExpiryInterval: 60, disconnectedAt: Date.now() });
    const loaded = await h.reload();
    assert.equal(loaded.length, 2);
    const a = only(loaded, 'a');
    assert.equal(a.record.protocolVersion, 3);
    assert.equal(a.record.sessionExpiryInterval, 60);
    assert.equal(typeof a.record.disconnectedAt, 'number');
    assert.deepEqual(a.subscriptions, [sub('x/#')]);
    const b = only(loaded, 'b');
    assert.equal(b.record.protocolVersion, 4);
    assert.equal(b.record.sessionExpiryInterval, 0xffffffff);
  });

  test(`${name}: subscriptions with every option, replaced by filter, deleted`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 100 });
    const full: StoredSubscription = {
      topicFilter: '$share/g/a/+',
      qos: 2,
      noLocal: true,
      retainAsPublished: true,
      retainHandling: 2,
      subscriptionIdentifier: 268_435_455,
    };
    await s.putSubscription('c', full);
    await s.putSubscription('c', sub('b', 0));
    await s.putSubscription('c', sub('gone'));
    await s.putSubscription('c', { ...sub('b', 2), retainHandling: 1 });
    await s.deleteSubscription('c', 'gone');
    await s.deleteSubscription('c', 'never-existed');
    const c = only(await h.reload(), 'c');
    const byFilter = new Map(c.subscriptions.map((x) => [x.topicFilter, x]));
    assert.equal(byFilter.size, 2);
    assert.deepEqual(byFilter.get('$share/g/a/+'), full);
    assert.deepEqual(byFilter.get('b'), { ...sub('b', 2), retainHandling: 1 });
  });

  test(`${name}: queue keeps seq order, dequeue removes, deliveries round trip with properties`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'q', protocolVersion: 5, sessionExpiryInterval: 100 });
    const rich = delivery('t/1', 'payload', {
      qos: 2,
      retain: true,
      subscriptionIdentifiers: [1, 7],
      shareFilter: '$share/g/t/+',
    });
    rich.message = {
      ...rich.message,
      qos: 2,
      retain: true,
      expiresAt: Date.now() + 3_600_000,
      properties: {
        payloadFormatIndicator: 1,
        contentType: 'text/plain',
        responseTopic: 'r/t',
        correlationData: Buffer.from([0, 1, 2, 255]),
        userProperties: [
          ['k', 'v'],
          ['k', 'v2'],
        ],
      },
    };
    const binary = delivery('t/2', '');
    binary.message = { ...binary.message, payload: Buffer.from([0, 0xff, 0x80, 0]) };
    // Inserted out of order on purpose: the queue is ordered by seq.
    await s.enqueue('q', 3, delivery('t/3', 'three'));
    await s.enqueue('q', 1, rich);
    await s.enqueue('q', 2, binary);
    await s.enqueue('q', 4, delivery('t/4', 'four'));
    await s.dequeue('q', 4);
    await s.dequeue('q', 99);
    const q = only(await h.reload(), 'q');
    assert.deepEqual(
      q.queue.map((x) => x.seq),
      [1, 2, 3],
    );
    assert.deepEqual(q.queue[0]?.delivery, rich);
    assert.deepEqual(q.queue[1]?.delivery.message.payload, Buffer.from([0, 0xff, 0x80, 0]));
    assert.equal(q.queue[2]?.delivery.message.payload.toString(), 'three');
  });

  test(`${name}: outgoing keeps first-send order, an update keeps its position`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'o', protocolVersion: 4, sessionExpiryInterval: 100 });
    for (const id of [5, 1, 9, 3]) {
      await s.putOutgoing('o', { packetId: id, state: 'publish', delivery: delivery(`t/${id}`, `m${id}`, { qos: 2 }) });
    }
    await s.putOutgoing('o', { packetId: 1, state: 'pubrel', delivery: delivery('t/1', 'm1', { qos: 2 }) });
    await s.deleteOutgoing('o', 9);
    const o = only(await h.reload(), 'o');
    assert.deepEqual(
      o.outgoing.map((x) => [x.packetId, x.state]),
      [
        [5, 'publish'],
        [1, 'pubrel'],
        [3, 'publish'],
      ],
    );
    assert.equal(o.outgoing[1]?.delivery.message.payload.toString(), 'm1');
  });

  test(`${name}: incoming QoS 2 ids awaiting PUBREL [MQTT-4.3.3-10]`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'i', protocolVersion: 5, sessionExpiryInterval: 100 });
    await s.putIncomingQoS2('i', 10);
    await s.putIncomingQoS2('i', 65535);
    await s.putIncomingQoS2('i', 10);
    await s.putIncomingQoS2('i', 7);
    await s.deleteIncomingQoS2('i', 7);
    const i = only(await h.reload(), 'i');
    assert.deepEqual([...i.incomingQoS2].sort((a, b) => a - b), [10, 65535]);
  });

  test(`${name}: deleteSession removes all its state and nothing of others`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    for (const id of ['gone', 'kept']) {
      await s.putSession({ clientId: id, protocolVersion: 5, sessionExpiryInterval: 100 });
      await s.putSubscription(id, sub('a'));
      await s.enqueue(id, 1, delivery('a', 'q'));
      await s.putOutgoing(id, { packetId: 1, state: 'publish', delivery: delivery('a', 'o') });
      await s.putIncomingQoS2(id, 1);
    }
    await s.deleteSession('gone');
    await s.deleteSession('absent');
    // A session recreated under the same id starts empty.
    await s.putSession({ clientId: 'gone', protocolVersion: 5, sessionExpiryInterval: 100 });
    const loaded = await h.reload();
    const gone = only(loaded, 'gone');
    assert.deepEqual([gone.subscriptions, gone.queue, gone.outgoing, gone.incomingQoS2], [[], [], [], []]);
    const kept = only(loaded, 'kept');
    assert.equal(kept.subscriptions.length, 1);
    assert.equal(kept.queue.length, 1);
    assert.equal(kept.outgoing.length, 1);
    assert.deepEqual([...kept.incomingQoS2], [1]);
  });

  test(`${name}: writes for a session that does not exist are ignored`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSubscription('nobody', sub('a'));
    await s.enqueue('nobody', 1, delivery('a', 'x'));
    await s.putOutgoing('nobody', { packetId: 1, state: 'publish', delivery: delivery('a', 'x') });
    await s.putIncomingQoS2('nobody', 1);
    await s.putWill('nobody', storedWill('x'));
    await s.putSession({ clientId: 'nobody', protocolVersion: 5, sessionExpiryInterval: 100 });
    const n = only(await h.reload(), 'nobody');
    assert.deepEqual([n.subscriptions, n.queue, n.outgoing, n.incomingQoS2], [[], [], [], []]);
    assert.equal(n.will, undefined);
  });

  test(`${name}: [MQTT-3.1.3-9] a waiting will round trips with its properties, due time and username; put replaces it`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    await s.putSession({ clientId: 'w', protocolVersion: 5, sessionExpiryInterval: 100, disconnectedAt: Date.now() });
    await s.putSession({ clientId: 'none', protocolVersion: 5, sessionExpiryInterval: 100, disconnectedAt: Date.now() });
    await s.putWill('w', storedWill('first'));
    const full = storedWill('', {
      topic: 'status/w/full',
      payload: Buffer.from([0, 0xff, 0x80]),
      qos: 2,
      retain: true,
      dueAt: 1_900_000_000_123,
      username: 'alice',
      properties: {
        willDelayInterval: 30,
        messageExpiryInterval: 120,
        payloadFormatIndicator: 0,
        contentType: 'application/octet-stream',
        responseTopic: 'r/w',
        correlationData: Buffer.from([1, 0, 2]),
        userProperties: [
          ['k', 'v'],
          ['k', 'v2'],
        ],
      },
    });
    await s.putWill('w', full);
    const loaded = await h.reload();
    assert.deepEqual(only(loaded, 'w').will, full);
    assert.equal(only(loaded, 'none').will, undefined, 'a session without a will loads none');
  });

  test(`${name}: [MQTT-3.1.2-10] a will is removed by deleteWill, and with its session`, async (t) => {
    const h = await factory(t);
    const s = h.store;
    for (const id of ['cancelled', 'ended', 'kept']) {
      await s.putSession({ clientId: id, protocolVersion: 5, sessionExpiryInterval: 100, disconnectedAt: Date.now() });
      await s.putWill(id, storedWill(id));
    }
    await s.deleteWill('cancelled');
    await s.deleteWill('absent');
    await s.deleteSession('ended');
    // A session recreated under the same id does not inherit the will.
    await s.putSession({ clientId: 'ended', protocolVersion: 5, sessionExpiryInterval: 100 });
    const loaded = await h.reload();
    assert.equal(only(loaded, 'cancelled').will, undefined);
    assert.equal(only(loaded, 'ended').will, undefined);
    assert.equal(only(loaded, 'kept').will?.payload.toString(), 'kept');
  });

  test(`${name}: a store with nothing in it loads no sessions`, async (t) => {
    const h = await factory(t);
    assert.deepEqual(await h.reload(), []);
  });
}
