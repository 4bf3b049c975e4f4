/**
 * Property tests (fixed seed): the subscription trie and the retained store against brute-force models built from
 * the reference matcher, over random filters, topics and add/remove sequences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { QoS } from '../../../../src/protocol/constants.js';
import { SubscriptionTree } from '../../../../src/broker/router/subscription-tree.js';
import { MemoryRetainedStore } from '../../../../src/broker/router/retained-store.js';
import { bruteMatch, entry } from './helpers.js';

const SEED = 20261126;

// Small alphabets so that random filters and topics collide often; '' gives empty levels, '$s' the $ rule.
const topicLevel = fc.constantFrom('a', 'b', '', '$s', 'c d');
// [MQTT-4.7.3-1] names and filters are at least one character: '' alone is not generated.
const topicArb = fc
  .array(topicLevel, { minLength: 1, maxLength: 4 })
  .map((l) => l.join('/'))
  .filter((t) => t.length > 0);
const filterArb = fc
  .tuple(fc.array(fc.oneof(topicLevel, fc.constant('+')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels.slice(0, -1), '#'] : levels).join('/'))
  .filter((f) => f.length > 0);

const opArb = fc.record({
  kind: fc.constantFrom('add', 'add', 'add', 'remove', 'removeClient'),
  client: fc.constantFrom('c0', 'c1', 'c2'),
  filter: filterArb,
  share: fc.option(fc.constantFrom('g', 'h'), { nil: undefined }),
  qos: fc.constantFrom<QoS>(0, 1, 2),
  noLocal: fc.boolean(),
  retainAsPublished: fc.boolean(),
  id: fc.option(fc.integer({ min: 1, max: 268_435_455 }), { nil: undefined }),
});

interface ModelSub {
  client: string;
  topicFilter: string;
  share: string | undefined;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  id: number | undefined;
}

/** Compares one match against the model. */
function checkMatch(tree: SubscriptionTree<string>, model: Map<string, ModelSub>, topic: string, publisher?: string) {
  const expected = new Map<string, { qos: number; rap: boolean; ids: number[] }>();
  const groups = new Set<string>();
  for (const s of model.values()) {
    if (!bruteMatch(s.topicFilter, topic)) continue;
    if (s.share !== undefined) {
      groups.add(`${s.share}|${s.topicFilter}`);
      continue;
    }
    if (s.noLocal && s.client === publisher) continue;
    const cur = expected.get(s.client) ?? { qos: 0, rap: false, ids: [] };
    cur.qos = Math.max(cur.qos, s.qos);
    cur.rap ||= s.retainAsPublished;
    if (s.id !== undefined) cur.ids.push(s.id);
    expected.set(s.client, cur);
  }
  for (const v of expected.values()) v.ids.sort((a, b) => a - b);
  const result = tree.match(topic, publisher);
  const actual = new Map(
    result.clients.map((c) => [
      c.clientId,
      { qos: c.qos as number, rap: c.retainAsPublished, ids: [...c.subscriptionIdentifiers].sort((a, b) => a - b) },
    ]),
  );
  assert.equal(result.clients.length, actual.size, 'one result per client');
  assert.deepEqual(actual, expected, `topic '${topic}' from ${publisher ?? '-'}`);
  assert.deepEqual(
    result.shared.map((g) => `${g.shareName}|${g.topicFilter}`).sort(),
    [...groups].sort(),
  );
  for (const g of result.shared) {
    const members = [...model.values()]
      .filter((s) => s.share === g.shareName && s.topicFilter === g.topicFilter)
      .map((s) => s.client)
      .sort();
    assert.deepEqual(g.members.map((m) => m.clientId).sort(), members);
  }
}

const publishArb = fc.tuple(topicArb, fc.option(fc.constantFrom('c0', 'c1', 'c9'), { nil: undefined }));

// Cache sizes: default, disabled, and tiny (fills, clears and goes into cool-down constantly).
for (const matchCacheSize of [undefined, 0, 2]) {
  test(`property: SubscriptionTree.match equals the brute-force model under random add/remove/publish (cache ${String(matchCacheSize ?? 'default')})`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(opArb, publishArb), { minLength: 1, maxLength: 60, size: 'max' }),
        fc.array(publishArb, { minLength: 1, maxLength: 8, size: 'max' }),
        (steps, finalPublishes) => {
          const tree = new SubscriptionTree<string>(matchCacheSize === undefined ? {} : { matchCacheSize });
          const model = new Map<string, ModelSub>(); // key: client + '\0' + full filter
          for (const step of steps) {
            if (Array.isArray(step)) {
              checkMatch(tree, model, step[0], step[1]);
              continue;
            }
            const op = step;
            const full = op.share === undefined ? op.filter : `$share/${op.share}/${op.filter}`;
            const key = `${op.client}\0${full}`;
            if (op.kind === 'add') {
              const e = entry({
                qos: op.qos,
                noLocal: op.share === undefined && op.noLocal,
                retainAsPublished: op.retainAsPublished,
                ...(op.id === undefined ? {} : { subscriptionIdentifier: op.id }),
              });
              assert.equal(tree.add(op.client, full, e), !model.has(key));
              model.set(key, {
                client: op.client,
                topicFilter: op.filter,
                share: op.share,
                qos: e.qos,
                noLocal: e.noLocal,
                retainAsPublished: e.retainAsPublished,
                id: op.id,
              });
            } else if (op.kind === 'remove') {
              assert.equal(tree.remove(op.client, full), model.delete(key));
            } else {
              let n = 0;
              for (const [k, s] of model) {
                if (s.client === op.client) {
                  model.delete(k);
                  n++;
                }
              }
              assert.equal(tree.removeClient(op.client), n);
            }
            assert.equal(tree.count, model.size);
          }
          for (const [topic, publisher] of finalPublishes) checkMatch(tree, model, topic, publisher);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
}

test('property: MemoryRetainedStore.match equals a scan of all retained topics, expiry included', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          topic: topicArb,
          empty: fc.boolean(),
          expiresAt: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
        }),
        { maxLength: 30, size: 'max' },
      ),
      fc.array(filterArb, { minLength: 1, maxLength: 6, size: 'max' }),
      fc.integer({ min: 0, max: 100 }),
      (sets, filters, now) => {
        const store = new MemoryRetainedStore();
        const model = new Map<string, number | undefined>(); // topic -> expiresAt
        for (const s of sets) {
          store.set(s.topic, {
            topic: s.topic,
            payload: Buffer.from(s.empty ? '' : 'p'),
            qos: 0,
            storedAt: 0,
            ...(s.expiresAt === undefined ? {} : { expiresAt: s.expiresAt }),
          });
          if (s.empty) model.delete(s.topic);
          else model.set(s.topic, s.expiresAt);
        }
        assert.equal(store.count, model.size);
        for (const filter of filters) {
          const expected = [...model]
            .filter(([t, at]) => bruteMatch(filter, t) && (at === undefined || at > now))
            .map(([t]) => t)
            .sort();
          assert.deepEqual(
            store
              .match(filter, now)
              .map((m) => m.topic)
              .sort(),
            expected,
            filter,
          );
        }
        const live = [...model.values()].filter((at) => at === undefined || at > now).length;
        store.purgeExpired(now);
        assert.equal(store.count, live);
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});
