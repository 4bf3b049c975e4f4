import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
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

/** Runs the CLI on a pseudo-terminal (util-linux `script`), typing each answer after its prompt appears. */
function onTerminal(args: string[], answers: string[]): Promise<{ code: number | null; output: string }> {
  const cmd = [process.execPath, cli, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let prompts = 0;
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    const seen = (output.match(/password: /gi) ?? []).length;
    while (prompts < seen && prompts < answers.length) child.stdin.write(answers[prompts++] + '\r');
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

test('telemq passwd on a terminal prompts twice without echoing the password', { skip: !existsSync('/usr/bin/script') && 'needs util-linux script' }, async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'passwd');
  const r = await onTerminal(['passwd', '-c', file, 'bob'], ['tty-secret', 'tty-secret']);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /Password: /);
  assert.match(r.output, /Reenter password: /);
  assert.doesNotMatch(r.output, /tty-secret/, 'the password is not echoed');
  assert.equal(await (await PasswordFile.load(file)).verify('bob', 'tty-secret'), true);
  const mismatch = await onTerminal(['passwd', file, 'bob'], ['one', 'two']);
  assert.notEqual(mismatch.code, 0);
  assert.match(mismatch.output, /do not match/);
  assert.equal(await (await PasswordFile.load(file)).verify('bob', 'tty-secret'), true, 'unchanged');
});
