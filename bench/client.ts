// Publish throughput of telemq's client beside MQTT.js against the same broker, in one process.
// npm run bench:client [-- --broker mosquitto|telemq]. Last line: one JSON object with the ratios (telemq / MQTT.js).
// The default broker is telemq (in memory, in a child process): Mosquitto saturates its one core first at QoS 0,
// which caps both clients at its rate and hides the difference between them.
import { availableParallelism } from 'node:os';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import mqtt from 'mqtt';
import { connect } from '../src/client/index.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';

const WINDOW = 1000; // publishes outstanding at once, for both clients
const COUNTS = { 0: 200_000, 1: 50_000 } as const;
const ROUNDS = 3;
const payload = Buffer.alloc(64, 0x61);
const topic = 'bench/client/throughput';

type Publish = (done: (err?: Error) => void) => void;

/** Runs `count` publishes with at most WINDOW outstanding; resolves with messages/s and CPU µs per message. */
function drive(count: number, publish: Publish): Promise<{ rate: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const onDone = (err?: Error): void => {
      if (err) {
        reject(err);
        return;
      }
      finished++;
      if (finished === count) {
        const cpu = process.cpuUsage(cpu0);
        resolve({ rate: count / ((performance.now() - t0) / 1000), cpu: (cpu.user + cpu.system) / count });
        return;
      }
      if (started < count) {
        started++;
        publish(onDone);
      }
    };
    while (started < Math.min(WINDOW, count)) {
      started++;
      publish(onDone);
    }
  });
}

const cleanups: Array<() => unknown> = [];
const context = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
const { values: flags } = parseArgs({ options: { broker: { type: 'string', default: 'telemq' } } });
const brokerName = flags.broker;
if (brokerName !== 'telemq' && brokerName !== 'mosquitto') throw new Error(`--broker must be telemq or mosquitto`);

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** The compiled telemq CLI in a child process, in-memory storage, until its port accepts connections. */
async function startTelemq(): Promise<{ url: string }> {
  const port = await freePort();
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'broker', '--memory', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'], {
    stdio: 'ignore',
  });
  cleanups.push(() => {
    child.kill('SIGTERM');
    return once(child, 'exit');
  });
  for (let i = 0; i < 100; i++) {
    const socket = tcpConnect(port, '127.0.0.1');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    socket.destroy();
    if (ok) return { url: `mqtt://127.0.0.1:${port}` };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  throw new Error('telemq broker did not start');
}

const broker = brokerName === 'telemq' ? await startTelemq() : await startMosquitto(context);

const telemq = await connect(broker.url, { protocolVersion: 4, reconnect: false });
const mqttjs = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });

const sides = {
  telemq: (qos: 0 | 1): Publish => (done) => {
    telemq.publish(topic, payload, { qos }).then(() => done(), done);
  },
  'MQTT.js': (qos: 0 | 1): Publish => (done) => {
    mqttjs.publish(topic, payload, { qos }, (err) => done(err ?? undefined));
  },
};

const results: Record<string, Record<string, number[]>> = {};
const cpuCost: Record<string, Record<string, number[]>> = {};
for (const qos of [0, 1] as const) {
  // Warm-up, then alternate so drift in machine load hits both sides alike.
  await drive(COUNTS[qos] / 10, sides.telemq(qos));
  await drive(COUNTS[qos] / 10, sides['MQTT.js'](qos));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of Object.entries(sides)) {
      const { rate, cpu } = await drive(COUNTS[qos], make(qos));
      ((results[`qos${qos}`] ??= {})[name] ??= []).push(rate);
      ((cpuCost[`qos${qos}`] ??= {})[name] ??= []).push(cpu);
    }
  }
}

await telemq.end();
await mqttjs.endAsync();
for (const fn of cleanups.reverse()) await fn();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  // not a git checkout
}
console.log(`node ${process.version}, ${availableParallelism()} CPUs, commit ${commit}, ${brokerName} on 127.0.0.1, MQTT 3.1.1`);
console.log(`64-byte payload, ${WINDOW} publishes outstanding, median of ${ROUNDS} rounds (msgs/s)`);
console.log('case    telemq msgs/s  MQTT.js msgs/s  ratio   telemq CPU µs/msg  MQTT.js CPU µs/msg  ratio');
const ratios: Record<string, number> = {};
const round2 = (n: number): number => Math.round(n * 100) / 100;
for (const qos of ['qos0', 'qos1']) {
  const ours = median(results[qos]?.telemq ?? []);
  const theirs = median(results[qos]?.['MQTT.js'] ?? []);
  const ourCpu = median(cpuCost[qos]?.telemq ?? []);
  const theirCpu = median(cpuCost[qos]?.['MQTT.js'] ?? []);
  ratios[qos] = round2(ours / theirs);
  // CPU per message (this process: client code plus its socket syscalls), lower is better; ratio = MQTT.js / telemq.
  ratios[`${qos}_cpu`] = round2(theirCpu / ourCpu);
  console.log(
    `${qos}    ${Math.round(ours).toLocaleString('en').padStart(13)}  ${Math.round(theirs).toLocaleString('en').padStart(14)}  ${(ratios[qos] ?? 0).toFixed(2)}x  ${ourCpu.toFixed(2).padStart(17)}  ${theirCpu.toFixed(2).padStart(18)}  ${(ratios[`${qos}_cpu`] ?? 0).toFixed(2)}x`,
  );
}
console.log(JSON.stringify({ bench: 'client', throughput: 'telemq/MQTT.js msgs/s', cpu: 'MQTT.js/telemq CPU per msg', broker: brokerName, ...ratios }));
