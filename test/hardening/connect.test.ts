/** Hostile connection setup: order of packets, identifiers, timeouts and connection limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, hex, packet, publish, str, subscribe, u16 } from '../helpers/raw-client.js';
import type { AuthResult, Authenticator } from '../../src/broker/index.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';
import { T, closed, connackCode, disconnectCode, hostile } from './harness.js';

test('[MQTT-3.1.0-1] a PUBLISH before CONNECT closes the connection without any reply', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(publish({ topic: 'bystander/sneak', payload: 'x' }));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.1.0-1] a SUBSCRIBE to # before CONNECT closes the connection and delivers nothing', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(subscribe({ version: 4 }, { topic: '#', qos: 1 }));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.1.0-2] a second CONNECT: v5 DISCONNECT 0x82, v3.1.1 close', async (t) => {
  const h = await hostile(t);
  const v5 = await h.raw({ version: 5, clientId: 'twice-5' });
  v5.send(connect({ version: 5, clientId: 'twice-5' }));
  const got = await closed(v5);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x82);
  const v4 = await h.raw({ version: 4, clientId: 'twice-4' });
  v4.send(connect({ version: 4, clientId: 'bystander' }));
  assert.deepEqual(await closed(v4), []);
  await h.survived();
});

for (const [what, id] of [
  ['an overlong encoding', hex('c0 80')],
  ['a lone 0xff byte', hex('ff')],
  ['a UTF-16 surrogate', hex('ed a0 80')],
] as const) {
  test(`[MQTT-1.5.4-1] a client identifier with ${what} is refused without CONNACK 0`, async (t) => {
    const h = await hostile(t);
    const c = await h.raw();
    c.send(connect({ version: 5, clientId: Buffer.concat([Buffer.from('id'), id]) }));
    const got = await closed(c);
    assert.ok(got.every((p) => p.type !== T.CONNACK || connackCode(p) >= 0x80), 'not accepted');
    await h.survived();
  });
}

test('[MQTT-1.5.4-2] a client identifier containing U+0000 is refused', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(connect({ version: 4, clientId: Buffer.from('by\u0000stander') }));
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || connackCode(p) !== 0), 'not accepted');
  await h.survived();
});

test('[MQTT-1.5.4-1] a username with invalid UTF-8 is refused without CONNACK 0', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  const body = [str('MQTT'), hex('04 82'), u16(0), str('user-utf8'), str(hex('61 ff 62'))];
  c.send(packet(0x10, ...body));
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || connackCode(p) !== 0), 'not accepted');
  await h.survived();
});

test('(3.1.1: [MQTT-3.1.3-8]) a zero-length client id with Clean Session 0 gets CONNACK 0x02; v5 gets 0x85', async (t) => {
  const h = await hostile(t);
  const v4 = await h.raw();
  v4.send(connect({ version: 4, clientId: '', clean: false }));
  const [a] = await closed(v4);
  assert.equal(a?.type, T.CONNACK);
  assert.equal(connackCode(a!), 0x02);
  const v5 = await h.raw();
  v5.send(connect({ version: 5, clientId: '', clean: false }));
  const [b] = await closed(v5);
  assert.equal(connackCode(b!), 0x85);
  await h.survived();
});

test('a client identifier over maximumClientIdLength gets CONNACK 0x85 (v5) / 0x02 (v3.1.1)', async (t) => {
  const h = await hostile(t, { mqtt: { maximumClientIdLength: 64 } });
  for (const [version, code] of [[5, 0x85], [4, 0x02]] as const) {
    const c = await h.raw();
    c.send(connect({ version, clientId: 'x'.repeat(65) }));
    const [p] = await closed(c);
    assert.equal(connackCode(p!), code);
  }
  await h.survived();
});

test('[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 and a close', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(packet(0x10, str('MQTT'), hex('07 02'), u16(0), str('level-7')));
  const [p] = await closed(c);
  assert.equal(p?.type, T.CONNACK);
  assert.equal(connackCode(p!), 0x01);
  await h.survived();
});

test('[MQTT-3.1.3-11] a will topic with a wildcard is refused without CONNACK 0', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(connect({ version: 5, clientId: 'will-wild', will: { topic: 'bystander/#', payload: 'x' } }));
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || connackCode(p) >= 0x80), 'not accepted');
  await h.survived();
});

test('slowloris: a CONNECT sent one byte at a time is closed by connectTimeout', async (t) => {
  const h = await hostile(t, { mqtt: { connectTimeout: 600 } });
  const c = await h.raw();
  const bytes = connect({ version: 4, clientId: 'slowloris' });
  let i = 0;
  const drip = setInterval(() => {
    if (i < bytes.length) c.send(bytes.subarray(i, ++i));
  }, 150);
  t.after(() => clearInterval(drip));
  const started = Date.now();
  assert.deepEqual(await closed(c, 4000), []);
  clearInterval(drip);
  assert.ok(i < bytes.length, 'closed before the CONNECT was complete');
  assert.ok(Date.now() - started >= 400, 'not closed before the timeout');
  await h.survived();
});

test('[MQTT-3.1.2-22] a half-open connection (client stops sending) is closed after 1.5 x keep alive with 0x8D', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'half-open', keepAlive: 1 });
  const started = Date.now();
  const got = await closed(c, 4000);
  const elapsed = Date.now() - started;
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x8d);
  assert.ok(elapsed >= 1000 && elapsed < 3500, `closed after ${elapsed} ms`);
  await h.survived();
});

test('maximumConnections: one more client gets CONNACK 0x89 (v5) / 3 (v3.1.1); a takeover is still admitted', async (t) => {
  // The bystander and its owner hold two connections; survived() needs two more once the fillers are gone.
  const h = await hostile(t, { mqtt: { maximumConnections: 4 } });
  const a = await h.raw({ version: 4, clientId: 'fill-a' });
  const b = await h.raw({ version: 4, clientId: 'fill-b' });
  const v5 = await h.raw();
  v5.send(connect({ version: 5, clientId: 'one-too-many' }));
  const [p] = await closed(v5);
  assert.equal(connackCode(p!), 0x89);
  const v4 = await h.raw();
  v4.send(connect({ version: 4, clientId: 'one-too-many' }));
  const [q] = await closed(v4);
  assert.equal(connackCode(q!), 3);
  assert.equal(h.broker.limitsHit.connections, 2, 'counted');
  // Taking over fill-a's session replaces a connection: admitted.
  const a2 = await h.raw({ version: 4, clientId: 'fill-a' });
  await a.waitClose();
  a2.destroy();
  b.destroy();
  await waitFor(() => h.broker.stats.clientsConnected <= 2);
  await h.survived();
});

test('a TCP listener maxConnections closes extra sockets at once; the others are served', async (t) => {
  const h = await hostile(t, { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0, maxConnections: 4 }] });
  const extra1 = await h.raw();
  const extra2 = await h.raw();
  const over = await h.raw();
  assert.deepEqual(await closed(over), []);
  extra1.destroy();
  extra2.destroy();
  await Promise.all([extra1.waitClose(), extra2.waitClose()]);
  await waitFor(() => h.broker.connectionCount <= 2);
  await h.survived();
});

test('maximumConnections: sockets that never send CONNECT are bounded too (maximumConnections + 100); more are closed at once', async (t) => {
  const lines: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_obj, msg) => lines.push(msg ?? ''), child: () => logger };
  // maximumSockets(4) = 104; the bystander and its owner hold two.
  const h = await hostile(t, { mqtt: { maximumConnections: 4 } }, { logger });
  const idle = [];
  for (let i = 0; i < 102; i++) idle.push(await h.raw());
  await waitFor(() => h.broker.connectionCount === 104);
  const over = [];
  for (let i = 0; i < 20; i++) over.push(await h.raw());
  for (const c of over) assert.deepEqual(await closed(c, 1000), [], 'closed at once, before connectTimeout');
  assert.equal(h.broker.connectionCount, 104);
  assert.equal(h.broker.limitsHit.connections, 20, 'counted');
  // Logged through the per-kind limiter: 10 lines, the rest in a summary.
  assert.equal(lines.filter((m) => m === 'connection refused: too many open connections').length, 10);
  for (const c of idle) c.destroy();
  await waitFor(() => h.broker.connectionCount <= 2);
  await h.survived();
});

test('maximumConnections: CONNECTs waiting for an asynchronous authenticator hold their place, so they cannot all pass', async (t) => {
  const waiting: Array<() => void> = [];
  const authenticator: Authenticator = {
    authenticate: (r) =>
      r.clientId.startsWith('slow-') ? new Promise<AuthResult>((resolve) => waiting.push(() => resolve({ ok: true }))) : { ok: true },
  };
  // The bystander and its owner hold two of four places.
  const h = await hostile(t, { mqtt: { maximumConnections: 4 } }, { authenticator });
  const slow = [];
  for (let i = 0; i < 4; i++) {
    const c = await h.raw();
    c.send(connect({ version: 5, clientId: `slow-${i}` }));
    slow.push(c);
  }
  // Two hold the two free places while authenticating; the others are refused at once.
  for (const c of slow.slice(2)) assert.equal(connackCode((await closed(c))[0]!), 0x89);
  await waitFor(() => waiting.length === 2);
  for (const release of waiting) release();
  for (const c of slow.slice(0, 2)) assert.equal(connackCode(await c.expect(T.CONNACK)), 0);
  assert.equal(h.broker.stats.clientsConnected, 4);
  assert.equal(h.broker.limitsHit.connections, 2);
  for (const c of slow.slice(0, 2)) c.destroy();
  await waitFor(() => h.broker.stats.clientsConnected <= 2);
  await h.survived();
});

test('maximumConnections: a CONNECT closed while authenticating gives its place back', async (t) => {
  const authenticator: Authenticator = {
    authenticate: (r) => (r.clientId.startsWith('slow-') ? new Promise<AuthResult>(() => undefined) : { ok: true }),
  };
  const h = await hostile(t, { mqtt: { maximumConnections: 4, connectTimeout: 300 } }, { authenticator });
  for (let i = 0; i < 2; i++) {
    const c = await h.raw();
    c.send(connect({ version: 5, clientId: `slow-${i}` }));
    // A hook that never answers: closed at connectTimeout.
    await closed(c);
  }
  // The two places are free again: the probes of survived() get in.
  await h.survived();
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
