/**
 * npm run bench:persistence — QoS 1 throughput of telemq on durable SQLite storage (durability batch and sync)
 * against telemq in memory and Mosquitto with `persistence true`, same load, one run. The load generator is
 * ../shared/bench/mqtt-load (C, libmosquitto) with persistent-session subscribers (see loadGenerator). Prints a markdown report, writes it to
 * bench/results/persistence-<date>.md, and ends with one JSON line.
 *
 * Options: --seconds N (per run, default 4), --reps N (default 3, median reported), --quick (1 rep, 2 s).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(new URL('.', import.meta.url));
// Compiled: build/bench/persistence.js; the repository root is two levels up.
const root = join(here, '..', '..');
const build = join(root, 'build');

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, reps: { type: 'string' }, quick: { type: 'boolean' } },
});
const quick = values.quick === true;
const seconds = Number(values.seconds ?? (quick ? 2 : 4));
const reps = Number(values.reps ?? (quick ? 1 : 3));

interface Target {
  name: string;
  start(dir: string): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} did not open`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
}

function telemq(name: string, storage: (dir: string) => object): Target {
  return {
    name,
    start: (dir) => {
      const child = spawn(
        process.execPath,
        [join(build, 'test', 'crash', 'broker-child.js'), JSON.stringify({ storage: storage(dir) })],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      return new Promise((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => {
          const { port } = JSON.parse(line) as { port: number };
          resolve({ port, pid: child.pid ?? 0, stop: stopper(child) });
        });
      });
    },
  };
}

const mosquitto: Target = {
  name: 'mosquitto (persistence true)',
  start: async (dir) => {
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
        'max_queued_messages 1000000',
        'log_dest none',
        '',
      ].join('\n'),
    );
    const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitForPort(port, 5000);
    return { port, pid: child.pid ?? 0, stop: stopper(child) };
  },
};

const targets: Target[] = [
  telemq('telemq memory', () => ({ type: 'memory' })),
  telemq('telemq sqlite batch', (dir) => ({ type: 'sqlite', path: join(dir, 'telemq.db'), durability: 'batch' })),
  telemq('telemq sqlite sync', (dir) => ({ type: 'sqlite', path: join(dir, 'telemq.db'), durability: 'sync' })),
  // Acks do not wait for storage: the upper bound of what SQLite costs besides the waiting.
  telemq('telemq sqlite none', (dir) => ({ type: 'sqlite', path: join(dir, 'telemq.db'), durability: 'none' })),
  mosquitto,
];

const scenarios = [
  { name: 'S-fanin: 16 pub -> 16 sub, QoS 1, window 20', args: ['--pubs', '16', '--subs', '16', '--topics', '16'] },
  { name: 'S-pair: 1 pub -> 1 sub, QoS 1, window 20', args: ['--pubs', '1', '--subs', '1'] },
];

/**
 * ../shared/bench/mqtt-load (read-only) built into build/mqtt-load/, with one change in the copy: subscribers
 * connect with Clean Session 0. telemq keeps nothing for a clean session (it ends with its connection), so with
 * the stock clean subscribers no write would reach storage and the run would measure nothing durable.
 */
function loadGenerator(): string {
  const dir = join(build, 'mqtt-load');
  const bin = join(dir, 'mqtt-load-persistent');
  if (existsSync(bin)) return bin;
  const shared = join(root, '..', 'shared', 'bench');
  mkdirSync(dir, { recursive: true });
  const original = 'c->m = mosquitto_new(id, true, c);';
  const source = readFileSync(join(shared, 'mqtt-load.c'), 'utf8');
  if (!source.includes(original)) throw new Error(`mqtt-load.c changed: '${original}' not found; update bench/persistence.ts`);
  writeFileSync(join(dir, 'mqtt-load-persistent.c'), source.replace(original, 'c->m = mosquitto_new(id, c->kind != K_SUB, c);'));
  execFileSync('cc', ['-O2', '-o', bin, join(dir, 'mqtt-load-persistent.c'), '-rdynamic', '-lmosquitto', '-lpthread', '-lm'], {
    stdio: 'inherit',
  });
  return bin;
}

