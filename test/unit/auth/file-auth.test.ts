import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuth, defaultAllowAnonymous, isLoopbackHost } from '../../../src/broker/auth/file-auth.js';
import { hashPassword } from '../../../src/broker/auth/password-file.js';
import type { ConnectRequest } from '../../../src/broker/auth/auth.js';
import type { Logger } from '../../../src/shared/logger.js';

const fast = { algorithm: 'scrypt', ln: 10, r: 8, p: 1 } as const;

function req(over: Partial<ConnectRequest>): ConnectRequest {
  return { clientId: 'c1', protocolVersion: 5, listener: 'public', ...over } as ConnectRequest;
}

function recordingLogger(lines: string[]): Logger {
  const l: Logger = {
    debug() {},
    info() {},
    warn(_o, msg) {
      lines.push(`warn ${msg ?? ''}`);
    },
    error(_o, msg) {
      lines.push(`error ${msg ?? ''}`);
    },
    child: () => l,
  };
  return l;
}

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await writeFile(passwordFile, `alice:${await hashPassword('pw-a', fast)}\nbob:${await hashPassword('pw-b', fast)}\n`);
  await writeFile(aclFile, 'user alice\ntopic readwrite a/#\nanonymous\ntopic read public/#\n');
  const log: string[] = [];
  const auth = await FileAuth.create({
    passwordFile,
    aclFile,
    allowAnonymous: (name) => name === 'local',
    failureDelay: 0,
    logger: recordingLogger(log),
  });
  return { auth, passwordFile, aclFile, log };
}

test('isLoopbackHost and the default anonymous policy: loopback-only listeners admit anonymous clients', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.org', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  assert.equal(defaultAllowAnonymous({ host: '127.0.0.1' }), true);
  assert.equal(defaultAllowAnonymous({ host: '0.0.0.0' }), false);
  assert.equal(defaultAllowAnonymous({ host: '0.0.0.0', allowAnonymous: true }), true);
  assert.equal(defaultAllowAnonymous({ host: '127.0.0.1', allowAnonymous: false }), false);
});

test('authenticate: good password ok; wrong password / unknown user 0x86; missing password 0x86; all logged', async (t) => {
  const { auth, log } = await setup(t);
  assert.deepEqual(await auth.authenticate(req({ username: 'alice', password: Buffer.from('pw-a') })), { ok: true });
  const wrong = await auth.authenticate(req({ username: 'alice', password: Buffer.from('pw-b') }));
  assert.equal(wrong.ok, false);
  assert.equal(!wrong.ok && wrong.reasonCode, 0x86);
  const unknown = await auth.authenticate(req({ username: 'mallory', password: Buffer.from('pw-a') }));
  assert.equal(!unknown.ok && unknown.reasonCode, 0x86);
  const nopw = await auth.authenticate(req({ username: 'alice' }));
  assert.equal(!nopw.ok && nopw.reasonCode, 0x86);
  assert.equal(log.filter((l) => l === 'warn connection refused').length, 3);
});

test('authenticate: anonymous refused with 0x87 on a public listener, admitted on an allowed one', async (t) => {
  const { auth } = await setup(t);
  const r = await auth.authenticate(req({ listener: 'public' }));
  assert.equal(!r.ok && r.reasonCode, 0x87);
  assert.deepEqual(await auth.authenticate(req({ listener: 'local' })), { ok: true });
  // A username still needs its password where anonymous clients are admitted.
  const r2 = await auth.authenticate(req({ listener: 'local', username: 'alice', password: Buffer.from('x') }));
  assert.equal(!r2.ok && r2.reasonCode, 0x86);
});

test('authenticate: a verified certificate identity stands in for the password when it is the username', async (t) => {
  const { auth } = await setup(t);
  assert.deepEqual(await auth.authenticate(req({ username: 'meter-17', certificate: { identity: 'meter-17' } })), { ok: true });
  const r = await auth.authenticate(req({ username: 'alice', certificate: { identity: 'meter-17' } }));
  assert.equal(!r.ok && r.reasonCode, 0x87);
});

test('failed logins are delayed by failureDelay', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const auth = await FileAuth.create({ allowAnonymous: () => false, failureDelay: 150 });
  const start = performance.now();
  const r = await auth.authenticate(req({}));
  assert.equal(r.ok, false);
  assert.ok(performance.now() - start >= 140);
});

