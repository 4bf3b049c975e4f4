/**
 * `telemq broker` on a database it must not use stops with a clear error and leaves the file as it was; on a good
 * one it keeps a retained message across a SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

/** The CLI entry: compiled build/src/cli/main.js, or src/cli/main.ts through tsx when run from the source. */
function cli(): string[] {
  const here = fileURLToPath(import.meta.url);
  const main = join(here, '..', '..', '..', 'src', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
  return here.endsWith('.ts') ? ['--import', 'tsx', main] : [main];
}

function dir(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'telemq-cli-storage-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Run {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stderr: string }>;
  port: Promise<number>;
}

function run(t: TestContext, args: string[]): Run {
  const child = spawn(process.execPath, [...cli(), 'broker', '--host', '127.0.0.1', '--port', '0', '--no-sys', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  // The log (JSON lines on stdout) names the bound address in its "listening" line.
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /"listener":"tcp:\/\/127\.0\.0\.1:(\d+)".*"msg":"listening"/.exec(line);
      if (m?.[1] !== undefined) resolve(Number(m[1]));
    });
    void exit.then(({ code, stderr: err }) => reject(new Error(`broker exited (${code}): ${err}`)));
  });
  port.catch(() => {});
  return { child, exit, port };
}

test('telemq broker --db <garbage> exits 1 with a clear message; the file is untouched', async (t) => {
  const path = join(dir(t), 'telemq.db');
  const bytes = Buffer.from('definitely not SQLite '.repeat(300));
  writeFileSync(path, bytes);
  const { code, stderr } = await run(t, ['--db', path]).exit;
  assert.equal(code, 1);
  assert.match(stderr, /not a SQLite database or corrupt/);
  assert.ok(stderr.includes(path));
  assert.deepEqual(readFileSync(path), bytes);
});

test('telemq broker --db: a retained message acknowledged just before SIGKILL is there after the restart', async (t) => {
  const path = join(dir(t), 'data', 'telemq.db');
  const first = run(t, ['--db', path, '--durability', 'batch']);
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${await first.port}`, { reconnectPeriod: 0 });
  pub.on('error', () => {});
  await pub.publishAsync('cli/kept', 'value', { qos: 1, retain: true });
  // Killed right after the PUBACK: nothing gets a chance to flush on the way down.
  first.child.kill('SIGKILL');
  await first.exit;
  pub.end(true);

  const second = run(t, ['--db', path, '--durability', 'batch']);
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${await second.port}`, { reconnectPeriod: 0 });
  t.after(() => sub.end(true));
  const got = new Promise<string>((resolve) => sub.once('message', (_topic, payload) => resolve(payload.toString())));
  await sub.subscribeAsync('cli/#', { qos: 1 });
  assert.equal(await got, 'value');
  second.child.kill('SIGTERM');
  assert.equal((await second.exit).code, 0, 'graceful shutdown on SIGTERM');
});
