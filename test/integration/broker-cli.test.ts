/** `telemq broker` as a child process: starts with flags, logs JSON when not on a terminal, exits 0 on SIGTERM. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectAsync } from 'mqtt';
import { nextEvent } from '../helpers/broker.js';

// Compiled (build/test/integration/*.js) or run by tsx (test/integration/*.ts): the CLI sits in the same tree.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const main = fileURLToPath(new URL(`../../src/cli/main${ext}`, import.meta.url));

function startCli(args: string[]) {
  const child = spawn(process.execPath, [...process.execArgv, main, 'broker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout });
  const logs: Array<Record<string, unknown>> = [];
  const listening = new Promise<number>((resolve, reject) => {
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      const m = /:(\d+)$/.exec(String(entry.listener ?? ''));
      if (entry.msg === 'listening' && m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  return { child, logs, listening };
}

test('telemq broker --port 0: serves clients, logs JSON, SIGTERM sends v5 clients DISCONNECT 0x8B and exits 0', async (t) => {
  const { child, logs, listening } = startCli(['--host', '127.0.0.1', '--port', '0', '--no-sys', '--memory']);
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await listening;
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId: 'cli-test', reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  const disconnected = nextEvent(client, 'disconnect') as Promise<[{ reasonCode?: number }]>;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const [d] = await disconnected;
  assert.equal(d.reasonCode, 0x8b);
  const [code] = await exited;
  assert.equal(code, 0);
  assert.ok(logs.some((l) => l.msg === 'client connected' && l.clientId === 'cli-test'));
});

test('telemq broker rejects an unknown flag and an invalid config file with exit code 2', async () => {
  const bad = spawn(process.execPath, [...process.execArgv, main, 'broker', '--bogus'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const [code] = (await once(bad, 'exit')) as [number | null];
  assert.equal(code, 2);
  const missing = spawn(process.execPath, [...process.execArgv, main, 'broker', '--config', '/nonexistent/telemq.yaml'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const [code2] = (await once(missing, 'exit')) as [number | null];
  assert.equal(code2, 2);
});
