/**
 * Router micro-benchmark: SubscriptionTree.match and MemoryRetainedStore.match throughput.
 * Run: `npx tsx bench/router.ts`: prints a markdown table and writes bench/results/router-<date>.md
 * (`--quick`: shorter rounds, nothing written).
 * qlobber (the matcher behind Aedes' mqemitter) runs the same sets in the same process as an anchor.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SubscriptionTree, type SubscriptionEntry } from '../src/broker/router/subscription-tree.js';
import { MemoryRetainedStore } from '../src/broker/router/retained-store.js';

interface QlobberLike {
  add(topic: string, value: unknown): unknown;
  match(topic: string): unknown[];
}
interface QlobberModule {
  Qlobber: new (options: Record<string, unknown>) => QlobberLike;
}

const quick = process.argv.includes('--quick');
const loadBefore = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
const ROUND_MS = quick ? 100 : 200;
const ROUNDS = quick ? 3 : 9;

let sink = 0;

/**
 * Best (lowest) ns per call of `fn(i)` over ROUNDS timed rounds, after warm-up: on a shared machine the noise only
 * ever adds time, so the minimum is the steadiest estimate.
 */
function measure(fn: (i: number) => number): number {
  let batch = 1000;
  // Warm up and calibrate the batch size to about ROUND_MS / 10 per batch.
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink += fn(i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > ROUND_MS / 10) break;
    batch *= 2;
  }
  const results: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let calls = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    const limit = BigInt(ROUND_MS) * 1_000_000n;
    while (elapsed < limit) {
      for (let i = 0; i < batch; i++) sink += fn(calls + i);
      calls += batch;
      elapsed = process.hrtime.bigint() - start;
    }
    results.push(Number(elapsed) / calls);
  }
  return Math.min(...results);
}

const rows: string[] = [];
function report(name: string, ns: number, note = ''): void {
  const line = `| ${name} | ${ns.toFixed(0)} | ${(1e9 / ns / 1e6).toFixed(2)} | ${note} |`;
  rows.push(line);
  console.log(line);
}

function entry(qos: 0 | 1 | 2, owner: number, subscriptionIdentifier?: number): SubscriptionEntry<number> {
  return {
    qos,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0,
    owner,
    ...(subscriptionIdentifier === undefined ? {} : { subscriptionIdentifier }),
  };
}

const require = createRequire(import.meta.url);
let qlobber: QlobberModule | undefined;
try {
  qlobber = require('qlobber') as QlobberModule;
} catch {
  qlobber = undefined;
}
function newQlobber(): QlobberLike | undefined {
  // Options as mqemitter (Aedes) sets them.
  return qlobber === undefined
    ? undefined
    : new qlobber.Qlobber({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true });
}

function fanout(tree: SubscriptionTree<number>, topics: readonly string[]): string {
  let total = 0;
  for (const t of topics) total += tree.match(t).clients.length;
  return `avg fan-out ${(total / topics.length).toFixed(2)}`;
}

console.log('| scenario | ns/op | Mops/s | notes |\n| --- | ---: | ---: | --- |');

// 1. One subscription, its exact topic.
{
  const tree = new SubscriptionTree<number>();
  tree.add('c0', 'sensors/1/temp', entry(1, 0));
  report('tree: 1 sub, exact topic', measure(() => tree.match('sensors/1/temp').clients.length));
  const q = newQlobber();
  if (q) {
    q.add('sensors/1/temp', 'c0');
    report('qlobber: 1 sub, exact topic', measure(() => q.match('sensors/1/temp').length), 'anchor');
  }
}

