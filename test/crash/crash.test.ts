/**
 * Crash test: a broker child process on SQLite (durability batch) under QoS 1, QoS 2 and retained load from MQTT.js
 * publishers, with persistent-session subscribers (v5 Session Expiry and v3.1.1 Clean Session 0), is killed with
 * SIGKILL at seeded random moments and restarted on the same data folder, 20 times in a row. Afterwards:
 * every acknowledged QoS 1 message reached each subscriber at least once, every acknowledged QoS 2 message exactly
 * once, the retained message of each topic is the last acknowledged one, and sessions and subscriptions survived
 * (the subscribers never resubscribe, and every reconnect finds Session Present).
 * TELEMQ_CRASH_SEED=<n> replays a run; TELEMQ_CRASH_RESTARTS=<n> changes the number of kills.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

const RESTARTS = Number(process.env.TELEMQ_CRASH_RESTARTS ?? 20);
const SEED = Number(process.env.TELEMQ_CRASH_SEED ?? 20261126);

/** mulberry32: small seeded PRNG so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The child script next to this file: compiled .js under build/, or .ts through tsx when run from the source. */
function childCommand(): { args: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { args: ['--import', 'tsx', join(here, '..', 'broker-child.ts')] };
  return { args: [join(here, '..', 'broker-child.js')] };
}

interface Child {
  process: ChildProcess;
  port: number;
  exited: Promise<void>;
}

/** TELEMQ_CRASH_DURABILITY=sync|none|memory runs the same test on another mode (none and memory must fail it). */
const DURABILITY = process.env.TELEMQ_CRASH_DURABILITY ?? 'batch';

function startChild(dbPath: string, port: number): Promise<Child> {
  const storage = DURABILITY === 'memory' ? { type: 'memory' } : { type: 'sqlite', path: dbPath, durability: DURABILITY };
  const options = { storage, port };
  const child = spawn(process.execPath, [...childCommand().args, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<Child>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => {
      const { port: bound } = JSON.parse(line) as { port: number };
      resolve({ process: child, port: bound, exited });
    });
    child.once('exit', (code, signal) => reject(new Error(`broker child exited before listening (${code ?? signal})`)));
  });
}

/** Emits 'tick' whenever a publisher got an ack or a subscriber a message. */
const progress = new EventEmitter();

