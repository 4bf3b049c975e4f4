/** `telemq broker` serving mqtt, mqtts, mTLS, ws and wss listeners from a config file or from flags. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { createCa, createClientCert, createServerCert } from '../../src/broker/tls/certs.js';
import { connectOnce, startCli } from './broker-cli-process.js';

interface Pki {
  dir: string;
  ca: string;
  client: { cert: string; key: string };
  file: (name: string) => string;
}

async function pki(t: TestContext): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-cli-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const [server, client] = await Promise.all([
    createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] }),
    createClientCert(ca, { name: 'meter-17' }),
  ]);
  await Promise.all([
    writeFile(join(dir, 'ca.crt'), ca.cert),
    writeFile(join(dir, 'server.crt'), server.cert),
    writeFile(join(dir, 'server.key'), server.key, { mode: 0o600 }),
  ]);
  return { dir, ca: ca.cert, client, file: (name) => join(dir, name) };
}

/** Subscribes, publishes to itself and returns the payload received: a full round trip over `client`. */
async function roundTrip(client: MqttClient, topic: string): Promise<string> {
  await client.subscribeAsync(topic, { qos: 1 });
  const got = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())));
  await client.publishAsync(topic, `via ${topic}`, { qos: 1 });
  return got;
}

test('telemq broker --config: mqtt, mqtts, mTLS, ws and wss listeners on port 0, each reached by MQTT.js', async (t) => {
  const p = await pki(t);
  const tlsFiles = `certFile: ${p.file('server.crt')}, keyFile: ${p.file('server.key')}`;
  const config = p.file('telemq.yaml');
  await writeFile(
    config,
    [
      'listeners:',
      '  - { type: tcp, host: 127.0.0.1, port: 0 }',
      `  - { type: tls, host: 127.0.0.1, port: 0, ${tlsFiles} }`,
      `  - { type: tls, host: 127.0.0.1, port: 0, ${tlsFiles}, caFile: ${p.file('ca.crt')}, requireClientCertificate: true, identityFrom: cn }`,
      '  - { type: ws, host: 127.0.0.1, port: 0 }',
      `  - { type: wss, host: 127.0.0.1, port: 0, ${tlsFiles}, paths: [/mqtt] }`,
      'persistence: { type: memory }',
      'sys: { enabled: false }',
      '',
    ].join('\n'),
  );
  const broker = startCli(t, ['--config', config]);
  const urls = await broker.listening(5);
  const [plain, tls, mtls, ws, wss] = urls;
  assert.match(plain!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.match(tls!, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  assert.match(mtls!, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  assert.match(ws!, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.match(wss!, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const trust: IClientOptions = { ca: p.ca, servername: 'localhost' };
  const clients: Array<[string, IClientOptions]> = [
    [plain!.replace('tcp:', 'mqtt:'), { protocolVersion: 4 }],
    [tls!, { ...trust, protocolVersion: 5 }],
    // identityFrom: cn: the certificate's CN is the username.
    [mtls!, { ...trust, cert: p.client.cert, key: p.client.key, username: 'meter-17', protocolVersion: 5 }],
    [`${ws!}/mqtt`, { protocolVersion: 4 }],
    [`${wss!}/mqtt`, { ...trust, protocolVersion: 5 }],
  ];
  for (const [i, [url, opts]] of clients.entries()) {
    const c = await connectOnce(t, url, { clientId: `cli-listener-${i}`, ...opts });
    assert.equal(await roundTrip(c, `l/${i}`), `via l/${i}`, url);
  }
  // The mTLS listener refuses a client without a certificate in the handshake.
  await assert.rejects(connectOnce(t, mtls!, { ...trust, username: 'meter-17' }));
  assert.equal(await broker.stop(), 0);
});

test('telemq broker --tls-port/--mtls-port/--ws-port with --cert/--key/--cafile: no config file needed', async (t) => {
  const p = await pki(t);
  const broker = startCli(t, [
    ...['--host', '127.0.0.1', '--port', '0', '--tls-port', '0', '--mtls-port', '0', '--ws-port', '0'],
    ...['--cert', p.file('server.crt'), '--key', p.file('server.key'), '--cafile', p.file('ca.crt'), '--memory', '--no-sys'],
  ]);
  const urls = await broker.listening(4);
  assert.deepEqual(urls.map((u) => u.split(':')[0]), ['tcp', 'mqtts', 'mqtts', 'ws']);
  const trust: IClientOptions = { ca: p.ca, servername: 'localhost' };
  const tls = await connectOnce(t, urls[1]!, { ...trust, protocolVersion: 5 });
  assert.equal(await roundTrip(tls, 'f/tls'), 'via f/tls');
  const mtls = await connectOnce(t, urls[2]!, { ...trust, cert: p.client.cert, key: p.client.key, username: 'meter-17' });
  assert.equal(await roundTrip(mtls, 'f/mtls'), 'via f/mtls');
  // --mtls-port takes the username from the certificate CN: a client needs no username and no password.
  const bare = await connectOnce(t, urls[2]!, { ...trust, cert: p.client.cert, key: p.client.key, protocolVersion: 5 });
  assert.equal(await roundTrip(bare, 'f/mtls-bare'), 'via f/mtls-bare');
  // Without a client certificate the handshake fails.
  await assert.rejects(connectOnce(t, urls[2]!, trust));
  const ws = await connectOnce(t, `${urls[3]!}/mqtt`, {});
  assert.equal(await roundTrip(ws, 'f/ws'), 'via f/ws');
  assert.equal(await broker.stop(), 0);
});

test('telemq broker: a TLS flag without its files, or a config with an impossible TLS combination, exits 2', async (t) => {
  const noCert = startCli(t, ['--tls-port', '0', '--memory']);
  assert.equal(await noCert.exited, 2);
  assert.match(noCert.stderr(), /--tls-port, --mtls-port and --wss-port need --cert and --key/);
  const p = await pki(t);
  const config = p.file('bad.yaml');
  await writeFile(config, `listeners:\n  - { type: tls, host: 127.0.0.1, port: 0, certFile: a, keyFile: b, requireClientCertificate: true }\n`);
  const bad = startCli(t, ['--config', config, '--check']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr(), /listeners\[0\]: requireClientCertificate needs caFile/);
});
