/**
 * The config keys that wire listeners, auth and persistence: validation of each (good value, wrong type, unknown
 * key), and createBroker() honouring them in-process.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ConfigError, createBroker, resolveConfig, type BrokerConfig, type DeepPartial } from '../../src/broker/index.js';
import { hashPassword } from '../../src/broker/auth/password-file.js';
import { silentLogger, type Logger } from '../../src/shared/logger.js';

const fast = { algorithm: 'scrypt', ln: 10, r: 8, p: 1 } as const;

function problemsOf(input: unknown): string[] {
  try {
    resolveConfig(input);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-config-it-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function connectOnce(t: TestContext, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  t.after(() => client.endAsync(true));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** The SUBACK reason codes (MQTT.js rejects a SUBACK holding a failure, with the packet attached). */
async function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted === undefined) throw err;
    return granted;
  }
}

const tls = { type: 'tls', host: '127.0.0.1', port: 8883, certFile: 's.crt', keyFile: 's.key' };
const wss = { type: 'wss', host: '127.0.0.1', port: 8443, certFile: 's.crt', keyFile: 's.key' };

test('listeners: tcp, tls, ws and wss entries validate; optional keys stay absent when not given', () => {
  const c = resolveConfig({
    listeners: [
      { type: 'tcp', host: '127.0.0.1', port: 1883, maxConnections: 100, allowAnonymous: false },
      { ...tls, caFile: 'ca.crt', requireClientCertificate: true, identityFrom: 'san-dns', minVersion: 'TLSv1.3', handshakeTimeout: 5000 },
      { type: 'ws', host: '::1', port: 8080, paths: ['/mqtt'], allowedOrigins: ['https://console.example'], maxPayload: 65536 },
      wss,
    ],
  });
  assert.equal(c.listeners.length, 4);
  assert.deepEqual(c.listeners[3], wss);
  assert.deepEqual(resolveConfig({ listeners: [tls] }).listeners, [tls]);
});

test('listeners: wrong types, unknown keys, missing files and impossible TLS combinations are errors', () => {
  const cases: Array<[unknown, string]> = [
    [{ type: 'quic', host: 'h', port: 1 }, 'listeners[0].type: expected one of "tcp", "tls", "ws", "wss"'],
    [{ host: 'h', port: 1 }, 'listeners[0].type: required'],
    [{ type: 'tcp', host: 'h', port: 1, maxConnections: -1 }, 'listeners[0].maxConnections: expected an integer'],
    [{ type: 'tcp', host: 'h', port: 1, allowAnonymous: 'yes' }, 'listeners[0].allowAnonymous: expected true or false'],
    [{ type: 'tcp', host: 'h', port: 1, certFile: 'x' }, 'listeners[0].certFile: unknown key'],
    [{ type: 'tls', host: 'h', port: 1, keyFile: 'k' }, 'listeners[0].certFile: required'],
    [{ ...tls, identityFrom: 'ou' }, 'listeners[0].identityFrom: expected one of'],
    [{ ...tls, minVersion: 'TLSv1.1' }, 'listeners[0].minVersion: expected one of'],
    [{ ...tls, requireClientCertificate: 'yes' }, 'listeners[0].requireClientCertificate: expected true or false'],
    [{ ...tls, paths: ['/mqtt'] }, 'listeners[0].paths: unknown key'],
    [{ ...tls, tls: { cert: 'x' } }, 'listeners[0].tls: unknown key'],
    [{ ...tls, requireClientCertificate: true }, 'listeners[0]: requireClientCertificate needs caFile'],
    [{ ...tls, caFile: 'ca', identityFrom: 'cn' }, 'listeners[0]: identityFrom needs requireClientCertificate'],
    [{ type: 'ws', host: 'h', port: 1, paths: ['mqtt'] }, 'listeners[0].paths[0]: expected a path starting with /'],
    [{ type: 'ws', host: 'h', port: 1, paths: [] }, 'listeners[0].paths: expected a list of at least 1'],
    [{ type: 'ws', host: 'h', port: 1, allowedOrigins: 'https://x' }, 'listeners[0].allowedOrigins: expected a list'],
    [{ type: 'ws', host: 'h', port: 1, maxPayload: 10 }, 'listeners[0].maxPayload: expected an integer from 1024'],
    [{ type: 'ws', host: 'h', port: 1, certFile: 'c' }, 'listeners[0].certFile: unknown key'],
    [{ ...wss, handshakeTimeout: 1000 }, 'listeners[0].handshakeTimeout: unknown key'],
    ['tcp://h:1', 'listeners[0]: expected a mapping'],
  ];
  for (const [entry, expected] of cases) {
    const problems = problemsOf({ listeners: [entry] });
    assert.ok(problems.some((p) => p.startsWith(expected)), `${JSON.stringify(entry)} -> ${JSON.stringify(problems)}`);
  }
});