test('authorization follows the ACL; $share/<group>/ is stripped; an invalid share is refused', async (t) => {
  const { auth } = await setup(t);
  const a = { clientId: 'c1', username: 'alice' };
  assert.equal(auth.canPublish({ ...a, topic: 'a/1', qos: 0, retain: false }), true);
  assert.equal(auth.canPublish({ ...a, topic: 'b/1', qos: 0, retain: false }), false);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: 'a/#', qos: 1 }), true);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: '$share/g/a/#', qos: 1 }), true);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: '$share/g/#', qos: 1 }), false);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: '$share//a/#', qos: 1 }), false);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: '#', qos: 1 }), false);
  assert.equal(auth.canRead({ ...a, topic: 'a/x' }), true);
  assert.equal(auth.canRead({ clientId: 'x', username: undefined, topic: 'public/1' }), true);
  assert.equal(auth.canRead({ clientId: 'x', username: undefined, topic: 'a/x' }), false);
});

test('without an ACL file every client may read and write everything', async () => {
  const auth = await FileAuth.create({ allowAnonymous: () => true });
  assert.equal(auth.canPublish({ clientId: 'c', username: undefined, topic: 'x', qos: 0, retain: false }), true);
  assert.equal(auth.canSubscribe({ clientId: 'c', username: undefined, topicFilter: '#', qos: 0 }), true);
});

test('reload swaps both files; a broken file keeps the previous ones in force', async (t) => {
  const { auth, passwordFile, aclFile, log } = await setup(t);
  const a = { clientId: 'c1', username: 'alice' };
  await writeFile(passwordFile, `carol:${await hashPassword('pw-c', fast)}\n`);
  await writeFile(aclFile, 'user alice\ntopic read b/#\n');
  assert.deepEqual(await auth.reload(), { ok: true });
  assert.deepEqual(await auth.authenticate(req({ username: 'carol', password: Buffer.from('pw-c') })), { ok: true });
  assert.equal((await auth.authenticate(req({ username: 'alice', password: Buffer.from('pw-a') }))).ok, false);
  assert.equal(auth.canSubscribe({ ...a, topicFilter: 'b/#', qos: 0 }), true);
  assert.equal(auth.canPublish({ ...a, topic: 'a/1', qos: 0, retain: false }), false);

  await writeFile(aclFile, 'user alice\ntopic bogus b/#\n');
  await writeFile(passwordFile, '');
  const r = await auth.reload();
  assert.equal(r.ok, false);
  assert.ok(log.includes('error auth reload failed; keeping the previous password and ACL files'));
  // Neither file changed: carol still logs in and the old ACL still applies.
  assert.deepEqual(await auth.authenticate(req({ username: 'carol', password: Buffer.from('pw-c') })), { ok: true });
  assert.equal(auth.canSubscribe({ ...a, topicFilter: 'b/#', qos: 0 }), true);
});

test('create rejects a missing or broken file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(FileAuth.create({ passwordFile: join(dir, 'none'), allowAnonymous: () => false }), { code: 'ENOENT' });
  await writeFile(join(dir, 'acl'), 'topic read x\n');
  await assert.rejects(FileAuth.create({ aclFile: join(dir, 'acl'), allowAnonymous: () => false }), { code: 'TELEMQ_ERR_ACL' });
});

test('anonymousPolicy looks listeners up by their current name; loopback-only unless allowAnonymous is set', async () => {
  const { anonymousPolicy } = await import('../../../src/broker/auth/file-auth.js');
  const local = { name: 'tcp://127.0.0.1:0' };
  const closedLocal = { name: 'tcp://[::1]:0' };
  const pub = { name: 'mqtts://0.0.0.0:8883' };
  const open = { name: 'ws://0.0.0.0:8080' };
  const policy = anonymousPolicy([
    { listener: local, host: '127.0.0.1' },
    { listener: pub, host: '0.0.0.0' },
    { listener: open, host: '0.0.0.0', allowAnonymous: true },
    { listener: closedLocal, host: '::1', allowAnonymous: false },
  ]);
  assert.equal(policy('tcp://[::1]:0'), false, 'allowAnonymous: false on loopback');
  local.name = 'tcp://127.0.0.1:40001'; // bound: the name now has the real port
  assert.equal(policy('tcp://127.0.0.1:40001'), true);
  assert.equal(policy('mqtts://0.0.0.0:8883'), false);
  assert.equal(policy('ws://0.0.0.0:8080'), true);
  // Names not in the list: the loopback rule from the host in the name.
  assert.equal(policy('mqtts://127.0.0.1:8883'), true);
  assert.equal(policy('ws://[::]:8080'), false);
  assert.equal(policy('in-process'), false);
});
