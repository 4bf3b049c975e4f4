import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, openFileStore, type DeliveredEvent, type Message } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';

const childFile = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './client-store-child.ts' : './client-store-child.js', import.meta.url));
const childArgs = import.meta.url.endsWith('.ts') ? ['--import', 'tsx', childFile] : [childFile];

/** Accepts CONNECT, answers CONNACK (3.1.1, accepted) and then swallows everything: nothing is ever acknowledged. */
async function blackHoleBroker(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00])));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('file store: messages accepted by publish survive a killed application and are delivered exactly once after restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hole = await blackHoleBroker();
  t.after(() => hole.close());

  const child = spawn(process.execPath, [...childArgs, dir, `mqtt://127.0.0.1:${hole.port}`, 'store-app', '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('stored')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${String(code)})`)));
  });
  child.kill('SIGKILL');
  await exited;

  const broker = await startMosquitto(t);
  const sub = await connect(broker.url, { protocolVersion: 4, clientId: 'store-sub', reconnect: false });
  t.after(() => sub.end());
  await sub.subscribe('stored/#', { qos: 2 });

  // The restarted application: same ClientID and store; the messages go out and complete.
  const store = await openFileStore(dir);
  assert.deepEqual(store.list().map((m) => m.topic), ['stored/1', 'stored/2', 'stored/3', 'stored/4', 'stored/5']);
  const app = await connect(broker.url, { protocolVersion: 4, clientId: 'store-app', cleanStart: false, reconnect: false, store });
  const delivered: DeliveredEvent[] = [];
  const allDelivered = new Promise<void>((resolve) => {
    app.on('delivered', (e) => {
      delivered.push(e);
      if (delivered.length === 5) resolve();
    });
  });
  assert.equal(app.pending().length, 5);
  await allDelivered;
  assert.deepEqual(delivered.map((e) => [e.topic, e.restored]), [1, 2, 3, 4, 5].map((i) => [`stored/${i}`, true]));
  assert.deepEqual(app.pending(), []);
  await app.end();

  const received: Message[] = [];
  for await (const m of sub.messages()) {
    received.push(m);
    if (received.length === 5) break;
  }
  assert.deepEqual(received.map((m) => m.payload.toString()), [1, 2, 3, 4, 5].map((i) => `message ${i}`));
  // Nothing left for a third start.
  const reopened = await openFileStore(dir);
  assert.deepEqual(reopened.list(), []);
  await reopened.close();
});
