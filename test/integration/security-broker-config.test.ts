/** `telemq broker --config` with tls, mTLS and ws listeners, a password file and an ACL; SIGHUP reloads them. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { hashPassword } from '../../src/broker/auth/password-file.js';
import { createCa, createClientCert, createServerCert } from '../../src/broker/tls/certs.js';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const main = fileURLToPath(new URL(`../../src/cli/main${ext}`, import.meta.url));

function connectOnce(t: TestContext, url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  t.after(() => client.end(true));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

test('config file: tls + mTLS + ws listeners, password file and ACL; SIGHUP reloads the ACL', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-seccfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const server = await createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] });
  const meter = await createClientCert(ca, { name: 'meter-17' });
  const f = (n: string) => join(dir, n);
  await writeFile(f('ca.crt'), ca.cert);
  await writeFile(f('server.crt'), server.cert);
  await writeFile(f('server.key'), server.key);
  await writeFile(f('passwd'), `alice:${await hashPassword('pw', { algorithm: 'scrypt', ln: 10, r: 8, p: 1 })}\n`);
  await writeFile(f('acl'), 'pattern readwrite meters/%u/#\nuser alice\ntopic readwrite a/#\n');
  await writeFile(
    f('telemq.yaml'),
    [
      'listeners:',
      `  - { type: tls, host: 127.0.0.1, port: 0, certFile: ${f('server.crt')}, keyFile: ${f('server.key')}, allowAnonymous: false }`,
      `  - { type: tls, host: 127.0.0.1, port: 0, certFile: ${f('server.crt')}, keyFile: ${f('server.key')}, caFile: ${f('ca.crt')}, requireClientCertificate: true, identityFrom: cn }`,
      '  - { type: ws, host: 127.0.0.1, port: 0, allowAnonymous: false }',
      'auth:',
      `  passwordFile: ${f('passwd')}`,
      `  aclFile: ${f('acl')}`,
      '  failureDelay: 0',
      'sys: { enabled: false }',
      'persistence: { type: memory }',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [...process.execArgv, main, 'broker', '--config', f('telemq.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const logs: Array<Record<string, unknown>> = [];
  const ports: number[] = [];
  const reloaded = new Set<string>();
  let onLog = (): void => {};
  createInterface({ input: child.stdout }).on('line', (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    logs.push(entry);
    const m = /:(\d+)$/.exec(String(entry.listener ?? ''));
    if (entry.msg === 'listening' && m) ports.push(Number(m[1]));
    if (typeof entry.msg === 'string' && entry.msg.includes('reloaded')) reloaded.add(String(entry.listener ?? 'auth'));
    onLog();
  });
  await new Promise<void>((resolve, reject) => {
    onLog = () => ports.length === 3 && resolve();
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  const [tlsPort, mtlsPort, wsPort] = ports as [number, number, number];
  const tlsOpts = { ca: ca.cert, servername: 'localhost' };

  // TLS with a password; anonymous refused (allowAnonymous: false).
  const alice = await connectOnce(t, `mqtts://127.0.0.1:${tlsPort}`, { ...tlsOpts, username: 'alice', password: 'pw', protocolVersion: 5 });
  await alice.subscribeAsync('a/#');
  await assert.rejects(connectOnce(t, `mqtts://127.0.0.1:${tlsPort}`, { ...tlsOpts, protocolVersion: 5 }), (e: { code?: number }) => e.code === 0x87);
  await assert.rejects(connectOnce(t, `ws://127.0.0.1:${wsPort}/mqtt`, { protocolVersion: 4 }), (e: { code?: number }) => e.code === 5);

  // mTLS: the CN is the username whatever the CONNECT says, so %u is meter-17.
  const m = await connectOnce(t, `mqtts://127.0.0.1:${mtlsPort}`, { ...tlsOpts, cert: meter.cert, key: meter.key, username: 'alice', protocolVersion: 5 });
  await m.subscribeAsync('meters/meter-17/#');
  await assert.rejects(m.subscribeAsync('a/#'), /Not authorized/);

  // SIGHUP: a new ACL takes effect for the connected client.
  await assert.rejects(alice.publishAsync('b/1', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
  await writeFile(f('acl'), 'user alice\ntopic readwrite a/#\ntopic write b/#\n');
  const allReloaded = new Promise<void>((resolve) => {
    onLog = () => reloaded.size >= 3 && resolve();
  });
  child.kill('SIGHUP');
  await allReloaded;
  await alice.publishAsync('b/1', 'x', { qos: 1 });
  assert.equal(alice.connected, true);
  assert.ok(logs.some((l) => l.msg === 'connection refused'));
});
