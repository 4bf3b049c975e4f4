import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBroker } from '../../src/broker/index.js';
import { FileAuth } from '../../src/broker/auth/file-auth.js';
import { createCa, createClientCert, createServerCert, type CertificateAndKey } from '../../src/broker/tls/certs.js';
import { TlsListener, parseSubjectAltNames, type TlsListenerOptions } from '../../src/broker/transport/tls.js';

interface Pki {
  dir: string;
  ca: CertificateAndKey;
  file: (name: string) => string;
}

/** One CA with server, client, expired-client certs, and a foreign CA with its own client; files in a temp dir. */
async function pki(t: TestContext): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const foreign = await createCa({ commonName: 'Foreign CA' });
  const [server, client, expired, intruder] = await Promise.all([
    createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] }),
    createClientCert(ca, { name: 'meter-17' }),
    createClientCert(ca, { name: 'old-meter', days: 1, notBefore: new Date(Date.now() - 10 * 86_400_000) }),
    createClientCert(foreign, { name: 'intruder' }),
  ]);
  const write = async (name: string, pair: CertificateAndKey) => {
    await writeFile(join(dir, `${name}.crt`), pair.cert);
    await writeFile(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
  };
  await Promise.all([write('ca', ca), write('foreign', foreign), write('server', server), write('client', client), write('expired', expired), write('intruder', intruder)]);
  return { dir, ca, file: (name) => join(dir, name) };
}

async function startTlsBroker(t: TestContext, p: Pki, extra: Partial<TlsListenerOptions> = {}, options: Parameters<typeof createBroker>[1] = {}) {
  const listener = new TlsListener({ host: '127.0.0.1', port: 0, certFile: p.file('server.crt'), keyFile: p.file('server.key'), ...extra });
  const broker = createBroker({ listeners: [], sys: { enabled: false } }, { ...options, listeners: [listener] });
  await broker.start();
  t.after(() => broker.close(200));
  return { broker, listener, port: listener.address().port };
}

/** Connects once (no reconnect); resolves with the client or rejects with the error or close that came first. */
function connectOnce(t: TestContext, url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  t.after(() => client.end(true));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

function nextMessage(client: MqttClient): Promise<[string, Buffer]> {
  return new Promise((resolve) => client.once('message', (topic, payload) => resolve([topic, payload])));
}

async function tlsOpts(p: Pki, who?: string): Promise<IClientOptions> {
  const { readFile } = await import('node:fs/promises');
  const o: IClientOptions = { ca: await readFile(p.file('ca.crt')), servername: 'localhost' };
  if (who !== undefined) {
    o.cert = await readFile(p.file(`${who}.crt`));
    o.key = await readFile(p.file(`${who}.key`));
  }
  return o;
}

test('mqtts: MQTT.js connects over TLS with the CA and round-trips a message', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p);
  const sub = await connectOnce(t, `mqtts://127.0.0.1:${port}`, { ...(await tlsOpts(p)), protocolVersion: 5 });
  await sub.subscribeAsync('t/1', { qos: 1 });
  const pub = await connectOnce(t, `mqtts://127.0.0.1:${port}`, { ...(await tlsOpts(p)), protocolVersion: 4 });
  const got = nextMessage(sub);
  await pub.publishAsync('t/1', 'over tls', { qos: 1 });
  const [topic, payload] = await got;
  assert.equal(topic, 't/1');
  assert.equal(payload.toString(), 'over tls');
});

test('mqtts: a client that does not trust the server certificate cannot connect', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p);
  const { readFile } = await import('node:fs/promises');
  await assert.rejects(connectOnce(t, `mqtts://127.0.0.1:${port}`, { ca: await readFile(p.file('foreign.crt')), servername: 'localhost' }));
});

test('mTLS: the handshake fails without a client certificate, with a foreign one and with an expired one', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p, { caFile: p.file('ca.crt'), requireClientCertificate: true });
  const url = `mqtts://127.0.0.1:${port}`;
  const ok = await connectOnce(t, url, await tlsOpts(p, 'client'));
  assert.equal(ok.connected, true);
  await assert.rejects(connectOnce(t, url, await tlsOpts(p)), 'no certificate');
  await assert.rejects(connectOnce(t, url, await tlsOpts(p, 'intruder')), 'foreign CA');
  await assert.rejects(connectOnce(t, url, await tlsOpts(p, 'expired')), 'expired');
});