interface Run {
  ack_rate: number;
  recv_rate: number;
  lost: number;
  broker_thread_max_pct?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const gen = loadGenerator();
  const results: Record<string, Record<string, { ack: number; cpu: number; lost: number }>> = {};
  for (const sc of scenarios) {
    const perTarget: Record<string, Run[]> = {};
    // rep -> target: drift on the machine hits every target alike.
    for (let rep = 0; rep < reps; rep++) {
      for (const target of targets) {
        const dir = mkdtempSync(join(tmpdir(), 'telemq-bench-persist-'));
        const b = await target.start(dir);
        try {
          const out = execFileSync(
            gen,
            [
              '--port', String(b.port), '--qos', '1', '--inflight', '20', '--size', '64', '--backlog', '1000',
              '--seconds', String(seconds), '--broker-pid', String(b.pid), '--quiet', ...sc.args,
            ],
            { encoding: 'utf8', maxBuffer: 1 << 20 },
          );
          const last = out.trim().split('\n').pop() ?? '{}';
          (perTarget[target.name] ??= []).push(JSON.parse(last) as Run);
        } finally {
          await b.stop();
          rmSync(dir, { recursive: true, force: true });
        }
        process.stderr.write(`${sc.name} | ${target.name} | rep ${rep + 1}/${reps} done\n`);
      }
    }
    results[sc.name] = Object.fromEntries(
      Object.entries(perTarget).map(([name, runs]) => [
        name,
        {
          ack: Math.round(median(runs.map((r) => r.ack_rate))),
          cpu: Math.round(median(runs.map((r) => r.broker_thread_max_pct ?? 0))),
          lost: Math.max(...runs.map((r) => r.lost)),
        },
      ]),
    );
  }

  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const lines: string[] = [
    `# Persistence benchmark, ${new Date().toISOString().slice(0, 16)}Z`,
    '',
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), commit ${commit}, ` +
      `${reps} rep(s) of ${seconds} s, median; payload 64 B; mqtt-load --qos 1 --inflight 20 --backlog 1000, ` +
      'subscribers with Clean Session 0 (persistent sessions: every delivery is stored until acknowledged).',
    '',
  ];
  const summary: Record<string, unknown> = { bench: 'persistence', commit, seconds, reps };
  for (const [sc, byTarget] of Object.entries(results)) {
    const mem = byTarget['telemq memory']?.ack ?? 0;
    const batch = byTarget['telemq sqlite batch']?.ack ?? 0;
    const mosq = byTarget['mosquitto (persistence true)']?.ack ?? 0;
    lines.push(`## ${sc}`, '', '| broker | QoS 1 msg/s (acked) | vs telemq memory | broker thread CPU % | lost |', '|---|---:|---:|---:|---:|');
    for (const [name, r] of Object.entries(byTarget)) {
      lines.push(`| ${name} | ${r.ack} | ${mem > 0 ? (r.ack / mem).toFixed(2) : '-'}x | ${r.cpu} | ${r.lost} |`);
    }
    lines.push('', `durable (batch) / in-memory: **${(batch / mem).toFixed(2)}x** (target >= 0.5x); durable (batch) / Mosquitto persistence: **${(batch / mosq).toFixed(2)}x**`, '');
    summary[sc.split(':')[0] ?? sc] = {
      memory: mem,
      sqliteBatch: batch,
      sqliteSync: byTarget['telemq sqlite sync']?.ack ?? 0,
      sqliteNone: byTarget['telemq sqlite none']?.ack ?? 0,
      mosquitto: mosq,
      batchVsMemory: Number((batch / mem).toFixed(3)),
      batchVsMosquitto: Number((batch / mosq).toFixed(3)),
    };
  }
  const report = lines.join('\n');
  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `persistence-${new Date().toISOString().slice(0, 10)}.md`);
  writeFileSync(file, `${report}\n<!-- ${JSON.stringify(summary)} -->\n`);
  process.stdout.write(`${report}\nwritten to ${file}\n${JSON.stringify(summary)}\n`);
}

await main();
