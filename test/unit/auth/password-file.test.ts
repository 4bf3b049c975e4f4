import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PasswordFile,
  formatPasswordFile,
  hashPassword,
  parseHash,
  parsePasswordFile,
  usernameProblem,
  verifyPassword,
  writeFileAtomic,
  type HashParams,
} from '../../../src/broker/auth/password-file.js';

// Cheap parameters keep the suite fast; one test below uses the defaults.
const fast: HashParams = { algorithm: 'scrypt', ln: 10, r: 8, p: 1 };

test('default hash is scrypt N=2^15 r=8 p=1 with a 16-byte salt and 32-byte key, and verifies', async () => {
  const h = await hashPassword('s3cret');
  assert.match(h, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  assert.equal(await verifyPassword(h, 's3cret'), true);
  assert.equal(await verifyPassword(h, 's3cret '), false);
});

test('the same password hashes differently each time (random salt)', async () => {
  const a = await hashPassword('pw', fast);
  const b = await hashPassword('pw', fast);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword(a, 'pw'), true);
  assert.equal(await verifyPassword(b, 'pw'), true);
});

test('PBKDF2-SHA512 lines are produced and verified', async () => {
  const h = await hashPassword('pw', { algorithm: 'pbkdf2-sha512', iterations: 10_000 });
  assert.match(h, /^\$pbkdf2-sha512\$i=10000\$/);
  assert.equal(await verifyPassword(h, 'pw'), true);
  assert.equal(await verifyPassword(h, 'pW'), false);
});

test('binary passwords (MQTT passwords are binary data) compare byte for byte', async () => {
  const pw = Buffer.from([0x00, 0xff, 0xc3, 0x28]);
  const h = await hashPassword(pw, fast);
  assert.equal(await verifyPassword(h, Buffer.from(pw)), true);
  assert.equal(await verifyPassword(h, Buffer.from([0x00, 0xff, 0xc3])), false);
  // A string is taken as UTF-8.
  const u = await hashPassword('grüße', fast);
  assert.equal(await verifyPassword(u, Buffer.from('grüße', 'utf8')), true);
});

test('parameters out of range are refused when hashing and when read from a file', async () => {
  await assert.rejects(hashPassword('x', { algorithm: 'scrypt', ln: 30, r: 8, p: 1 }), RangeError);
  await assert.rejects(hashPassword('x', { algorithm: 'pbkdf2-sha512', iterations: 1 }), RangeError);
  const good = await hashPassword('x', fast);
  const huge = good.replace('ln=10', 'ln=25');
  assert.equal(parseHash(huge), undefined);
  assert.equal(await verifyPassword(huge, 'x'), false);
  assert.equal(parseHash(good.replace('ln=10', 'ln=8')), undefined, 'too weak');
});

test('malformed hash fields never throw and never verify', async () => {
  for (const bad of ['', 'plain', '$scrypt$', '$scrypt$ln=10,r=8,p=1$AAAA$', '$md5$x$y$z', '$scrypt$ln=10,r=8$c2FsdHNhbHRzYWx0$' + 'A'.repeat(43) + '=',
    '$scrypt$ln=10,r=8,p=1,p=1$c2FsdHNhbHRzYWx0$' + 'A'.repeat(43) + '=', '$scrypt$ln=10,r=8,p=1$!!!!$' + 'A'.repeat(43) + '=']) {
    assert.equal(parseHash(bad), undefined, bad);
    assert.equal(await verifyPassword(bad, 'x'), false, bad);
  }
});

test('usernames that would break the line format or are not MQTT UTF-8 are refused', () => {
  assert.equal(usernameProblem('alice'), undefined);
  assert.equal(usernameProblem('meter-17@site.example'), undefined);
  assert.match(usernameProblem('')!, /empty/);
  assert.match(usernameProblem('a:b')!, /':'/);
  assert.match(usernameProblem('a\nb')!, /line break/);
  assert.match(usernameProblem('a\u0000b')!, /UTF-8/);
  assert.match(usernameProblem('a\ud800')!, /UTF-8/);
});

test('parsePasswordFile keeps good lines, reports bad ones with file:line, first duplicate wins', async () => {
  const a = await hashPassword('a', fast);
  const b = await hashPassword('b', fast);
  const text = `# comment\n\nalice:${a}\r\nnocolon\nbob:$md5$x$y$z\nalice:${b}\n  carol:${b}  \n`;
  const { users, problems } = parsePasswordFile(text, 'pw');
  assert.deepEqual([...users.keys()], ['alice', 'carol']);
  assert.equal(users.get('alice'), a);
  assert.deepEqual(problems, [
    "pw:4: expected 'username:hash'",
    "pw:5: unknown or malformed hash for 'bob'",
    "pw:6: 'alice' is listed twice; the first line is used",
  ]);
  assert.equal(formatPasswordFile(users), `alice:${a}\ncarol:${b}\n`);
});

test('PasswordFile.verify: right password, wrong password, unknown user', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-pw-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'passwd');
  await writeFile(path, `alice:${await hashPassword('right', fast)}\n`);
  const pf = await PasswordFile.load(path);
  assert.equal(pf.size, 1);
  assert.equal(pf.has('alice'), true);
  assert.equal(await pf.verify('alice', 'right'), true);
  assert.equal(await pf.verify('alice', 'wrong'), false);
  assert.equal(await pf.verify('mallory', 'right'), false);
  assert.equal(await pf.verify('alice', ''), false);
});

test('writeFileAtomic replaces the file whole with mode 0600 and leaves no temporary file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-pw-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'passwd');
  await writeFile(path, 'old\n', { mode: 0o644 });
  await writeFileAtomic(path, 'new\n');
  assert.equal(await readFile(path, 'utf8'), 'new\n');
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const { readdir } = await import('node:fs/promises');
  assert.deepEqual(await readdir(dir), ['passwd']);
});
