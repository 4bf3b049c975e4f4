import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBroker } from '../../src/broker/index.js';
import { FileAuth, listenerHost, loopbackListenersAllowAnonymous } from '../../src/broker/auth/file-auth.js';
import { hashPassword } from '../../src/broker/auth/password-file.js';

const fast = { algorithm: 'scrypt', ln: 10, r: 8, p: 1 } as const;

const ACL = `
user alice
topic readwrite a/#
topic deny a/secret
topic read $SYS/broker/#
user bob
topic readwrite b/#
topic read a/public
anonymous
topic read public/#
`;

async function start(t: TestContext, opts: { allowAnonymous?: (listener: string) => boolean; failureDelay?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-sec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await writeFile(passwordFile, `alice:${await hashPassword('alice-pw', fast)}\nbob:${await hashPassword('bob-pw', fast)}\n`);
  await writeFile(aclFile, ACL);
  const auth = await FileAuth.create({
    passwordFile,
    aclFile,
    allowAnonymous: opts.allowAnonymous ?? loopbackListenersAllowAnonymous,
    failureDelay: opts.failureDelay ?? 0,
  });
  const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], sys: { enabled: false } }, { authenticator: auth, authorizer: auth });
  await broker.start();
  // Clients first: the TCP listener's close waits for open connections to end.
  t.after(async () => {
    for (const c of clientsOf(t)) c.end(true);
    await broker.close(200);
  });
  const address = broker.addresses()[0]!;
  return { broker, auth, url: `mqtt://127.0.0.1:${address.port}`, name: address.name, passwordFile, aclFile };
}

const clients = new WeakMap<TestContext, MqttClient[]>();
function clientsOf(t: TestContext): MqttClient[] {
  let list = clients.get(t);
  if (list === undefined) clients.set(t, (list = []));
  return list;
}

/** Connects once (no reconnect); the client is ended before the broker closes. */
function connectOnce(t: TestContext, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  clientsOf(t).push(client);
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

const user = (name: string, password: string, v: 4 | 5): IClientOptions => ({ username: name, password, protocolVersion: v });

/** Records every message the client receives as `topic=payload`. */
function collect(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (topic, payload) => got.push(`${topic}=${payload.toString()}`));
  return got;
}

test('the listener name of a 127.0.0.1 listener counts as loopback', async (t) => {
  const { name } = await start(t);
  assert.equal(listenerHost(name), '127.0.0.1');
  assert.equal(loopbackListenersAllowAnonymous(name), true);
  assert.equal(loopbackListenersAllowAnonymous('tcp://0.0.0.0:1883'), false);
  assert.equal(loopbackListenersAllowAnonymous('mqtts://[::1]:8883'), true);
  assert.equal(loopbackListenersAllowAnonymous('ws://[::]:8080'), false);
});

test('CONNACK for bad credentials: v3.1.1 return code 4, v5 reason code 0x86', async (t) => {
  const { url } = await start(t);
  await assert.rejects(connectOnce(t, url, user('alice', 'wrong', 4)), (e: { code?: number }) => e.code === 4);
  await assert.rejects(connectOnce(t, url, user('mallory', 'alice-pw', 5)), (e: { code?: number }) => e.code === 0x86);
  const ok = await connectOnce(t, url, user('alice', 'alice-pw', 5));
  assert.equal(ok.connected, true);
});

test('CONNACK for anonymous clients where not allowed: v3.1.1 return code 5, v5 reason code 0x87; loopback admits them', async (t) => {
  const closed = await start(t, { allowAnonymous: () => false });
  await assert.rejects(connectOnce(t, closed.url, { protocolVersion: 4 }), (e: { code?: number }) => e.code === 5);
  await assert.rejects(connectOnce(t, closed.url, { protocolVersion: 5 }), (e: { code?: number }) => e.code === 0x87);
  const open = await start(t);
  const anon = await connectOnce(t, open.url, { protocolVersion: 5 });
  await anon.subscribeAsync('public/#');
  await assert.rejects(anon.subscribeAsync('a/#'), /Not authorized/);
});

test('failed logins are answered only after the configured delay', async (t) => {
  const { url } = await start(t, { failureDelay: 300 });
  const started = performance.now();
  await assert.rejects(connectOnce(t, url, user('alice', 'nope', 5)));
  assert.ok(performance.now() - started >= 290);
});

