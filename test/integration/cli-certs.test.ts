import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const cli = here.includes(join('build', 'test'))
  ? resolve(here, '../../src/cli/main.js')
  : resolve(here, '../../build/src/cli/main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[]): Promise<Run> {
  return new Promise((res) => {
    execFile(file, args, { timeout: 8000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}
const telemq = (args: string[]) => run(process.execPath, [cli, ...args]);

/** A CA with a server and a client certificate, plus a second CA and client that must be refused. */
async function makeCerts(keyType = 'ec') {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-certs-'));
  const ca = join(dir, 'ca');
  const other = join(dir, 'other');
  const steps = [
    [
      ['certs', 'ca', '--out', ca, '--key-type', keyType],
      ['certs', 'ca', '--out', other, '--cn', 'Foreign CA'],
    ],
    [
      ['certs', 'server', '--ca', ca, '--host', 'localhost', '--ip', '127.0.0.1', '--ip', '::1', '--key-type', keyType],
      ['certs', 'client', '--ca', ca, '--name', 'meter-17', '--key-type', keyType],
      ['certs', 'client', '--ca', other, '--name', 'intruder'],
    ],
  ];
  for (const batch of steps) {
    const results = await Promise.all(batch.map((args) => telemq(args)));
    results.forEach((r, i) => assert.equal(r.code, 0, `${batch[i]!.join(' ')}: ${r.stderr}`));
  }
  return { dir, ca, other };
}

// One set of files per key type for the whole file: each CLI run starts a Node process.
const made = new Map<string, ReturnType<typeof makeCerts>>();
function certs(keyType = 'ec') {
  let p = made.get(keyType);
  if (p === undefined) {
    p = makeCerts(keyType);
    made.set(keyType, p);
  }
  return p;
}
after(async () => {
  for (const p of made.values()) await rm((await p).dir, { recursive: true, force: true });
});

test('telemq certs writes CA, server and client PEM files; keys are 0600; openssl verify accepts the chain', async () => {
  assert.ok(existsSync(cli), `${cli} missing: run npm run build:test`);
  const { ca, other } = await certs();
  for (const f of ['ca.key', 'server.key', 'meter-17.key']) assert.equal((await stat(join(ca, f))).mode & 0o777, 0o600, f);
  assert.equal((await stat(join(ca, 'server.crt'))).mode & 0o777, 0o644);
  const v = await run('openssl', ['verify', '-CAfile', join(ca, 'ca.crt'), join(ca, 'server.crt'), join(ca, 'meter-17.crt')]);
  assert.equal(v.code, 0, v.stderr + v.stdout);
  assert.match(v.stdout, /server\.crt: OK/);
  assert.match(v.stdout, /meter-17\.crt: OK/);
  const bad = await run('openssl', ['verify', '-CAfile', join(ca, 'ca.crt'), join(other, 'intruder.crt')]);
  assert.notEqual(bad.code, 0, 'a certificate from another CA must not verify');
  // Purpose checks: the server cert is for servers, the client cert for clients.
  const sp = await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(ca, 'ca.crt'), join(ca, 'server.crt')]);
  assert.equal(sp.code, 0, sp.stdout + sp.stderr);
  const cp = await run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(ca, 'ca.crt'), join(ca, 'meter-17.crt')]);
  assert.equal(cp.code, 0, cp.stdout + cp.stderr);
  const wrongPurpose = await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(ca, 'ca.crt'), join(ca, 'meter-17.crt')]);
  assert.notEqual(wrongPurpose.code, 0);

  const server = new X509Certificate(await readFile(join(ca, 'server.crt')));
  assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.equal(server.checkHost('localhost'), 'localhost');
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(server.ca, false);
  const days = (Date.parse(server.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 824 && days <= 825, `server lifetime ${days} days`);
  assert.equal(server.publicKey.asymmetricKeyType, 'ec');
  const client = new X509Certificate(await readFile(join(ca, 'meter-17.crt')));
  assert.equal(client.subject, 'CN=meter-17');
  const caCert = new X509Certificate(await readFile(join(ca, 'ca.crt')));
  assert.equal(caCert.ca, true);
  assert.ok(client.verify(caCert.publicKey));
});

