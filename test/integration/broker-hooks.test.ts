/** User hooks over real sockets: async, refusing, throwing and hanging authenticators never take the broker down. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connectAsync } from 'mqtt';
import { encode } from '../../src/protocol/index.js';
import type { Authenticator } from '../../src/broker/index.js';
import { nextEvent, startBroker } from '../helpers/broker.js';

const authenticator: Authenticator = {
  authenticate: async (r) => {
    await new Promise((resolve) => setImmediate(resolve));
    switch (r.username) {
      case 'good':
        return { ok: true };
      case 'throws':
        throw new Error('hook failure');
      case 'hangs':
        return new Promise(() => {});
      default:
        return { ok: false, reasonCode: 0x86, reason: 'bad credentials' };
    }
  },
};

async function connackCode(port: number, version: 4 | 5, username: string): Promise<number | undefined> {
  const socket = netConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = once(socket, 'close');
  socket.write(encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: version, cleanStart: true, keepAlive: 0, clientId: `c-${username}`, username }, version));
  await closed;
  const bytes = Buffer.concat(chunks);
  return bytes[0] === 0x20 ? bytes[3] : undefined;
}

test('an async authenticator: accepts, refuses (0x86 / v3 0x04), a throw gives 0x88 / v3 0x03, a hang hits connectTimeout', async (t) => {
  const { port, url } = await startBroker(t, { mqtt: { connectTimeout: 300 } }, { authenticator });
  const good = await connectAsync(url, { protocolVersion: 5, clientId: 'ok', username: 'good', reconnectPeriod: 0 });
  t.after(() => good.endAsync(true));
  assert.equal(await connackCode(port, 5, 'nobody'), 0x86);
  assert.equal(await connackCode(port, 4, 'nobody'), 0x04);
  assert.equal(await connackCode(port, 5, 'throws'), 0x88);
  assert.equal(await connackCode(port, 4, 'throws'), 0x03);
  const started = Date.now();
  assert.equal(await connackCode(port, 5, 'hangs'), undefined);
  assert.ok(Date.now() - started >= 250);
  // The broker still serves the authenticated client.
  await good.subscribeAsync('t');
  const got = nextEvent(good, 'message') as Promise<[string, Buffer]>;
  await good.publishAsync('t', 'alive');
  assert.equal((await got)[1].toString(), 'alive');
});

test('packets sent right after CONNECT wait for the async authenticator, then run in order', async (t) => {
  const { port } = await startBroker(t, {}, { authenticator });
  const socket = netConnect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.write(
    Buffer.concat([
      encode({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 0, clientId: 'eager', username: 'good' }, 4),
      encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'e', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4),
      encode({ type: 'publish', topic: 'e', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4),
      encode({ type: 'pingreq' }, 4),
    ]),
  );
  // CONNACK (4) + SUBACK (5) + PUBLISH (2+2+1+1 = 6) + PINGRESP (2)
  while (Buffer.concat(chunks).length < 17) await once(socket, 'data');
  const bytes = Buffer.concat(chunks);
  assert.deepEqual([...bytes.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00]);
  assert.equal(bytes[4], 0x90);
  assert.equal(bytes[9], 0x30);
  assert.deepEqual([...bytes.subarray(15, 17)], [0xd0, 0x00]);
});
