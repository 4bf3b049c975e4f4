/**
 * Bad input closes only the offending connection (v5: DISCONNECT with the reason code first) and the broker keeps
 * serving everybody else. Bytes are written by hand on raw sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connectAsync } from 'mqtt';
import { encode } from '../../src/protocol/index.js';
import { nextEvent, startBroker } from '../helpers/broker.js';

/** Writes `chunks` and collects everything the broker sends until it closes the connection. */
async function exchange(port: number, chunks: Buffer[]): Promise<Buffer> {
  const socket: Socket = netConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const closed = once(socket, 'close');
  for (const c of chunks) socket.write(c);
  await closed;
  return Buffer.concat(received);
}

const connect5 = encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 0, clientId: 'bad5' }, 5);
const connect4 = encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 0, clientId: 'bad4' }, 4);
/** The v5 CONNACK sent to connect5 with the default limits (what comes before the DISCONNECT). */
function afterConnack(bytes: Buffer): Buffer {
  assert.equal(bytes[0], 0x20, 'CONNACK first');
  return bytes.subarray(2 + (bytes[1] as number));
}

/** A DISCONNECT with `code` and a reason string: type 0xE0, then the reason code. */
function assertDisconnect(bytes: Buffer, code: number): void {
  assert.equal(bytes[0], 0xe0, `DISCONNECT expected, got ${bytes.toString('hex')}`);
  assert.equal(bytes[2], code);
}

const cases: Array<{ name: string; chunks: Buffer[]; check: (reply: Buffer) => void }> = [
  {
    name: '[MQTT-3.1.0-1] garbage instead of CONNECT: closed without a reply',
    chunks: [Buffer.from([0x00, 0x00])],
    check: (r) => assert.equal(r.length, 0),
  },
  {
    name: '[MQTT-3.1.2-2] (3.1.1) protocol level 9: CONNACK 0x01 and close',
    chunks: [Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x09, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78])],
    check: (r) => assert.deepEqual([...r], [0x20, 0x02, 0x00, 0x01]),
  },
  {
    name: 'v5: reserved packet type 0 after CONNECT: DISCONNECT 0x81',
    chunks: [connect5, Buffer.from([0x00, 0x00])],
    check: (r) => assertDisconnect(afterConnack(r), 0x81),
  },
  {
    name: '[MQTT-3.3.2-2] v5: PUBLISH to a topic with a wildcard: DISCONNECT 0x90 (Topic Name invalid)',
    chunks: [connect5, Buffer.from([0x30, 0x06, 0x00, 0x03, 0x61, 0x2f, 0x23, 0x00])],
    check: (r) => assertDisconnect(afterConnack(r), 0x90),
  },
  {
    name: 'v5: a packet larger than Maximum Packet Size: DISCONNECT 0x95',
    chunks: [connect5, Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])],
    check: (r) => assertDisconnect(afterConnack(r), 0x95),
  },
  {
    name: '[MQTT-3.8.1-1] v3.1.1: SUBSCRIBE with reserved flags 0000: closed (no DISCONNECT in v3)',
    chunks: [connect4, Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00])],
    check: (r) => assert.deepEqual([...r], [0x20, 0x02, 0x00, 0x00]),
  },
  {
    name: '[MQTT-3.1.0-2] v5: a second CONNECT: DISCONNECT 0x82',
    chunks: [connect5, connect5],
    check: (r) => assertDisconnect(afterConnack(r), 0x82),
  },
  {
    name: 'a truncated CONNECT: closed after the connect timeout',
    chunks: [connect5.subarray(0, 5)],
    check: (r) => assert.equal(r.length, 0),
  },
];

test('each malformed or forbidden packet closes only its connection; another client is still served', async (t) => {
  const { port, url } = await startBroker(t, { mqtt: { connectTimeout: 500 } });
  const good = await connectAsync(url, { protocolVersion: 5, clientId: 'good', reconnectPeriod: 0 });
  t.after(() => good.endAsync(true));
  await good.subscribeAsync('still/alive', { qos: 1 });
  for (const c of cases) {
    await t.test(c.name, async () => {
      const reply = await exchange(port, c.chunks);
      c.check(reply);
      const got = nextEvent(good, 'message') as Promise<[string, Buffer]>;
      await good.publishAsync('still/alive', c.name, { qos: 1 });
      const [, payload] = await got;
      assert.equal(payload.toString(), c.name);
    });
  }
});

test('a socket that never sends CONNECT is closed after connectTimeout', async (t) => {
  const { port } = await startBroker(t, { mqtt: { connectTimeout: 200 } });
  const started = Date.now();
  const reply = await exchange(port, []);
  assert.equal(reply.length, 0);
  assert.ok(Date.now() - started >= 150);
});

test('[MQTT-3.1.2-22] keep alive: no packet within 1.5 x keep alive closes the connection (v5: DISCONNECT 0x8D)', async (t) => {
  const { port } = await startBroker(t);
  const connect = encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 1, clientId: 'idle' }, 5);
  const started = Date.now();
  const reply = await exchange(port, [connect]);
  const elapsed = Date.now() - started;
  assertDisconnect(afterConnack(reply), 0x8d);
  assert.ok(elapsed >= 1400 && elapsed < 4000, `closed after ${elapsed} ms`);
});