// 2. 10k clients on 10k distinct topics; publish to each in turn.
const N = 10_000;
const distinctTopics = Array.from({ length: N }, (_, i) => `dev/${i}/telemetry`);
{
  const tree = new SubscriptionTree<number>();
  const q = newQlobber();
  for (let i = 0; i < N; i++) {
    tree.add(`c${i}`, distinctTopics[i] as string, entry(1, i));
    q?.add(distinctTopics[i] as string, `c${i}`);
  }
  report('tree: 10k subs, distinct topics', measure((i) => tree.match(distinctTopics[i % N] as string).clients.length));
  // As on the wire: the decoder hands over a new string per PUBLISH, whose hash V8 has not cached yet.
  const buffers = distinctTopics.map((t) => Buffer.from(t));
  const decode = measure((i) => (buffers[i % N] as Buffer).toString('utf8').length);
  report('Buffer#toString of the topic alone', decode, 'baseline for the next row');
  report(
    'tree: 10k subs, distinct topics, fresh string per call',
    measure((i) => tree.match((buffers[i % N] as Buffer).toString('utf8')).clients.length),
    'includes the toString above',
  );
  report('tree: 10k subs, topic with no subscriber', measure(() => tree.match('dev/none/telemetry').clients.length));
  // Publishing over 100k distinct topics overflows the 16k-entry match cache: the miss path and its cool-down.
  const manyTopics = Array.from({ length: 10 * N }, (_, i) => `dev/${i}/telemetry`);
  report(
    'tree: 10k subs, publishes over 100k distinct topics',
    measure((i) => tree.match(manyTopics[i % (10 * N)] as string).clients.length),
    'cache overflows',
  );
  // Subscription churn: every 100 publishes one client swaps a per-device filter (a connect/disconnect storm).
  for (const [label, pattern] of [
    ['literal', (k: number) => `dev/x${k}/cmd`],
    ['wildcard', (k: number) => `dev/x${k}/#`],
  ] as const) {
    let previous = '';
    report(
      `tree: 10k subs, distinct topics, a new ${label} filter per 100 publishes`,
      measure((i) => {
        if (i % 100 === 0) {
          tree.remove('churn', previous);
          previous = pattern(i);
          tree.add('churn', previous, entry(0, -1));
        }
        return tree.match(distinctTopics[i % N] as string).clients.length;
      }),
      'includes the subscribe/unsubscribe',
    );
    tree.remove('churn', previous);
  }
  const uncached = new SubscriptionTree<number>({ matchCacheSize: 0 });
  for (let i = 0; i < N; i++) uncached.add(`c${i}`, distinctTopics[i] as string, entry(1, i));
  report(
    'tree, cache off: 10k subs, distinct topics, fresh string per call',
    measure((i) => uncached.match((buffers[i % N] as Buffer).toString('utf8')).clients.length),
    'includes toString; the cost while subscriptions churn',
  );
  if (q) report('qlobber: 10k subs, distinct topics', measure((i) => q.match(distinctTopics[i % N] as string).length), 'anchor');
  if (q) {
    report(
      'qlobber: 10k subs, distinct topics, fresh string per call',
      measure((i) => q.match((buffers[i % N] as Buffer).toString('utf8')).length),
      'anchor',
    );
  }
}

// 3. Wildcard-heavy: 10k subscriptions, most with + or #, over 100 sites x 10k devices.
const wildTopics = Array.from({ length: N }, (_, i) => `site/${i % 100}/dev${i}/temp`);
{
  const tree = new SubscriptionTree<number>();
  const q = newQlobber();
  const add = (client: string, filter: string, owner: number): void => {
    tree.add(client, filter, entry(1, owner));
    q?.add(filter, client);
  };
  for (let i = 0; i < 5000; i++) add(`a${i}`, `site/${i % 100}/dev${i}/+`, i);
  for (let i = 0; i < 3000; i++) add(`b${i}`, `site/+/dev${i}/#`, i);
  for (let i = 0; i < 1000; i++) add(`c${i}`, `site/${i % 100}/#`, i);
  for (let i = 0; i < 1000; i++) add(`d${i}`, `+/+/dev${i}/temp`, i);
  report(
    'tree: 10k subs, wildcard-heavy',
    measure((i) => tree.match(wildTopics[i % N] as string).clients.length),
    fanout(tree, wildTopics),
  );
  if (q) report('qlobber: 10k subs, wildcard-heavy', measure((i) => q.match(wildTopics[i % N] as string).length), 'anchor');
}