test('SUBSCRIBE: refused filters get SUBACK 0x80 (v3.1.1) / 0x87 (v5); $SYS only with an explicit rule', async (t) => {
  const { url } = await start(t);
  const v5 = await connectOnce(t, url, user('alice', 'alice-pw', 5));
  const granted = await v5.subscribeAsync({ 'a/x/#': { qos: 1 }, '$SYS/broker/#': { qos: 0 } });
  assert.deepEqual(granted.map((g) => g.qos), [1, 0]);
  // 'a/#' could match the denied a/secret, '#' is not granted, '$SYS/#' reaches beyond $SYS/broker.
  for (const f of ['a/#', '#', 'b/1', '$SYS/#']) await assert.rejects(v5.subscribeAsync(f), /Not authorized/, f);
  const v3 = await connectOnce(t, url, user('bob', 'bob-pw', 4));
  // MQTT.js rejects a SUBACK holding a failure code, with the packet attached.
  await assert.rejects(v3.subscribeAsync({ 'b/#': { qos: 1 }, 'a/#': { qos: 1 } }), (e: { packet?: { granted?: number[] } }) => {
    assert.deepEqual(e.packet?.granted, [1, 0x80]);
    return true;
  });
});

test('PUBLISH: a forbidden topic gets PUBACK 0x87 in v5, is dropped in v3.1.1, and never reaches subscribers', async (t) => {
  const { url } = await start(t);
  const watcher = await connectOnce(t, url, user('bob', 'bob-pw', 5));
  await watcher.subscribeAsync('b/#', { qos: 1 });
  const seen = collect(watcher);
  const alice5 = await connectOnce(t, url, user('alice', 'alice-pw', 5));
  await assert.rejects(alice5.publishAsync('b/1', 'from alice v5', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
  const alice3 = await connectOnce(t, url, user('alice', 'alice-pw', 4));
  await alice3.publishAsync('b/2', 'from alice v3', { qos: 1 });
  await alice3.publishAsync('a/secret', 'denied write', { qos: 1 });
  await watcher.publishAsync('b/ok', 'bob himself', { qos: 1 });
  while (!seen.includes('b/ok=bob himself')) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, ['b/ok=bob himself']);
  assert.equal(alice3.connected, true, 'v3 client stays connected');
});

test('retained messages: delivered on subscribe only where the subscription is granted', async (t) => {
  const { url } = await start(t);
  const alice = await connectOnce(t, url, user('alice', 'alice-pw', 5));
  await alice.publishAsync('a/public', 'retained public', { qos: 1, retain: true });
  await alice.publishAsync('a/x/1', 'retained x', { qos: 1, retain: true });
  const bob = await connectOnce(t, url, user('bob', 'bob-pw', 5));
  const got = collect(bob);
  await bob.subscribeAsync('a/public', { qos: 1 });
  await assert.rejects(bob.subscribeAsync('a/x/#'), /Not authorized/);
  await assert.rejects(bob.subscribeAsync('a/+'), /Not authorized/);
  while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
  await bob.publishAsync('b/flush', 'f', { qos: 1 });
  assert.deepEqual(got, ['a/public=retained public']);
});

test('reload applies a changed ACL to connected clients without dropping them', async (t) => {
  const { url, auth, aclFile } = await start(t);
  const bob = await connectOnce(t, url, user('bob', 'bob-pw', 5));
  await assert.rejects(bob.publishAsync('c/1', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
  await writeFile(aclFile, ACL + 'user bob\ntopic write c/#\n');
  assert.deepEqual(await auth.reload(), { ok: true });
  await bob.publishAsync('c/1', 'x', { qos: 1 });
  assert.equal(bob.connected, true);
});

test('will messages: published only to a topic the client may write', async (t) => {
  const { url, broker } = await start(t);
  const alice = await connectOnce(t, url, user('alice', 'alice-pw', 5));
  await alice.subscribeAsync('a/will/+', { qos: 1 });
  const bob = await connectOnce(t, url, user('bob', 'bob-pw', 5));
  await bob.subscribeAsync('b/#', { qos: 1 });
  const bobGot = collect(bob);
  const die = async (topic: string) => {
    const dying = await connectOnce(t, url, { ...user('alice', 'alice-pw', 5), will: { topic, payload: Buffer.from(topic), qos: 1, retain: false } });
    dying.stream.destroy();
  };
  // Allowed: alice may write a/will/ok.
  const arrived = new Promise<string>((resolve) => alice.once('message', (topic) => resolve(topic)));
  await die('a/will/ok');
  assert.equal(await arrived, 'a/will/ok');
  // Forbidden: alice may not write b/will. Once the broker has dropped the connection (and so handled its will),
  // a marker bob publishes comes back after anything the broker sent him before.
  await die('b/will');
  while (broker.connectionCount > 2) await new Promise((r) => setImmediate(r));
  const marker = new Promise<void>((resolve) => bob.on('message', (topic) => topic === 'b/marker' && resolve()));
  await bob.publishAsync('b/marker', 'm', { qos: 1 });
  await marker;
  assert.deepEqual(bobGot, ['b/marker=m']);
});
