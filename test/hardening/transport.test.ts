/** Hostile transport use: bad certificates, plain text to TLS, broken WebSocket upgrades and frames, stalled handshakes. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { createCa, createClientCert, createServerCert, type CertificateAndKey } from '../../src/broker/tls/certs.js';
import { TlsListener } from '../../src/broker/transport/tls.js';
import { WsListener } from '../../src/broker/transport/ws.js';
import { connect } from '../helpers/raw-client.js';
import { hostile, type Hostile } from './harness.js';

interface Certs {
  ca: CertificateAndKey;
  client: CertificateAndKey;
  expired: CertificateAndKey;
  foreign: CertificateAndKey;
}

/** A broker with the bystander on TCP plus an mTLS listener and a ws listener. */
async function setup(t: TestContext): Promise<Hostile & { tlsPort: number; wsPort: number; certs: Certs }> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-hardening-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const other = await createCa({ commonName: 'Other CA' });
  const [server, client, expired, foreign] = await Promise.all([
    createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] }),
    createClientCert(ca, { name: 'meter-1' }),
    createClientCert(ca, { name: 'old-meter', days: 1, notBefore: new Date(Date.now() - 10 * 86_400_000) }),
    createClientCert(other, { name: 'intruder' }),
  ]);
  await Promise.all([
    writeFile(join(dir, 'ca.crt'), ca.cert),
    writeFile(join(dir, 'server.crt'), server.cert),
    writeFile(join(dir, 'server.key'), server.key, { mode: 0o600 }),
  ]);
  const tls = new TlsListener({
    host: '127.0.0.1',
    port: 0,
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    caFile: join(dir, 'ca.crt'),
    requireClientCertificate: true,
    handshakeTimeout: 500,
  });
  const ws = new WsListener({ host: '127.0.0.1', port: 0 });
  const h = await hostile(t, {}, { listeners: [tls, ws] });
  return { ...h, tlsPort: tls.address().port, wsPort: ws.address().port, certs: { ca, client, expired, foreign } };
}

/** Resolves 'connected' when the TLS handshake completes, or the error code when it fails. */
function handshake(t: TestContext, port: number, ca: string, pair?: CertificateAndKey): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(pair === undefined ? {} : { cert: pair.cert, key: pair.key }) });
    t.after(() => s.destroy());
    // TLS 1.3 reports a refused client certificate after the handshake, on the first read.
    s.once('secureConnect', () => {
      s.write(connect({ version: 4, clientId: 'tls-probe' }));
      s.once('data', () => resolve('connected'));
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.once('close', () => resolve('closed'));
  });
}

test('mTLS: a client certificate from an untrusted CA is refused in the handshake', async (t) => {
  const h = await setup(t);
  assert.equal(await handshake(t, h.tlsPort, h.certs.ca.cert, h.certs.client), 'connected', 'control: the good certificate works');
  assert.notEqual(await handshake(t, h.tlsPort, h.certs.ca.cert, h.certs.foreign), 'connected');
  await h.survived();
});

test('mTLS: an expired client certificate is refused in the handshake', async (t) => {
  const h = await setup(t);
  assert.notEqual(await handshake(t, h.tlsPort, h.certs.ca.cert, h.certs.expired), 'connected');
  await h.survived();
});

test('mTLS: no client certificate at all is refused', async (t) => {
  const h = await setup(t);
  assert.notEqual(await handshake(t, h.tlsPort, h.certs.ca.cert), 'connected');
  await h.survived();
});

test('a client that does not trust the broker certificate fails before sending anything', async (t) => {
  const h = await setup(t);
  const code = await handshake(t, h.tlsPort, h.certs.foreign.cert, h.certs.client);
  assert.match(code, /CERT|SELF_SIGNED|UNABLE/);
  await h.survived();
});

test('plain-text MQTT sent to the TLS port gets the connection closed, never a CONNACK', async (t) => {
  const h = await setup(t);
  const s = netConnect({ host: '127.0.0.1', port: h.tlsPort });
  t.after(() => s.destroy());
  await once(s, 'connect');
  const received: Buffer[] = [];
  s.on('data', (d: Buffer) => received.push(d));
  s.on('error', () => undefined);
  s.write(connect({ version: 4, clientId: 'plain-on-tls' }));
  await once(s, 'close');
  // Whatever came back is a TLS alert (record type 0x15), not MQTT (CONNACK starts with 0x20).
  const all = Buffer.concat(received);
  assert.ok(all.length === 0 || all[0] === 0x15, `got ${all.toString('hex')}`);
  await h.survived();
});

test('a TLS handshake that stalls after the TCP connect is closed by handshakeTimeout', async (t) => {
  const h = await setup(t);
  const s = netConnect({ host: '127.0.0.1', port: h.tlsPort });
  t.after(() => s.destroy());
  s.on('error', () => undefined);
  await once(s, 'connect');
  const started = Date.now();
  await once(s, 'close');
  assert.ok(Date.now() - started < 3000);
  await h.survived();
});

/** Opens a WebSocket; the socket when open, or the HTTP status of a refused upgrade. */
function ws(t: TestContext, url: string, protocols: string[]): Promise<WebSocket | number> {
  const sock = new WebSocket(url, protocols);
  t.after(() => sock.terminate());
  return new Promise((resolve, reject) => {
    sock.once('open', () => resolve(sock));
    sock.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    sock.once('error', reject);
  });
}

test('[MQTT-6.0.0-3] a WebSocket upgrade with the wrong subprotocol is refused with HTTP 400', async (t) => {
  const h = await setup(t);
  assert.equal(await ws(t, `ws://127.0.0.1:${h.wsPort}/mqtt`, ['chat']), 400);
  assert.equal(await ws(t, `ws://127.0.0.1:${h.wsPort}/mqtt`, []), 400);
  await h.survived();
});

test('[MQTT-6.0.0-1] a WebSocket text frame closes the connection (1003)', async (t) => {
  const h = await setup(t);
  const sock = (await ws(t, `ws://127.0.0.1:${h.wsPort}/mqtt`, ['mqtt'])) as WebSocket;
  const closing = once(sock, 'close');
  sock.send('10 0d 00 04 4d 51 54 54', { binary: false });
  const [code] = (await closing) as [number];
  assert.equal(code, 1003);
  await h.survived();
});

test('garbage inside binary WebSocket frames closes that connection only', async (t) => {
  const h = await setup(t);
  const sock = (await ws(t, `ws://127.0.0.1:${h.wsPort}/mqtt`, ['mqtt'])) as WebSocket;
  const closing = once(sock, 'close');
  sock.send(Buffer.from('00ffffffff7f', 'hex'), { binary: true });
  await closing;
  await h.survived();
});