/** Resolves when `cond` holds, re-checked on each progress tick; rejects after `ms`. */
function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!cond()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what()}`));
    }, ms);
    const cleanup = (): void => {
      clearTimeout(timer);
      progress.off('tick', check);
    };
    progress.on('tick', check);
    check();
  });
}

interface Publisher {
  client: MqttClient;
  acked: Set<number>;
  inflight: number;
  sent: number;
}

test(`crash: ${RESTARTS} SIGKILLs under QoS 1/2 + retained load lose no acknowledged message (seed ${SEED})`, async (t) => {
  const random = prng(SEED);
  const dir = mkdtempSync(join(tmpdir(), 'telemq-crash-'));
  const dbPath = join(dir, 'data', 'telemq.db');
  const clients: MqttClient[] = [];
  let child = await startChild(dbPath, 0);
  const port = child.port;
  t.after(async () => {
    for (const c of clients) c.end(true);
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const base: IClientOptions = { host: '127.0.0.1', port, reconnectPeriod: 30, connectTimeout: 5000, resubscribe: false };
  const connect = (options: IClientOptions): MqttClient => {
    const c = mqtt.connect({ ...base, ...options });
    c.on('error', () => {}); // connection refused while the broker restarts
    clients.push(c);
    return c;
  };
  const connected = (c: MqttClient): Promise<void> => new Promise((resolve) => c.once('connect', () => resolve()));

  // Subscribers: one v5 with a Session Expiry Interval, one v3.1.1 with Clean Session 0.
  const subOptions: IClientOptions[] = [
    { clientId: 'crash-sub-v5', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } },
    { clientId: 'crash-sub-v4', protocolVersion: 4, clean: false },
  ];
  const subs = subOptions.map((o) => {
    const c = connect(o);
    const got = { q1: new Map<number, number>(), q2: new Map<number, number>(), lostSession: 0, connects: 0 };
    // For a failure report: how each QoS 2 message arrived (packet id, DUP flag, connection number).
    const how = new Map<number, string[]>();
    c.on('connect', (connack) => {
      got.connects++;
      if (got.connects > 1 && !connack.sessionPresent) got.lostSession++;
    });
    c.on('message', (topic, payload, packet) => {
      const seq = Number(payload.toString());
      const m = topic === 'crash/q1' ? got.q1 : got.q2;
      if (topic === 'crash/q2') {
        const list = how.get(seq) ?? [];
        list.push(`id ${String(packet.messageId)} dup ${String(packet.dup)} conn ${got.connects}`);
        how.set(seq, list);
      }
      m.set(seq, (m.get(seq) ?? 0) + 1);
      progress.emit('tick');
    });
    return { c, got, how };
  });
  await Promise.all(subs.map((s) => connected(s.c)));
  for (const s of subs) {
    await s.c.subscribeAsync({ 'crash/q1': { qos: 1 }, 'crash/q2': { qos: 2 } });
  }

  const makePublisher = (clientId: string): Publisher => ({
    client: connect({ clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } }),
    acked: new Set(),
    inflight: 0,
    sent: 0,
  });
  const p1 = makePublisher('crash-pub-q1');
  const p2 = makePublisher('crash-pub-q2');
  const pr = makePublisher('crash-pub-retained');
  await Promise.all([p1, p2, pr].map((p) => connected(p.client)));

  let producing = true;
  const RETAINED_TOPICS = 5;
  const lastRetained = new Map<string, number>();
  const pump = (p: Publisher, window: number, send: (seq: number, done: (err?: Error) => void) => void): void => {
    while (producing && p.client.connected && p.inflight < window) {
      const seq = ++p.sent;
      p.inflight++;
      send(seq, (err) => {
        p.inflight--;
        if (err === undefined || err === null) p.acked.add(seq);
        pump(p, window, send);
        progress.emit('tick');
      });
    }
  };
  const sendQ1 = (seq: number, done: (err?: Error) => void): void => {
    p1.client.publish('crash/q1', String(seq), { qos: 1 }, done);
  };
  const sendQ2 = (seq: number, done: (err?: Error) => void): void => {
    p2.client.publish('crash/q2', String(seq), { qos: 2 }, done);
  };
  // Retained: one publish in flight at a time, so the last acknowledged one per topic is also the last sent.
  const sendRetained = (seq: number, done: (err?: Error) => void): void => {
    const topic = `crash/r/${seq % RETAINED_TOPICS}`;
    pr.client.publish(topic, String(seq), { qos: 1, retain: true }, (err) => {
      if (err === undefined || err === null) lastRetained.set(topic, seq);
      done(err);
    });
  };
  const start = (): void => {
    pump(p1, 20, sendQ1);
    pump(p2, 10, sendQ2);
    pump(pr, 1, sendRetained);
  };
  for (const p of [p1, p2, pr]) p.client.on('connect', start);
  start();

  for (let i = 0; i < RESTARTS; i++) {
    // A random moment under load: 150 to 600 ms after the broker came up.
    await new Promise((resolve) => setTimeout(resolve, 150 + Math.floor(random() * 450)));
    child.process.kill('SIGKILL');
    await child.exited;
    child = await startChild(dbPath, port);
  }

  // Quiesce: no new messages; everything in flight gets acknowledged by the last broker.
  producing = false;
  const pubs = [p1, p2, pr];
  await until(
    () => pubs.every((p) => p.inflight === 0),
    20_000,
    () => `acks: ${pubs.map((p) => `${String(p.client.options.clientId)} ${p.inflight} in flight`).join(', ')}`,
  );
  const delivered = (): boolean =>
    subs.every((s) => [...p1.acked].every((q) => s.got.q1.has(q)) && [...p2.acked].every((q) => s.got.q2.has(q)));
  await until(delivered, 20_000, () => {
    const missing = subs.map((s) => {
      const q1 = [...p1.acked].filter((q) => !s.got.q1.has(q));
      const q2 = [...p2.acked].filter((q) => !s.got.q2.has(q));
      return `${String(s.c.options.clientId)} misses QoS 1 ${q1.slice(0, 10).join(',')} (${q1.length}), QoS 2 ${q2.slice(0, 10).join(',')} (${q2.length})`;
    });
    return `acknowledged messages delivered: ${missing.join('; ')}`;
  });

  assert.ok(p1.acked.size > 200 && p2.acked.size > 100, `load ran: ${p1.acked.size} QoS 1, ${p2.acked.size} QoS 2 acked`);
  for (const s of subs) {
    const id = s.c.options.clientId;
    // Sessions and subscriptions intact: every reconnect resumed the session; nothing was resubscribed.
    assert.equal(s.got.lostSession, 0, `${id}: session present on every reconnect`);
    assert.ok(s.got.connects > RESTARTS, `${id}: reconnected after each restart (${s.got.connects})`);
    for (const q of p1.acked) assert.ok(s.got.q1.has(q), `${id}: acknowledged QoS 1 #${q} delivered at least once`);
    for (const q of p2.acked) assert.ok(s.got.q2.has(q), `${id}: acknowledged QoS 2 #${q} delivered`);
    for (const [q, n] of s.got.q2) {
      assert.equal(n, 1, `${id}: QoS 2 #${q} delivered exactly once; arrivals: ${s.how.get(q)?.join(' | ') ?? ''}`);
    }
  }

  // Retained: a new client sees, per topic, the last acknowledged retained publish.
  const reader = connect({ clientId: 'crash-retained-reader', protocolVersion: 5, clean: true });
  const retained = new Map<string, number>();
  reader.on('message', (topic, payload, packet) => {
    if (packet.retain) retained.set(topic, Number(payload.toString()));
    progress.emit('tick');
  });
  await connected(reader);
  await reader.subscribeAsync('crash/r/#', { qos: 1 });
  await until(() => retained.size >= lastRetained.size, 5000, () => `retained messages (${retained.size})`);
  assert.deepEqual(
    new Map([...retained].sort()),
    new Map([...lastRetained].sort()),
    'retained = last acknowledged retained publish per topic',
  );
  t.diagnostic(
    `seed ${SEED}: ${RESTARTS} kills; acked ${p1.acked.size} QoS 1, ${p2.acked.size} QoS 2, ${pr.acked.size} retained`,
  );
});