test('mTLS: the certificate CN is the identity; FileAuth admits it as that username without a password', async (t) => {
  const p = await pki(t);
  const aclFile = p.file('acl');
  await writeFile(aclFile, 'pattern readwrite meters/%u/#\n');
  const auth = await FileAuth.create({ aclFile, allowAnonymous: () => false, failureDelay: 0 });
  const { port } = await startTlsBroker(
    t,
    p,
    { caFile: p.file('ca.crt'), requireClientCertificate: true, identityFrom: 'cn' },
    { authenticator: auth, authorizer: auth },
  );
  const url = `mqtts://127.0.0.1:${port}`;
  const c = await connectOnce(t, url, { ...(await tlsOpts(p, 'client')), username: 'meter-17', protocolVersion: 5 });
  const granted = await c.subscribeAsync('meters/meter-17/#');
  assert.equal(granted[0]?.qos, 0);
  // SUBACK 0x87 Not Authorized: MQTT.js rejects the subscribe.
  await assert.rejects(c.subscribeAsync('meters/other/#'), /Not authorized/);
  // The certificate decides: a CONNECT claiming another name is still meter-17 to the ACL.
  const claim = await connectOnce(t, url, { ...(await tlsOpts(p, 'client')), username: 'alice', protocolVersion: 5 });
  await claim.subscribeAsync('meters/meter-17/x');
  await assert.rejects(claim.subscribeAsync('meters/alice/#'), /Not authorized/);
});

test('mTLS: plain text (an MQTT CONNECT without TLS) sent to the TLS port gets the connection closed', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p, { caFile: p.file('ca.crt'), requireClientCertificate: true });
  const s = netConnect(port, '127.0.0.1');
  t.after(() => s.destroy());
  await once(s, 'connect');
  s.on('error', () => {});
  // CONNECT v3.1.1, client id "x".
  s.write(Buffer.from('100d00044d5154540402003c000178', 'hex'));
  const received: Buffer[] = [];
  s.on('data', (d: Buffer) => received.push(d));
  await once(s, 'close');
  // Whatever came back is a TLS alert record (content type 21), never an MQTT CONNACK (0x20).
  const all = Buffer.concat(received);
  assert.ok(all.length === 0 || all[0] === 0x15, `unexpected reply ${all.toString('hex')}`);
});

test('mosquitto_pub --cafile --cert --key publishes through the mTLS listener', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p, { caFile: p.file('ca.crt'), requireClientCertificate: true });
  const sub = await connectOnce(t, `mqtts://127.0.0.1:${port}`, await tlsOpts(p, 'client'));
  await sub.subscribeAsync('interop/#', { qos: 1 });
  const got = nextMessage(sub);
  const r = await new Promise<{ code: number; err: string }>((res) =>
    execFile(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(port), '--cafile', p.file('ca.crt'), '--cert', p.file('client.crt'), '--key', p.file('client.key'), '-t', 'interop/m', '-m', 'from mosquitto_pub', '-q', '1'],
      { timeout: 5000 },
      (err, _out, stderr) => res({ code: err ? 1 : 0, err: stderr }),
    ),
  );
  assert.equal(r.code, 0, r.err);
  const [topic, payload] = await got;
  assert.equal(topic, 'interop/m');
  assert.equal(payload.toString(), 'from mosquitto_pub');
  const bad = await new Promise<number>((res) =>
    execFile(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(port), '--cafile', p.file('ca.crt'), '--cert', p.file('intruder.crt'), '--key', p.file('intruder.key'), '-t', 'interop/m', '-m', 'x'],
      { timeout: 5000 },
      (err) => res(err ? 1 : 0),
    ),
  );
  assert.equal(bad, 1, 'a foreign client certificate is refused');
});

