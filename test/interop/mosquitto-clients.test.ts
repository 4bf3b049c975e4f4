/** Interop: Debian's mosquitto_pub / mosquitto_sub (libmosquitto) against the telemq broker, MQTT 3.1.1 and 5.0. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { startBroker } from '../helpers/broker.js';

const PUB = '/usr/bin/mosquitto_pub';
const SUB = '/usr/bin/mosquitto_sub';
const STDBUF = '/usr/bin/stdbuf';
const missing = !existsSync(PUB) || !existsSync(SUB) || !existsSync(STDBUF);
// .ci/run installs mosquitto-clients; a missing binary must fail loudly, not skip.
const FORMAT = 'MSG|%t|%q|%r|%p';

let seq = 0;
const uid = (p: string): string => `${p}${process.pid}x${++seq}`;

interface Proc {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Resolves when a stdout/stderr line matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Payload lines printed with FORMAT. */
  messages(): Array<{ topic: string; qos: number; retain: boolean; payload: string }>;
}

function run(t: TestContext, bin: string, args: string[]): Proc {
  // stdbuf: mosquitto_sub block-buffers stdout into a pipe; line buffering lets us see SUBACK and messages live.
  // It execs the client, so child.pid is the client's own PID.
  const child = spawn(STDBUF, ['-oL', '-eL', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const watchers: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const onData = (buf: Buffer): void => {
    for (const line of buf.toString().split('\n')) {
      if (line === '') continue;
      lines.push(line);
      for (const w of [...watchers]) {
        if (w.re.test(line)) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    // 'close', not 'exit': stdout may still hold the last lines when the process has exited.
    child.once('close', (code, signal) => resolve(code ?? signal ?? -1));
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch (e) {
        // It may have exited on its own (the broker closing first) since the check above.
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
      await exited;
    }
  });
  return {
    child,
    lines,
    exited,
    waitFor(re, timeoutMs = 5000) {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${timeoutMs} ms; got:\n${lines.join('\n')}`)), timeoutMs);
        watchers.push({
          re,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    messages() {
      return lines
        .filter((l) => l.startsWith('MSG|'))
        .map((l) => {
          const [, topic = '', qos = '', retain = '', ...rest] = l.split('|');
          return { topic, qos: Number(qos), retain: retain === '1', payload: rest.join('|') };
        });
    },
  };
}

/** mosquitto_sub with debug output, resolved once its SUBACK arrived. */
async function subscriber(t: TestContext, port: number, args: string[]): Promise<Proc> {
  const p = run(t, SUB, ['-h', '127.0.0.1', '-p', String(port), '-d', '-F', FORMAT, '-W', '8', ...args]);
  await p.waitFor(/received SUBACK/);
  return p;
}

async function publishOnce(port: number, t: TestContext, args: string[]): Promise<void> {
  const p = run(t, PUB, ['-h', '127.0.0.1', '-p', String(port), ...args]);
  const code = await p.exited;
  assert.equal(code, 0, `mosquitto_pub ${args.join(' ')} failed:\n${p.lines.join('\n')}`);
}

test('mosquitto-clients are installed (apt-get install mosquitto-clients)', () => {
  assert.equal(missing, false, `${PUB} / ${SUB} not found`);
});

for (const version of ['311', '5'] as const) {
  for (const qos of [0, 1, 2]) {
    test(`mosquitto_pub -> mosquitto_sub, -V ${version}, QoS ${qos}`, async (t) => {
      const { port } = await startBroker(t);
      const topic = uid(`mq/${version}/${qos}/`);
      const s = await subscriber(t, port, ['-V', version, '-q', String(qos), '-t', topic, '-C', '1']);
      await publishOnce(port, t, ['-V', version, '-q', String(qos), '-t', topic, '-m', `hello ${qos}`]);
      assert.equal(await s.exited, 0, s.lines.join('\n'));
      assert.deepEqual(s.messages(), [{ topic, qos, retain: false, payload: `hello ${qos}` }]);
    });
  }

  test(`retained message set, delivered with RETAIN=1 and cleared, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const topic = uid('mq/ret/');
    await publishOnce(port, t, ['-V', version, '-q', '1', '-r', '-t', topic, '-m', 'kept']);
    const s = await subscriber(t, port, ['-V', version, '-q', '1', '-t', topic, '-C', '1']);
    assert.equal(await s.exited, 0, s.lines.join('\n'));
    assert.deepEqual(s.messages(), [{ topic, qos: 1, retain: true, payload: 'kept' }]);

    await publishOnce(port, t, ['-V', version, '-r', '-t', topic, '-n']);
    const after = run(t, SUB, ['-h', '127.0.0.1', '-p', String(port), '-V', version, '-F', FORMAT, '-t', topic, '-W', '1']);
    await after.exited;
    assert.deepEqual(after.messages(), [], 'an empty retained payload cleared the topic');
  });

  test(`-C counts: mosquitto_sub exits after exactly 3 of 5 messages, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const topic = uid('mq/count/');
    const s = await subscriber(t, port, ['-V', version, '-q', '1', '-t', topic, '-C', '3']);
    for (let i = 1; i <= 5; i++) {
      if (s.child.exitCode !== null) break;
      await publishOnce(port, t, ['-V', version, '-q', '1', '-t', topic, '-m', `n${i}`]);
    }
    assert.equal(await s.exited, 0);
    assert.deepEqual(s.messages().map((m) => m.payload), ['n1', 'n2', 'n3']);
  });

  test(`will via mosquitto_sub --will-topic is published when it is killed, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const willTopic = uid('mq/will/');
    const listener = await subscriber(t, port, ['-V', version, '-q', '1', '-t', willTopic, '-C', '1']);
    const dying = await subscriber(t, port, [
      '-V', version, '-t', uid('mq/idle/'),
      '--will-topic', willTopic, '--will-payload', 'gone away', '--will-qos', '1', '--will-retain',
    ]);
    if (dying.child.pid !== undefined) process.kill(dying.child.pid, 'SIGKILL');
    await dying.exited;
    assert.equal(await listener.exited, 0, listener.lines.join('\n'));
    assert.deepEqual(listener.messages().map((m) => [m.topic, m.payload, m.qos]), [[willTopic, 'gone away', 1]]);
    // --will-retain: a later subscriber gets it retained.
    const late = await subscriber(t, port, ['-V', version, '-t', willTopic, '-C', '1']);
    assert.equal(await late.exited, 0);
    assert.equal(late.messages()[0]?.retain, true);
  });

  test(`a clean mosquitto_sub exit (DISCONNECT) does not publish its will, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const willTopic = uid('mq/nowill/');
    const listener = await subscriber(t, port, ['-V', version, '-t', willTopic]);
    const clean = await subscriber(t, port, ['-V', version, '-t', uid('mq/x/'), '-E', '--will-topic', willTopic, '--will-payload', 'no']);
    assert.equal(await clean.exited, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(listener.messages(), []);
  });

  test(`wildcards and a persistent session (-c) keep QoS 1 messages while offline, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const base = uid('mq/off/');
    const id = uid('mqsub');
    const first = await subscriber(t, port, ['-V', version, '-c', '-i', id, '-q', '1', '-t', `${base}/+`, '-E']);
    assert.equal(await first.exited, 0);
    await publishOnce(port, t, ['-V', version, '-q', '1', '-t', `${base}/a`, '-m', 'while away']);
    const again = run(t, SUB, ['-h', '127.0.0.1', '-p', String(port), '-V', version, '-c', '-i', id, '-q', '1', '-t', `${base}/+`, '-F', FORMAT, '-C', '1', '-W', '5']);
    assert.equal(await again.exited, 0, again.lines.join('\n'));
    assert.deepEqual(again.messages().map((m) => [m.topic, m.payload]), [[`${base}/a`, 'while away']]);
  });
}

test('MQTT 3.1 (-V 31): mosquitto_pub -> mosquitto_sub at QoS 2', async (t) => {
  const { port } = await startBroker(t);
  const topic = uid('mq/31/');
  const s = await subscriber(t, port, ['-V', '31', '-q', '2', '-t', topic, '-C', '1']);
  await publishOnce(port, t, ['-V', '31', '-q', '2', '-t', topic, '-m', 'old protocol']);
  assert.equal(await s.exited, 0, s.lines.join('\n'));
  assert.deepEqual(s.messages(), [{ topic, qos: 2, retain: false, payload: 'old protocol' }]);
});

for (const version of ['311', '5'] as const) {
  test(`shared subscription with two mosquitto_sub members, -V ${version}`, async (t) => {
    const { port } = await startBroker(t);
    const topic = uid('mq/share/');
    const a = await subscriber(t, port, ['-V', version, '-q', '1', '-t', `$share/grp/${topic}`]);
    const b = await subscriber(t, port, ['-V', version, '-q', '1', '-t', `$share/grp/${topic}`]);
    for (let i = 0; i < 6; i++) await publishOnce(port, t, ['-V', version, '-q', '1', '-t', topic, '-m', `s${i}`]);
    const deadline = Date.now() + 3000;
    while (a.messages().length + b.messages().length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const all = [...a.messages(), ...b.messages()].map((m) => m.payload).sort();
    assert.deepEqual(all, ['s0', 's1', 's2', 's3', 's4', 's5'], 'each message to exactly one member');
    assert.ok(a.messages().length > 0 && b.messages().length > 0, 'both members got messages');
  });
}

test('MQTT v5 user properties from mosquitto_pub reach mosquitto_sub', async (t) => {
  const { port } = await startBroker(t);
  const topic = uid('mq/props/');
  const s = run(t, SUB, ['-h', '127.0.0.1', '-p', String(port), '-V', '5', '-d', '-F', '%t|%P|%p', '-t', topic, '-C', '1', '-W', '5']);
  await s.waitFor(/received SUBACK/);
  await publishOnce(port, t, ['-V', '5', '-t', topic, '-m', 'p', '-D', 'publish', 'user-property', 'site', 'north', '-D', 'publish', 'content-type', 'text/plain']);
  assert.equal(await s.exited, 0, s.lines.join('\n'));
  const line = s.lines.find((l) => l.startsWith(`${topic}|`));
  assert.ok(line, s.lines.join('\n'));
  assert.match(line, /site:north/);
});
