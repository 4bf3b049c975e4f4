/** Connection I/O over an in-memory Duplex: write batching and shared encoded PUBLISH bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { createBroker } from '../../../src/broker/index.js';
import { encode, type Packet } from '../../../src/protocol/index.js';
import { FakeClock } from './harness.js';

class FakeSocket extends Duplex {
  readonly writes: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes.push(chunk);
    cb();
  }
  send(...packets: Packet[]): void {
    this.push(Buffer.concat(packets.map((p) => encode(p, 4))));
  }
}

async function brokerWithSockets(t: { after(fn: () => unknown): void }, n: number): Promise<FakeSocket[]> {
  const broker = createBroker({ listeners: [], sys: { enabled: false } });
  await broker.start();
  t.after(() => broker.close(50));
  return Array.from({ length: n }, () => {
    const s = new FakeSocket();
    broker.handleConnection(s, { listener: 'test' });
    return s;
  });
}

const connect = (clientId: string): Packet => ({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 0, clientId });
const subscribe = (qos: 0 | 1): Packet => ({
  type: 'subscribe',
  packetId: 1,
  subscriptions: [{ topicFilter: 't', qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
});

test('replies to pipelined packets read in one chunk go out in one write', async (t) => {
  const [s] = await brokerWithSockets(t, 1);
  const sock = s as FakeSocket;
  sock.send(connect('a'), subscribe(0), { type: 'pingreq' }, { type: 'pingreq' });
  await tick();
  await tick();
  assert.equal(sock.writes.length, 1);
  // CONNACK (4 bytes) + SUBACK (5) + 2 x PINGRESP (2)
  assert.equal(sock.writes[0]?.length, 13);
});

test('a QoS 0 fan-out writes the same encoded bytes to every subscriber', async (t) => {
  const socks = await brokerWithSockets(t, 4);
  const [pub, ...subs] = socks as [FakeSocket, ...FakeSocket[]];
  for (const [i, s] of subs.entries()) s.send(connect(`s${i}`), subscribe(0));
  pub.send(connect('p'));
  await tick();
  await tick();
  for (const s of socks) s.writes.length = 0;
  pub.send({ type: 'publish', topic: 't', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false });
  await tick();
  await tick();
  const first = subs[0]?.writes[0];
  assert.ok(first !== undefined);
  for (const s of subs) assert.equal(s.writes[0], first, 'one Buffer shared by all subscribers');
});

test('a QoS 1 fan-out shares the encoding but gives each subscriber its own packet id', async (t) => {
  const socks = await brokerWithSockets(t, 3);
  const [pub, a, b] = socks as [FakeSocket, FakeSocket, FakeSocket];
  // Different numbers of earlier messages give the two subscribers different next packet ids.
  a.send(connect('a'), subscribe(1));
  b.send(connect('b'), { type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'x', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, subscribe(1));
  pub.send(connect('p'));
  await tick();
  pub.send({ type: 'publish', topic: 'x', payload: Buffer.from('only-b'), qos: 1, retain: false, dup: false, packetId: 1 });
  await tick();
  await tick();
  for (const s of socks) s.writes.length = 0;
  pub.send({ type: 'publish', topic: 't', payload: Buffer.from('both'), qos: 1, retain: false, dup: false, packetId: 2 });
  await tick();
  await tick();
  const wa = a.writes[0] as Buffer;
  const wb = b.writes[0] as Buffer;
  // PUBLISH: 0x32, length, topic 't' (00 01 74), packet id, payload.
  assert.equal(wa.readUInt16BE(5), 1);
  assert.equal(wb.readUInt16BE(5), 2);
  assert.deepEqual(wa.subarray(7), wb.subarray(7));
  assert.deepEqual(wa.subarray(0, 5), wb.subarray(0, 5));
});

// Deadlines: all connections of a broker share one timer wheel with 100 ms buckets (never early, at most one bucket late).

async function fakeClockBroker(t: { after(fn: () => unknown): void }, mqtt: Record<string, number> = {}) {
  const clock = new FakeClock();
  const broker = createBroker({ listeners: [], sys: { enabled: false }, mqtt }, { clock });
  await broker.start();
  t.after(() => broker.close(50));
  const open = (): FakeSocket & { closedAt?: number } => {
    const s: FakeSocket & { closedAt?: number } = new FakeSocket();
    s.on('close', () => (s.closedAt = clock.now()));
    broker.handleConnection(s, { listener: 'test' });
    return s;
  };
  // Lets socket events ('close' after destroy) run between clock steps.
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await tick();
    await tick();
  };
  return { clock, open, step };
}

test('[MQTT-3.1.2-24] keep alive: closed after 1.5 x Keep Alive of silence, not before; every packet restarts it', async (t) => {
  const { clock, open, step } = await fakeClockBroker(t);
  const s = open();
  const start = clock.now();
  s.send({ ...connect('ka'), keepAlive: 2 } as Packet);
  await tick();
  // Traffic at 2.9 s keeps it open past the first 3 s deadline.
  await step(2900);
  s.send({ type: 'pingreq' });
  await tick();
  await step(2900);
  assert.equal(s.writableEnded, false, 'closed despite traffic');
  // Silent since 2.9 s: the deadline is 5.9 s.
  await step(200);
  assert.equal(s.writableEnded, true, 'not closed after 1.5 x keep alive of silence');
  // The peer never closes its side: destroyed after the 1 s grace period.
  await step(1100);
  assert.ok(s.closedAt !== undefined && s.closedAt - start >= 6900, `closed at ${String(s.closedAt)}`);
});

test('a connection that sends no CONNECT is closed after connectTimeout; a connected one is not', async (t) => {
  const { open, step } = await fakeClockBroker(t, { connectTimeout: 500 });
  const silent = open();
  const ok = open();
  ok.send(connect('ok'));
  await tick();
  await step(400);
  assert.equal(silent.writableEnded, false, 'closed before connectTimeout');
  await step(200);
  assert.equal(silent.writableEnded, true, 'not closed after connectTimeout');
  await step(1100);
  assert.ok(silent.closedAt !== undefined);
  assert.equal(ok.writableEnded, false);
  assert.equal(ok.closedAt, undefined);
});
