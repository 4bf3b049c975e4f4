/** `telemq broker` keeps its SQLite database in ./data by default; a corrupt database stops it, untouched. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectOnce, startCli } from './broker-cli-process.js';

test('telemq broker with no storage flags creates ./data/telemq.db in its cwd; a retained message survives a restart', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'telemq-cli-data-'));
  t.after(() => rm(cwd, { recursive: true, force: true }));
  const args = ['--host', '127.0.0.1', '--port', '0', '--no-sys'];
  const first = startCli(t, args, cwd);
  const [url1] = await first.listening(1);
  const opened = await first.waitLog((e) => e.msg === 'storage opened', 0);
  assert.equal(opened.path, './data/telemq.db');
  assert.equal(opened.durability, 'batch');
  assert.ok((await stat(join(cwd, 'data', 'telemq.db'))).isFile());
  const pub = await connectOnce(t, url1!.replace('tcp:', 'mqtt:'), { protocolVersion: 5 });
  // QoS 1: the PUBACK comes after the commit, so the message is on disk when publishAsync resolves.
  await pub.publishAsync('plant/line1/setpoint', '42.5', { qos: 1, retain: true });
  await pub.endAsync();
  assert.equal(await first.stop(), 0);

  const second = startCli(t, args, cwd);
  const [url2] = await second.listening(1);
  assert.equal((await second.waitLog((e) => e.msg === 'storage opened', 0)).retained, 1);
  const sub = await connectOnce(t, url2!.replace('tcp:', 'mqtt:'), { protocolVersion: 4 });
  const got = new Promise<[string, string, boolean]>((resolve) =>
    sub.once('message', (topic, payload, packet) => resolve([topic, payload.toString(), packet.retain])),
  );
  await sub.subscribeAsync('plant/#', { qos: 1 });
  assert.deepEqual(await got, ['plant/line1/setpoint', '42.5', true]);
  await sub.endAsync();
  assert.equal(await second.stop(), 0);
});

test('telemq broker --memory writes no data folder; --db puts the database where it is told', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'telemq-cli-data-'));
  t.after(() => rm(cwd, { recursive: true, force: true }));
  const memory = startCli(t, ['--host', '127.0.0.1', '--port', '0', '--no-sys', '--memory'], cwd);
  await memory.listening(1);
  assert.equal(await memory.stop(), 0);
  await assert.rejects(stat(join(cwd, 'data')), { code: 'ENOENT' });
  const custom = startCli(t, ['--host', '127.0.0.1', '--port', '0', '--no-sys', '--db', 'state/broker.db', '--durability', 'sync'], cwd);
  await custom.listening(1);
  assert.equal((await custom.waitLog((e) => e.msg === 'storage opened', 0)).durability, 'sync');
  assert.equal(await custom.stop(), 0);
  assert.ok((await stat(join(cwd, 'state', 'broker.db'))).isFile());
});

test('telemq broker refuses a corrupt ./data/telemq.db with exit code 1 and a clear message, leaving the file untouched', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'telemq-cli-data-'));
  t.after(() => rm(cwd, { recursive: true, force: true }));
  await mkdir(join(cwd, 'data'));
  const garbage = Buffer.from('this is not a SQLite database, but it is somebody\'s file\n'.repeat(100));
  await writeFile(join(cwd, 'data', 'telemq.db'), garbage);
  const broker = startCli(t, ['--host', '127.0.0.1', '--port', '0', '--no-sys'], cwd);
  assert.equal(await broker.exited, 1);
  assert.match(broker.stderr(), /telemq\.db: not a SQLite database or corrupt .*left untouched/);
  assert.deepEqual(await readFile(join(cwd, 'data', 'telemq.db')), garbage);
  assert.ok(!broker.logs.some((e) => e.msg === 'listening'));
});