test('auth: files, allowAnonymous (true, false, loopback) and failureDelay validate; bad types and unknown keys do not', () => {
  assert.deepEqual(resolveConfig({}).auth, { allowAnonymous: 'loopback', failureDelay: 500 });
  assert.deepEqual(resolveConfig({ auth: { passwordFile: 'passwd', aclFile: 'acl', allowAnonymous: false, failureDelay: 0 } }).auth, {
    passwordFile: 'passwd',
    aclFile: 'acl',
    allowAnonymous: false,
    failureDelay: 0,
  });
  assert.equal(resolveConfig({ auth: { allowAnonymous: true } }).auth.allowAnonymous, true);
  const cases: Array<[unknown, string]> = [
    [{ passwordFile: 7 }, 'auth.passwordFile: expected a non-empty string'],
    [{ aclFile: '' }, 'auth.aclFile: expected a non-empty string'],
    [{ allowAnonymous: 'always' }, 'auth.allowAnonymous: expected one of true, false, "loopback"'],
    [{ failureDelay: 60_001 }, 'auth.failureDelay: expected an integer from 0 to 60000'],
    [{ passwdFile: 'x' }, 'auth.passwdFile: unknown key'],
    ['passwd', 'auth: expected a mapping'],
  ];
  for (const [auth, expected] of cases) {
    const problems = problemsOf({ auth });
    assert.ok(problems.some((p) => p.startsWith(expected)), `${JSON.stringify(auth)} -> ${JSON.stringify(problems)}`);
  }
});

test('persistence: memory by default; sqlite gets path ./data/telemq.db and durability batch; bad values are errors', () => {
  assert.deepEqual(resolveConfig({}).persistence, { type: 'memory' });
  assert.deepEqual(resolveConfig({ persistence: { type: 'sqlite' } }).persistence, { type: 'sqlite', path: './data/telemq.db', durability: 'batch' });
  assert.deepEqual(
    resolveConfig({ persistence: { type: 'sqlite', path: '/var/lib/telemq/t.db', durability: 'sync', batchIntervalMs: 5, cleanupIntervalMs: 30_000 } })
      .persistence,
    { type: 'sqlite', path: '/var/lib/telemq/t.db', durability: 'sync', batchIntervalMs: 5, cleanupIntervalMs: 30_000 },
  );
  const cases: Array<[unknown, string]> = [
    [{ type: 'redis' }, 'persistence.type: expected one of "memory", "sqlite"'],
    [{ durability: 'sync' }, 'persistence.type: required'],
    [{ type: 'sqlite', durability: 'always' }, 'persistence.durability: expected one of "none", "batch", "sync"'],
    [{ type: 'sqlite', path: 3 }, 'persistence.path: expected a non-empty string'],
    [{ type: 'sqlite', batchIntervalMs: 'soon' }, 'persistence.batchIntervalMs: expected an integer'],
    [{ type: 'sqlite', cleanupIntervalMs: 10 }, 'persistence.cleanupIntervalMs: expected an integer from 1000'],
    [{ type: 'memory', path: 'x.db' }, 'persistence.path: unknown key'],
    [{ type: 'sqlite', file: 'x.db' }, 'persistence.file: unknown key'],
  ];
  for (const [persistence, expected] of cases) {
    const problems = problemsOf({ persistence });
    assert.ok(problems.some((p) => p.startsWith(expected)), `${JSON.stringify(persistence)} -> ${JSON.stringify(problems)}`);
  }
});