test('telemq certs refuses to overwrite without --force, and reports usage errors', async () => {
  const { ca } = await certs();
  const before = await readFile(join(ca, 'meter-17.crt'), 'utf8');
  let r = await telemq(['certs', 'client', '--ca', ca, '--name', 'meter-17']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /exists \(use --force/);
  assert.equal(await readFile(join(ca, 'meter-17.crt'), 'utf8'), before);
  r = await telemq(['certs', 'client', '--ca', ca, '--name', 'meter-17', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(await readFile(join(ca, 'meter-17.crt'), 'utf8'), before);
  const bad = [
    ['certs'],
    ['certs', 'bogus'],
    ['certs', 'ca'],
    ['certs', 'server', '--ca', ca],
    ['certs', 'server', '--ca', ca, '--ip', 'not-an-ip'],
    ['certs', 'server', '--ca', ca, '--host', 'bad host'],
    ['certs', 'client', '--ca', ca],
    ['certs', 'client', '--ca', join(ca, 'nope'), '--name', 'x'],
    ['certs', 'ca', '--out', ca, '--key-type', 'dsa'],
    ['certs', 'ca', '--out', ca, '--days', '-1'],
  ];
  const results = await Promise.all(bad.map((args) => telemq(args)));
  results.forEach((res, i) => {
    assert.equal(res.code, 1, bad[i]!.join(' '));
    assert.match(res.stderr, /^telemq certs: /, bad[i]!.join(' '));
  });
});

async function tlsHandshake(port: number, ca: string, opts: { cert?: string; key?: string; servername?: string }): Promise<'ok' | string> {
  const socket: TLSSocket = tlsConnect({
    host: '127.0.0.1',
    port,
    ca: await readFile(join(ca, 'ca.crt')),
    ...(opts.cert === undefined ? {} : { cert: await readFile(opts.cert), key: await readFile(opts.key!) }),
    servername: opts.servername ?? 'localhost',
  });
  let error: string | undefined;
  socket.on('error', (e) => {
    error ??= e.message;
  });
  try {
    // TLS 1.3 reports a refused client certificate after the handshake: wait for the server's first byte or close.
    const outcome = await Promise.race([
      // events.once rejects on 'error': that is a refusal too.
      once(socket, 'data').then(
        () => 'ok',
        (e: Error) => e.message,
      ),
      once(socket, 'close').then(() => error ?? 'closed'),
    ]);
    return outcome;
  } finally {
    socket.destroy();
  }
}

for (const keyType of ['ec', 'rsa']) {
  test(`Node tls (${keyType}): requestCert + ca accepts the CA's client certificate and refuses a foreign or missing one`, async (t) => {
    const { ca, other } = await certs(keyType);
    const server = createTlsServer(
      {
        cert: await readFile(join(ca, 'server.crt')),
        key: await readFile(join(ca, 'server.key')),
        ca: await readFile(join(ca, 'ca.crt')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s) => {
        s.end((s.getPeerCertificate().subject as { CN?: string }).CN ?? '?');
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    assert.equal(await tlsHandshake(port, ca, { cert: join(ca, 'meter-17.crt'), key: join(ca, 'meter-17.key') }), 'ok');
    assert.notEqual(await tlsHandshake(port, ca, { cert: join(other, 'intruder.crt'), key: join(other, 'intruder.key') }), 'ok');
    assert.notEqual(await tlsHandshake(port, ca, {}), 'ok');
    // The client checks the server name against the SANs.
    assert.match(await tlsHandshake(port, ca, { cert: join(ca, 'meter-17.crt'), key: join(ca, 'meter-17.key'), servername: 'example.org' }), /altnames/);
  });
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('interop: Debian mosquitto with these files accepts mosquitto_pub --cafile/--cert/--key and refuses a foreign client', async (t) => {
  const { dir, ca, other } = await certs();
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      // Running as root, mosquitto would switch to the 'mosquitto' user and lose access to the 0600 keys.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      `listener ${port} 127.0.0.1`,
      `cafile ${join(ca, 'ca.crt')}`,
      `certfile ${join(ca, 'server.crt')}`,
      `keyfile ${join(ca, 'server.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      '',
    ].join('\n'),
  );
  const broker = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(async () => {
    if (broker.exitCode === null) {
      broker.kill('SIGTERM');
      await once(broker, 'exit');
    }
  });
  let log = '';
  await new Promise<void>((res, rej) => {
    broker.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      if (/running/.test(log)) res();
    });
    broker.once('exit', (code) => rej(new Error(`mosquitto exited with ${code}: ${log}`)));
  });
  const pub = (cert: string, key: string) =>
    run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', join(ca, 'ca.crt'), '--cert', cert, '--key', key, '-t', 'meters/17', '-m', '42', '-q', '1']);
  const ok = await pub(join(ca, 'meter-17.crt'), join(ca, 'meter-17.key'));
  assert.equal(ok.code, 0, ok.stderr + log);
  const bad = await pub(join(other, 'intruder.crt'), join(other, 'intruder.key'));
  assert.notEqual(bad.code, 0, 'a client certificate from another CA must be refused');
  assert.match(log, /meter-17/, 'mosquitto took the CN as the username');
});
