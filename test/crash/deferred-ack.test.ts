/**
 * The deferred row of a QoS 1 delivery (sqlite `ackWaitMs`) against a broker process killed with SIGKILL: the
 * publisher's PUBACK is released either by the subscriber's PUBACK (the message has arrived) or by the commit of the
 * row (the message is in the file), never before both are missing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Decoder, encode, type Packet, type PublishPacket } from '../../src/protocol/index.js';

interface Child {
  process: ChildProcess;
  port: number;
  exited: Promise<void>;
}

function startChild(dbPath: string, port: number, ackWaitMs: number): Promise<Child> {
  const here = fileURLToPath(import.meta.url);
  const args = here.endsWith('.ts')
    ? ['--import', 'tsx', join(here, '..', 'broker-child.ts')]
    : [join(here, '..', 'broker-child.js')];
  const options = { storage: { type: 'sqlite', path: dbPath, durability: 'batch', ackWaitMs }, port };
  const child = spawn(process.execPath, [...args, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<Child>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => {
      resolve({ process: child, port: (JSON.parse(line) as { port: number }).port, exited });
    });
    child.once('exit', (code, signal) => reject(new Error(`broker child exited before listening (${code ?? signal})`)));
  });
}

async function kill(child: Child): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  await child.exited;
}

/** A v3.1.1 client that speaks through our codec and acknowledges only when told to. */
class Client {
  readonly #socket: net.Socket;
  readonly #decoder = new Decoder({ protocolVersion: 4 });
  readonly #packets: Packet[] = [];
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk);
      for (let p = this.#decoder.read(); p !== undefined; p = this.#decoder.read()) {
        if (p instanceof Error) throw p;
        this.#packets.push(p);
      }
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(t: TestContext, port: number, clientId: string): Promise<Client> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new Client(socket);
    t.after(() => socket.destroy());
    c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: false, keepAlive: 0, clientId });
    const connack = await c.next('connack');
    assert.equal(connack.type === 'connack' && connack.reasonCode, 0);
    return c;
  }

  send(p: Packet): void {
    this.#socket.write(encode(p, 4));
  }

  /** The next packet of `type` (others received before it are dropped). */
  async next<K extends Packet['type']>(type: K, ms = 10_000): Promise<Extract<Packet, { type: K }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.#packets.findIndex((p) => p.type === type);
      if (i >= 0) return this.#packets.splice(i, 1)[0] as Extract<Packet, { type: K }>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async subscribe(filter: string): Promise<void> {
    this.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await this.next('suback');
  }

  /** Publishes at QoS 1 and resolves with the ms until its PUBACK. */
  async publish(topic: string, payload: string, packetId: number): Promise<number> {
    const started = performance.now();
    this.send({ type: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, packetId });
    const ack = await this.next('puback');
    assert.equal(ack.packetId, packetId);
    return performance.now() - started;
  }
}

function setupDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'telemq-deferred-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'telemq.db');
}

test('[MQTT-4.3.2-4] [MQTT-4.4.0-1] a subscriber that does not acknowledge: the PUBACK waits for the commit, and after SIGKILL the message is resent with DUP', async (t) => {
  const db = setupDir(t);
  let child = await startChild(db, 0, 300);
  t.after(() => kill(child));
  const sub = await Client.connect(t, child.port, 'slow-sub');
  await sub.subscribe('d/slow');
  const pub = await Client.connect(t, child.port, 'pub-1');
  const waited = await pub.publish('d/slow', 'm1', 1);
  const first = await sub.next('publish');
  assert.equal(first.payload.toString(), 'm1');
  assert.ok(waited >= 250, `the PUBACK waited for the subscriber, then for the commit (${waited.toFixed(0)} ms)`);
  await kill(child);

  child = await startChild(db, child.port, 300);
  const again = await Client.connect(t, child.port, 'slow-sub');
  const resent: PublishPacket = await again.next('publish');
  assert.equal(resent.payload.toString(), 'm1');
  assert.equal(resent.dup, true);
  assert.equal(resent.packetId, first.packetId);
});

test('[MQTT-4.3.2-4] a subscriber that acknowledges at once releases the publisher\'s PUBACK; its row never reaches the file', async (t) => {
  const db = setupDir(t);
  const child = await startChild(db, 0, 60_000);
  t.after(() => kill(child));
  const sub = await Client.connect(t, child.port, 'quick-sub');
  await sub.subscribe('d/quick');
  const pub = await Client.connect(t, child.port, 'pub-2');
  for (let i = 1; i <= 20; i++) {
    const acked = pub.publish('d/quick', `m${i}`, i);
    const m = await sub.next('publish');
    assert.equal(m.payload.toString(), `m${i}`);
    sub.send({ type: 'puback', packetId: m.packetId as number });
    // A minute of ackWaitMs: only the subscriber's PUBACK can have released this one.
    assert.ok((await acked) < 10_000);
  }
  await kill(child);
  const file = new Database(db, { readonly: true });
  t.after(() => file.close());
  const count = (file.prepare('SELECT count(*) AS n FROM outgoing').get() as { n: number }).n;
  assert.equal(count, 0);
  const sessions = (file.prepare("SELECT count(*) AS n FROM sessions WHERE client_id = 'quick-sub'").get() as { n: number }).n;
  assert.equal(sessions, 1, 'the session itself was committed');
});