test('createBroker with auth: password file checked, anonymous refused where allowAnonymous is false, ACL applied, reload()', async (t) => {
  const dir = await tempDir(t);
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await writeFile(passwordFile, `alice:${await hashPassword('alice-pw', fast)}\n`);
  await writeFile(aclFile, 'user alice\ntopic readwrite a/#\n');
  const config: DeepPartial<BrokerConfig> = {
    listeners: [
      { type: 'tcp', host: '127.0.0.1', port: 0, allowAnonymous: false },
      { type: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    auth: { passwordFile, aclFile, failureDelay: 0 },
    sys: { enabled: false },
  };
  const broker = createBroker(config);
  await broker.start();
  t.after(() => broker.close(200));
  const [closed, open] = broker.addresses().map((a) => `mqtt://127.0.0.1:${a.port}`);
  // 0x87 Not Authorized for a client without a username on a listener that does not admit anonymous clients.
  await assert.rejects(connectOnce(t, closed!, { protocolVersion: 5 }), /Not authorized/i);
  await assert.rejects(connectOnce(t, closed!, { protocolVersion: 5, username: 'alice', password: 'wrong' }), /Bad User Name or Password/i);
  // SUBACK 0x87 Not Authorized for a filter the ACL does not grant.
  const alice = await connectOnce(t, closed!, { protocolVersion: 5, username: 'alice', password: 'alice-pw' });
  assert.deepEqual(await subackCodes(alice, ['a/1', 'b/1']), [0, 0x87]);
  // Loopback listener without its own setting: anonymous admitted (auth.allowAnonymous: loopback), ACL still applies.
  const anon = await connectOnce(t, open!, { protocolVersion: 5 });
  assert.deepEqual(await subackCodes(anon, ['a/1']), [0x87]);
  await writeFile(aclFile, 'user alice\ntopic readwrite a/#\nanonymous\ntopic read a/#\n');
  assert.deepEqual(await broker.reload(), [{ target: 'auth', ok: true }]);
  assert.deepEqual(await subackCodes(anon, ['a/2']), [0]);
  assert.ok(alice.connected && anon.connected);
  await alice.endAsync();
  await anon.endAsync();
});

test('createBroker: auth.allowAnonymous false applies to every listener; a missing password file fails start()', async (t) => {
  const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], auth: { allowAnonymous: false, failureDelay: 0 }, sys: { enabled: false } });
  await broker.start();
  t.after(() => broker.close(200));
  await assert.rejects(connectOnce(t, `mqtt://127.0.0.1:${broker.addresses()[0]!.port}`, { protocolVersion: 4 }), /Not authorized/i);
  const dir = await tempDir(t);
  const missing = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], auth: { passwordFile: join(dir, 'nope') } });
  await assert.rejects(missing.start(), { code: 'ENOENT' });
  await missing.close();
});

test('createBroker with persistence sqlite: the database is opened in start(), retained messages survive a restart', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'nested', 'telemq.db');
  const config: DeepPartial<BrokerConfig> = {
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    persistence: { type: 'sqlite', path, durability: 'batch' },
    sys: { enabled: false },
  };
  const first = createBroker(config);
  assert.throws(() => first.core, /call start\(\) first/);
  await first.start();
  assert.ok((await stat(path)).isFile());
  first.publish({ topic: 'kept/1', payload: 'across restarts', retain: true, qos: 1 });
  await first.close(200);
  const second = createBroker(config);
  await second.start();
  t.after(() => second.close(200));
  assert.equal(second.core.retained.get('kept/1')?.payload.toString(), 'across restarts');
});

test('createBroker: tcp maxConnections closes connections beyond the limit at once', async (t) => {
  const events = new EventEmitter();
  const logger: Logger = { ...silentLogger, info: (_obj, msg) => events.emit('log', msg), child: () => logger };
  const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0, maxConnections: 1 }], sys: { enabled: false } }, { logger });
  await broker.start();
  t.after(() => broker.close(200));
  const url = `mqtt://127.0.0.1:${broker.addresses()[0]!.port}`;
  const first = await connectOnce(t, url, { protocolVersion: 5 });
  const extra = netConnect(broker.addresses()[0]!.port, '127.0.0.1');
  await once(extra, 'close');
  assert.ok(first.connected);
  // The slot is free again once the first client left (the count drops before the disconnect is logged).
  const left = new Promise<void>((resolve) => events.on('log', (msg) => msg === 'client disconnected' && resolve()));
  await first.endAsync();
  await left;
  const second = await connectOnce(t, url, { protocolVersion: 5 });
  assert.ok(second.connected);
});

test('Broker.publish forwards only PUBLISH properties: a property PUBLISH cannot carry does not cost v5 subscribers their connection', async (t) => {
  const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], sys: { enabled: false } });
  await broker.start();
  t.after(() => broker.close(200));
  const sub = await connectOnce(t, `mqtt://127.0.0.1:${broker.addresses()[0]!.port}`, { protocolVersion: 5 });
  await sub.subscribeAsync('server/#');
  type Received = [string, Buffer, { properties?: { userProperties?: unknown; reasonString?: unknown } }];
  const got = new Promise<Received>((resolve, reject) => {
    sub.once('message', (...args) => resolve(args as unknown as Received));
    sub.once('close', () => reject(new Error('the subscriber lost its connection')));
  });
  broker.publish({ topic: 'server/1', payload: 'hi', properties: { reasonString: 'not a PUBLISH property', userProperties: [['k', 'v']] } });
  const [topic, payload, packet] = await got;
  assert.equal(topic, 'server/1');
  assert.equal(payload.toString(), 'hi');
  assert.deepEqual({ ...(packet.properties?.userProperties as object) }, { k: 'v' });
  assert.equal(packet.properties?.reasonString, undefined);
  assert.equal(sub.connected, true);
});
