import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PasswordFile, parsePasswordFile } from '../../src/broker/auth/password-file.js';

// Compiled: build/test/integration -> build/src/cli/main.js; under tsx: test/integration -> build/src/cli/main.js.
const here = dirname(fileURLToPath(import.meta.url));
const cli = here.includes(join('build', 'test'))
  ? resolve(here, '../../src/cli/main.js')
  : resolve(here, '../../build/src/cli/main.js');

function telemq(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = execFile(process.execPath, [cli, ...args], (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-passwd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('telemq passwd: the compiled CLI exists', () => {
  assert.ok(existsSync(cli), `${cli} missing: run npm run build:test`);
});

test('telemq passwd -c -b creates a 0600 file whose hash verifies', async (t) => {
  const file = join(await tempDir(t), 'passwd');
  const r = await telemq(['passwd', '-c', '-b', file, 'alice', 'pa55'], undefined);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const pf = await PasswordFile.load(file);
  assert.equal(await pf.verify('alice', 'pa55'), true);
  assert.equal(await pf.verify('alice', 'pa56'), false);
});

test('telemq passwd adds, changes (password from stdin) and removes users, keeping other lines', async (t) => {
  const file = join(await tempDir(t), 'passwd');
  assert.equal((await telemq(['passwd', '-c', '-b', file, 'alice', 'one'])).code, 0);
  assert.equal((await telemq(['passwd', '-b', file, 'bob', 'two'])).code, 0);
  await writeFile(file, '# operators\n' + (await readFile(file, 'utf8')));
  // Not a terminal: the first line of standard input is the password.
  const change = await telemq(['passwd', file, 'alice'], 'three\n');
  assert.equal(change.code, 0, change.stderr);
  let pf = await PasswordFile.load(file);
  assert.equal(await pf.verify('alice', 'three'), true);
  assert.equal(await pf.verify('alice', 'one'), false);
  assert.equal(await pf.verify('bob', 'two'), true);
  const text = await readFile(file, 'utf8');
  assert.ok(text.startsWith('# operators\nalice:'), 'comment and order kept');

  assert.equal((await telemq(['passwd', '-D', file, 'alice'])).code, 0);
  pf = await PasswordFile.load(file);
  assert.equal(pf.has('alice'), false);
  assert.equal(pf.has('bob'), true);
  assert.deepEqual(parsePasswordFile(await readFile(file, 'utf8')).problems, []);
});

test('telemq passwd --pbkdf2 writes a PBKDF2-SHA512 line', async (t) => {
  const file = join(await tempDir(t), 'passwd');
  assert.equal((await telemq(['passwd', '-c', '-b', '--pbkdf2', file, 'u', 'p'])).code, 0);
  assert.match(await readFile(file, 'utf8'), /^u:\$pbkdf2-sha512\$i=210000\$/);
  assert.equal(await (await PasswordFile.load(file)).verify('u', 'p'), true);
});

test('telemq passwd refuses bad usage with exit code 1 and leaves the file alone', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'passwd');
  let r = await telemq(['passwd', '-b', file, 'alice', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not exist \(use -c/);
  assert.equal(existsSync(file), false);
  assert.equal((await telemq(['passwd', '-c', '-b', file, 'alice', 'x'])).code, 0);
  const before = await readFile(file, 'utf8');
  r = await telemq(['passwd', '-b', file, 'a:b', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /':'/);
  r = await telemq(['passwd', '-D', file, 'nobody']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not in/);
  r = await telemq(['passwd', file, 'bob'], '');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /empty/);
  r = await telemq(['passwd', '-D', '-c', file, 'alice']);
  assert.equal(r.code, 1);
  r = await telemq(['passwd', '--bogus', file, 'alice']);
  assert.equal(r.code, 1);
  assert.equal(await readFile(file, 'utf8'), before);
});
