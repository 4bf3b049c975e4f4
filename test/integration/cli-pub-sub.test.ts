import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMosquitto } from '../helpers/mosquitto.js';

// Compiled: build/test/integration -> build/src/cli/main.js. Under tsx: test/integration -> src/cli/main.ts.
const fromSource = import.meta.url.endsWith('.ts');
const mainFile = fileURLToPath(new URL(fromSource ? '../../src/cli/main.ts' : '../../src/cli/main.js', import.meta.url));
const nodeArgs = fromSource ? ['--import', 'tsx', mainFile] : [mainFile];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...nodeArgs, ...args], { stdio: 'pipe' });
}

function finish(child: ChildProcessWithoutNullStreams, input?: string): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function telemq(args: string[], input?: string): Promise<Result> {
  return finish(start(args), input);
}

/** Starts `telemq sub -d ...` and resolves once its subscriptions are acknowledged. */
async function subscriber(args: string[]): Promise<{ done: Promise<Result> }> {
  const child = start(['sub', '-d', ...args]);
  const done = finish(child);
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('Subscribed to')) resolve();
    });
    child.once('close', () => reject(new Error(`sub exited early: ${err}`)));
  });
  // Wrapped: an async function returning a promise would wait for it.
  return { done };
}

test('telemq pub -q 1/2 reaches telemq sub -v -C 2; output is "topic payload"', async (t) => {
  const broker = await startMosquitto(t);
  const p = String(broker.port);
  const sub = await subscriber(['-h', '127.0.0.1', '-p', p, '-t', 'cli/#', '-q', '2', '-v', '-C', '2']);
  const a = await telemq(['pub', '-h', '127.0.0.1', '-p', p, '-t', 'cli/a', '-m', 'one', '-q', '1']);
  assert.equal(a.code, 0, a.stderr);
  const b = await telemq(['pub', '-h', '127.0.0.1', '-p', p, '-t', 'cli/b', '-m', 'two', '-q', '2', '-V', 'mqttv5']);
  assert.equal(b.code, 0, b.stderr);
  const result = await sub.done;
  assert.equal(result.code, 0);
  assert.equal(result.stdout, 'cli/a one\ncli/b two\n');
});

test('telemq pub -l sends one message per line; telemq sub --json prints one JSON object each', async (t) => {
  const broker = await startMosquitto(t);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await subscriber(['-L', `${url}/lines`, '-C', '3', '--json', '-q', '1']);
  const pub = await telemq(['pub', '-L', `${url}/lines`, '-l', '-q', '1'], 'a\nb\nc\n');
  assert.equal(pub.code, 0, pub.stderr);
  const result = await sub.done;
  const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string; payload: string; qos: number; retain: boolean });
  assert.deepEqual(lines.map((l) => [l.topic, l.payload, l.qos, l.retain]), [
    ['lines', 'a', 1, false],
    ['lines', 'b', 1, false],
    ['lines', 'c', 1, false],
  ]);
});

test('retained messages: -R skips them, --retained-only prints only them, -F formats, -D sets v5 properties', async (t) => {
  const broker = await startMosquitto(t);
  const p = String(broker.port);
  const r = await telemq(['pub', '-p', p, '-h', '127.0.0.1', '-t', 'ret/x', '-m', 'kept', '-r', '-q', '1', '-V', '5', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'publish', 'content-type', 'text/plain']);
  assert.equal(r.code, 0, r.stderr);
  const only = await telemq(['sub', '-p', p, '-h', '127.0.0.1', '-t', 'ret/#', '--retained-only', '-V', 'mqttv5', '-F', '%t|%p|%r|%q|%l|%C|%P', '-W', '5']);
  assert.equal(only.code, 27, 'no live message came: the timeout ends it');
  assert.equal(only.stdout, 'ret/x|kept|1|0|4|text/plain|k:v\n');
  const live = await subscriber(['-p', p, '-h', '127.0.0.1', '-t', 'ret/#', '-R', '-C', '1']);
  await telemq(['pub', '-p', p, '-h', '127.0.0.1', '-t', 'ret/y', '-m', 'fresh']);
  const result = await live.done;
  assert.equal(result.stdout, 'fresh\n');
});

test('-W ends a quiet subscription with exit status 27', async (t) => {
  const broker = await startMosquitto(t);
  const result = await telemq(['sub', '-p', String(broker.port), '-h', '127.0.0.1', '-t', 'quiet', '-W', '0.3']);
  assert.equal(result.code, 27);
  assert.equal(result.stdout, '');
});

for (const [version, expected] of [
  ['mqttv5', 'Connection refused: not authorized (CONNACK 0x87)'],
  ['mqttv311', 'Connection refused: not authorized (CONNACK 0x05)'],
] as const) {
  test(`a refused connection says why (${version}): ${expected}`, async (t) => {
    const broker = await startMosquitto(t, { denyAnonymous: true });
    const result = await telemq(['pub', '-p', String(broker.port), '-h', '127.0.0.1', '-t', 'x', '-m', 'y', '-V', version]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, `Error: ${expected}\n`);
  });
}

test('usage errors name the problem: unknown flag, missing topic, bad QoS, nothing listening', async () => {
  const unknown = await telemq(['pub', '--bogus']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
  const noTopic = await telemq(['pub', '-m', 'x']);
  assert.match(noTopic.stderr, /no topic: give -t TOPIC/);
  const badQos = await telemq(['sub', '-t', 'a', '-q', '3']);
  assert.match(badQos.stderr, /-q must be an integer from 0 to 2, not '3'/);
  const badProperty = await telemq(['pub', '-t', 'a', '-m', 'x', '-V', '5', '-D', 'connect', 'content-type', 'x']);
  assert.match(badProperty.stderr, /property 'content-type' is not allowed with 'connect'/);
  const closed = await telemq(['pub', '-h', '127.0.0.1', '-p', '1', '-t', 'a', '-m', 'x']);
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /Connection refused: nothing listens at mqtt:\/\/127\.0\.0\.1:1/);
});
