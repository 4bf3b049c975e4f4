/** SIGHUP makes `telemq broker` read its password file, ACL file and TLS certificates again, keeping its clients. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, writeFileAtomic } from '../../src/broker/auth/password-file.js';
import { createCa, createServerCert } from '../../src/broker/tls/certs.js';
import { connectOnce, startCli } from './broker-cli-process.js';

// Low scrypt cost: this tests the reload, not the hash.
const fast = { algorithm: 'scrypt', ln: 10, r: 8, p: 1 } as const;
const ACL = 'user alice\ntopic readwrite r/#\nuser bob\ntopic readwrite r/#\n';

test('SIGHUP: a user added to the password file logs in, new certificates serve new handshakes, connected clients stay; a bad file keeps the old ones', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-cli-hup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = (name: string): string => join(dir, name);
  const [oldCa, newCa] = await Promise.all([createCa({ commonName: 'Old CA' }), createCa({ commonName: 'New CA' })]);
  const [oldServer, newServer] = await Promise.all([
    createServerCert(oldCa, { hosts: ['localhost'], ips: ['127.0.0.1'] }),
    createServerCert(newCa, { hosts: ['localhost'], ips: ['127.0.0.1'] }),
  ]);
  await Promise.all([
    writeFile(file('server.crt'), oldServer.cert),
    writeFile(file('server.key'), oldServer.key, { mode: 0o600 }),
    writeFileAtomic(file('passwd'), `alice:${await hashPassword('alice-pw', fast)}\n`),
    writeFile(file('acl'), ACL),
    writeFile(
      file('telemq.yaml'),
      [
        'listeners:',
        '  - { type: tcp, host: 127.0.0.1, port: 0, allowAnonymous: false }',
        `  - { type: tls, host: 127.0.0.1, port: 0, certFile: ${file('server.crt')}, keyFile: ${file('server.key')}, allowAnonymous: false }`,
        `auth: { passwordFile: ${file('passwd')}, aclFile: ${file('acl')}, failureDelay: 0 }`,
        'persistence: { type: memory }',
        'sys: { enabled: false }',
        '',
      ].join('\n'),
    ),
  ]);
  const broker = startCli(t, ['--config', file('telemq.yaml')]);
  const [plain, tls] = await broker.listening(2);
  const url = plain!.replace('tcp:', 'mqtt:');
  const alice = await connectOnce(t, url, { username: 'alice', password: 'alice-pw', protocolVersion: 5 });
  const aliceTls = await connectOnce(t, tls!, { ca: oldCa.cert, servername: 'localhost', username: 'alice', password: 'alice-pw' });
  let closes = 0;
  for (const c of [alice, aliceTls]) c.on('close', () => closes++);
  await alice.subscribeAsync('r/#', { qos: 1 });
  await assert.rejects(connectOnce(t, url, { username: 'bob', password: 'bob-pw', protocolVersion: 5 }), /Bad User Name or Password/i);

  await writeFileAtomic(file('passwd'), `alice:${await hashPassword('alice-pw', fast)}\nbob:${await hashPassword('bob-pw', fast)}\n`);
  await Promise.all([writeFile(file('server.crt'), newServer.cert), writeFile(file('server.key'), newServer.key)]);
  let mark = broker.logs.length;
  broker.child.kill('SIGHUP');
  const reloaded = await broker.waitLog((e) => typeof e.msg === 'string' && e.msg.startsWith('SIGHUP'), mark);
  assert.equal(reloaded.msg, 'SIGHUP: reloaded');
  assert.deepEqual(reloaded.reloaded, ['auth', tls]);

  const bob = await connectOnce(t, url, { username: 'bob', password: 'bob-pw', protocolVersion: 4 });
  const got = new Promise<string>((resolve) => alice.once('message', (_topic, payload) => resolve(payload.toString())));
  await bob.publishAsync('r/1', 'from bob', { qos: 1 });
  assert.equal(await got, 'from bob');
  // New handshakes get the new certificate: a client trusting only the old CA fails, one trusting the new CA succeeds.
  await assert.rejects(connectOnce(t, tls!, { ca: oldCa.cert, servername: 'localhost', username: 'bob', password: 'bob-pw' }));
  const bobTls = await connectOnce(t, tls!, { ca: newCa.cert, servername: 'localhost', username: 'bob', password: 'bob-pw' });
  assert.equal(bobTls.connected, true);
  // The connection made under the old certificate is still served.
  await aliceTls.publishAsync('r/2', 'old handshake', { qos: 1 });

  // A broken ACL and a key that does not match the certificate: both keep their previous version.
  await writeFile(file('acl'), 'topic read x\n');
  await writeFile(file('server.key'), oldServer.key);
  mark = broker.logs.length;
  broker.child.kill('SIGHUP');
  const failed = await broker.waitLog((e) => typeof e.msg === 'string' && e.msg.startsWith('SIGHUP'), mark);
  assert.match(String(failed.msg), /reload incomplete/);
  assert.deepEqual(failed.reloaded, []);
  assert.equal((failed.failed as string[]).length, 2);
  const again = await connectOnce(t, url, { username: 'bob', password: 'bob-pw' });
  await again.subscribeAsync('r/3', { qos: 1 });
  const newTls = await connectOnce(t, tls!, { ca: newCa.cert, servername: 'localhost', username: 'alice', password: 'alice-pw' });
  assert.equal(newTls.connected, true);

  assert.equal(closes, 0);
  assert.ok(alice.connected && aliceTls.connected);
  assert.equal(await broker.stop(), 0);
});