test('reload swaps the server certificate for new handshakes and keeps connected clients', async (t) => {
  const p = await pki(t);
  const { listener, port } = await startTlsBroker(t, p);
  const url = `mqtts://127.0.0.1:${port}`;
  const before = await connectOnce(t, url, await tlsOpts(p));
  await before.subscribeAsync('r/1');
  // A new CA and server certificate replace the files.
  const ca2 = await createCa({ commonName: 'Second CA' });
  const server2 = await createServerCert(ca2, { hosts: ['localhost'], ips: ['127.0.0.1'] });
  await writeFile(p.file('server.crt'), server2.cert);
  await writeFile(p.file('server.key'), server2.key);
  await listener.reload();
  await assert.rejects(connectOnce(t, url, await tlsOpts(p)), 'the old CA no longer verifies the server');
  const after = await connectOnce(t, url, { ca: ca2.cert, servername: 'localhost' });
  const got = nextMessage(before);
  await after.publishAsync('r/1', 'still here');
  assert.equal((await got)[1].toString(), 'still here');
  // A broken file keeps the current certificate in force.
  await writeFile(p.file('server.key'), 'not a key');
  await assert.rejects(listener.reload());
  const again = await connectOnce(t, url, { ca: ca2.cert, servername: 'localhost' });
  assert.equal(again.connected, true);
});

test('maxConnections: connections beyond the listener limit are closed; others carry on', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p, { maxConnections: 1 });
  const url = `mqtts://127.0.0.1:${port}`;
  const first = await connectOnce(t, url, await tlsOpts(p));
  await assert.rejects(connectOnce(t, url, await tlsOpts(p)));
  await first.subscribeAsync('still/ok');
  assert.equal(first.connected, true);
});

test('parseSubjectAltNames splits Node\'s subjectaltname string, unquoting JSON-quoted values', () => {
  assert.deepEqual(parseSubjectAltNames('DNS:a.example, IP Address:127.0.0.1, email:"x, y@example"'), [
    'DNS:a.example',
    'IP Address:127.0.0.1',
    'email:x, y@example',
  ]);
  assert.deepEqual(parseSubjectAltNames(undefined), []);
});

test('TlsListener refuses options that cannot be safe', () => {
  assert.throws(() => new TlsListener({ host: '127.0.0.1', port: 0, certFile: 'c', keyFile: 'k', requireClientCertificate: true }), /needs caFile/);
  assert.throws(() => new TlsListener({ host: '127.0.0.1', port: 0, certFile: 'c', keyFile: 'k', identityFrom: 'cn' }), /requireClientCertificate/);
});

function sClient(port: number, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-verify_return_error', ...args],
      { timeout: 5000 },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    );
    child.stdin?.end();
  });
}

test('openssl s_client: verifies the broker, completes mTLS with the client certificate, fails without one', async (t) => {
  const p = await pki(t);
  const { port } = await startTlsBroker(t, p, { caFile: p.file('ca.crt'), requireClientCertificate: true });
  const ok = await sClient(port, ['-CAfile', p.file('ca.crt'), '-cert', p.file('client.crt'), '-key', p.file('client.key')]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /Verify return code: 0 \(ok\)/);
  // TLS 1.2 makes the server's refusal part of the handshake (with 1.3 it arrives after s_client has finished).
  const noCert = await sClient(port, ['-CAfile', p.file('ca.crt'), '-tls1_2']);
  assert.notEqual(noCert.code, 0);
  assert.match(noCert.out, /alert handshake failure/);
  const wrongCa = await sClient(port, ['-CAfile', p.file('foreign.crt'), '-cert', p.file('client.crt'), '-key', p.file('client.key')]);
  assert.notEqual(wrongCa.code, 0, 'the broker certificate does not verify against another CA');
});

test('mTLS with identityFrom: a verified certificate lacking that field is closed before MQTT', async (t) => {
  const p = await pki(t);
  // The client certificates carry a CN but no subjectAltName.
  const { port, broker } = await startTlsBroker(t, p, { caFile: p.file('ca.crt'), requireClientCertificate: true, identityFrom: 'san-dns' });
  await assert.rejects(connectOnce(t, `mqtts://127.0.0.1:${port}`, await tlsOpts(p, 'client')));
  assert.equal(broker.connectionCount, 0);
});