// 4. One client with 10 overlapping subscriptions carrying identifiers (one merged result).
{
  const tree = new SubscriptionTree<number>();
  const filters = ['a/b/c/d', 'a/b/c/+', 'a/b/+/d', 'a/+/c/d', '+/b/c/d', 'a/b/c/#', 'a/b/#', 'a/#', '#', '+/+/+/+'];
  filters.forEach((f, k) => tree.add('c0', f, entry((k % 3) as 0 | 1 | 2, 0, k + 1)));
  report(
    'tree: 1 client, 10 overlapping subs + ids',
    measure(() => tree.match('a/b/c/d').clients[0]?.subscriptionIdentifiers.length ?? 0),
  );
}

// 5. Shared: 10 groups x 10 members on one filter; match + one pick per group.
{
  const tree = new SubscriptionTree<number>();
  for (let g = 0; g < 10; g++) for (let m = 0; m < 10; m++) tree.add(`c${g}-${m}`, `$share/g${g}/jobs/+`, entry(1, m));
  report(
    'tree: shared 10 groups x 10, match + pickMember each',
    measure(() => {
      const shared = tree.match('jobs/42').shared;
      let n = 0;
      for (const group of shared) if (tree.pickMember(group) !== undefined) n++;
      return n;
    }),
  );
}

// 6. Retained store: 100k retained messages.
{
  const store = new MemoryRetainedStore();
  const payload = Buffer.from('21.5');
  for (let i = 0; i < 100_000; i++) {
    const topic = `site/${i % 100}/dev${i}/temp`;
    store.set(topic, { topic, payload, qos: 1, storedAt: 0 });
  }
  const exact = Array.from({ length: 1000 }, (_, i) => `site/${i % 100}/dev${i}/temp`);
  report('retained: 100k msgs, exact filter', measure((i) => store.match(exact[i % 1000] as string, 0).length));
  report('retained: 100k msgs, site/42/# (1k results)', measure(() => store.match('site/42/#', 0).length));
  report('retained: 100k msgs, +/42/+/temp (1k results)', measure(() => store.match('+/42/+/temp', 0).length));
}

if (sink === 42) console.log('');

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return start;
    dir = up;
  }
  return dir;
}

function commit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src/broker/router', 'bench/router.ts'], {
      cwd: root,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? head : `${head} (router files modified)`;
  } catch {
    return 'unknown';
  }
}

const root = findRoot(dirname(fileURLToPath(import.meta.url)));
const date = new Date().toISOString().slice(0, 10);
const cpuList = cpus();
const md = [
  `# Router micro-benchmark, ${date}`,
  '',
  `- node ${process.version}, ${cpuList.length} CPUs (${cpuList[0]?.model ?? 'unknown'}), commit ${commit(root)}`,
  `- load average before/after: ${loadBefore} / ${loadavg().map((l) => l.toFixed(2)).join(' ')} (a shared machine:`,
  '  compare rows of one run with each other, not with other runs)',
  `- \`npx tsx bench/router.ts${quick ? ' --quick' : ''}\`: best of ${ROUNDS} rounds of ${ROUND_MS} ms, one process;`,
  '  ns/op is per `match` call (retained: per `match(filter, now)` call). qlobber rows are the Aedes matcher, same',
  '  sets, same process (it returns values, no per-client merge).',
  '',
  '| scenario | ns/op | Mops/s | notes |',
  '| --- | ---: | ---: | --- |',
  ...rows,
  '',
].join('\n');
if (quick) {
  console.log('\n--quick: results not written');
} else {
  const outDir = join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `router-${date}.md`);
  writeFileSync(outFile, md);
  console.log(`\nwritten ${outFile}`);
}
