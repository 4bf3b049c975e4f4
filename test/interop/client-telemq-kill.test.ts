import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Message } from '../../src/client/index.js';
import { freePort } from '../helpers/mosquitto.js';
import { Proxy, PUBCOMP, PUBREC, PUBREL } from './client-proxy.js';

const fromSource = import.meta.url.endsWith('.ts');
const mainFile = fileURLToPath(new URL(fromSource ? '../../src/cli/main.ts' : '../../src/cli/main.js', import.meta.url));
const nodeArgs = fromSource ? ['--import', 'tsx', mainFile] : [mainFile];

/** `telemq broker` as a child process with a SQLite store written synchronously; resolves once it listens. */
async function startTelemq(port: number, db: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, 'broker', '-p', String(port), '-H', '127.0.0.1', '--db', db, '--durability', 'sync', '--no-sys', '-l', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes('"msg":"listening"')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`telemq broker exited (${String(code)}): ${out}`)));
  });
  return child;
}

function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}

test('telemq broker killed with SIGKILL mid-flow and restarted: QoS 2 publish is exactly once [MQTT-4.3.3-10] [MQTT-4.4.0-1]', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-kill-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const db = join(dir, 'broker.db');
  let broker = await startTelemq(port, db);
  t.after(() => kill9(broker));
  const session = { sessionExpiryInterval: 300, cleanStart: false } as const;
  const subOptions = { clientId: 'kill-sub', ...session, reconnect: false } as const;
  const first = await connect(`mqtt://127.0.0.1:${port}`, subOptions);
  await first.subscribe('k/#', { qos: 2 });
  await first.end();

  const proxy = await Proxy.start(port);
  t.after(() => proxy.close());
  const pub = await connect(proxy.url, { clientId: 'kill-pub', ...session, reconnect: { initialDelay: 20, maxDelay: 200 } });
  t.after(() => pub.end());
  let droppedPubrec = 0;
  proxy.passDown = (p) => {
    if (p.type === PUBCOMP) return false;
    if (p.type === PUBREC && p.bytes.readUInt16BE(2) > 5) {
      droppedPubrec++;
      return false;
    }
    return true;
  };
  const flows = Array.from({ length: 10 }, (_, i) => pub.publish(`k/${i + 1}`, `m${i + 1}`, { qos: 2 }));
  const conn = proxy.connections[0];
  assert.ok(conn);
  await proxy.until(() => conn.up.filter((p) => p.type === PUBREL).length === 5 && droppedPubrec === 5);

  await kill9(broker);
  proxy.passDown = () => true;
  proxy.cut();
  broker = await startTelemq(port, db);

  const results = await Promise.all(flows);
  assert.equal(results.length, 10);
  await pub.publish('k/end', 'end', { qos: 2 });
  const sub = await connect(`mqtt://127.0.0.1:${port}`, subOptions);
  t.after(() => sub.end());
  const counts = new Map<string, number>();
  for await (const m of sub.messages() as AsyncIterable<Message>) {
    counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    if (m.topic === 'k/end') break;
  }
  for (let i = 1; i <= 10; i++) assert.equal(counts.get(`k/${i}`), 1, `k/${i} delivered exactly once`);
});
