import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { createBroker } from '../../src/broker/index.js';
import { createCa, createClientCert, createServerCert } from '../../src/broker/tls/certs.js';
import { WsListener, selectSubprotocol, type WsListenerOptions } from '../../src/broker/transport/ws.js';

async function startWsBroker(t: TestContext, extra: Partial<WsListenerOptions> = {}) {
  const listener = new WsListener({ host: '127.0.0.1', port: 0, ...extra });
  const broker = createBroker({ listeners: [], sys: { enabled: false } }, { listeners: [listener] });
  await broker.start();
  t.after(() => broker.close(200));
  return { broker, listener, port: listener.address().port };
}

function connectOnce(t: TestContext, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  t.after(() => client.end(true));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

function nextMessage(client: MqttClient): Promise<[string, Buffer]> {
  return new Promise((resolve) => client.once('message', (topic, payload) => resolve([topic, payload])));
}

/** Opens a raw WebSocket; resolves with the socket when open, or with the HTTP status of a refused upgrade. */
function rawWs(t: TestContext, url: string, protocols: string[], headers: Record<string, string> = {}): Promise<WebSocket | number> {
  const ws = new WebSocket(url, protocols, { headers });
  t.after(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', reject);
  });
}

const CONNECT_311 = Buffer.from('100d00044d5154540402003c000178', 'hex');

test('ws: MQTT.js connects to ws://host:port/mqtt (v5) and ws://host:port/ (v3.1.1) and round-trips a message', async (t) => {
  const { port } = await startWsBroker(t);
  const sub = await connectOnce(t, `ws://127.0.0.1:${port}/mqtt`, { protocolVersion: 5 });
  await sub.subscribeAsync('w/1', { qos: 1 });
  const pub = await connectOnce(t, `ws://127.0.0.1:${port}`, { protocolVersion: 4 });
  const got = nextMessage(sub);
  await pub.publishAsync('w/1', 'over websocket', { qos: 1 });
  const [topic, payload] = await got;
  assert.equal(topic, 'w/1');
  assert.equal(payload.toString(), 'over websocket');
});

test('ws: the server selects the subprotocol "mqtt" [MQTT-6.0.0-4]; a handshake without it is refused with 400 [MQTT-6.0.0-3]', async (t) => {
  const { port } = await startWsBroker(t);
  const ok = await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['foo', 'mqtt']);
  assert.ok(ok instanceof WebSocket);
  assert.equal(ok.protocol, 'mqtt');
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['chat']), 400);
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, []), 400);
  const legacy = await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqttv3.1']);
  assert.ok(legacy instanceof WebSocket);
  assert.equal(legacy.protocol, 'mqttv3.1');
});

test('ws: an unknown path gets 404; a plain HTTP request gets 426', async (t) => {
  const { port } = await startWsBroker(t, { paths: ['/mqtt'] });
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/other`, ['mqtt']), 404);
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/`, ['mqtt']), 404);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mqtt' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 426);
});

test('ws: a text frame closes the connection [MQTT-6.0.0-1]; CONNECT split across binary frames works [MQTT-6.0.0-2]', async (t) => {
  const { port } = await startWsBroker(t);
  const split = (await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'])) as WebSocket;
  const connack = new Promise<Buffer>((resolve) => split.once('message', (d: Buffer) => resolve(d)));
  split.send(CONNECT_311.subarray(0, 5), { binary: true });
  split.send(CONNECT_311.subarray(5), { binary: true });
  assert.deepEqual(await connack, Buffer.from('20020000', 'hex'));

  const text = (await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'])) as WebSocket;
  const closed = once(text, 'close');
  text.send(CONNECT_311.toString('latin1'), { binary: false });
  const [code] = (await closed) as [number];
  assert.equal(code, 1003);
});

test('ws: allowedOrigins refuses browser pages from other origins with 403', async (t) => {
  const { port } = await startWsBroker(t, { allowedOrigins: ['https://console.example'] });
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'], { Origin: 'https://evil.example' }), 403);
  assert.ok((await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'], { Origin: 'https://console.example' })) instanceof WebSocket);
  assert.ok((await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'])) instanceof WebSocket, 'no Origin: not a browser');
});

test('ws: maxConnections answers 503 beyond the limit and frees the slot when a client leaves', async (t) => {
  const { port, listener } = await startWsBroker(t, { maxConnections: 1 });
  const first = (await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'])) as WebSocket;
  assert.equal(await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt']), 503);
  first.close();
  await once(first, 'close');
  while (listener.connections > 0) await new Promise((r) => setImmediate(r));
  assert.ok((await rawWs(t, `ws://127.0.0.1:${port}/mqtt`, ['mqtt'])) instanceof WebSocket);
});

test('wss with client certificates: MQTT.js connects with the CA\'s client cert and is refused without one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-wss-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const server = await createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] });
  const client = await createClientCert(ca, { name: 'browser-1' });
  await writeFile(join(dir, 'ca.crt'), ca.cert);
  await writeFile(join(dir, 'server.crt'), server.cert);
  await writeFile(join(dir, 'server.key'), server.key);
  const { port, listener } = await startWsBroker(t, {
    tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt'), requireClientCertificate: true, identityFrom: 'cn' },
  });
  assert.match(listener.name, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const url = `wss://127.0.0.1:${port}/mqtt`;
  const c = await connectOnce(t, url, { ca: ca.cert, cert: client.cert, key: client.key, servername: 'localhost', protocolVersion: 5 });
  await c.subscribeAsync('s/1');
  const got = nextMessage(c);
  await c.publishAsync('s/1', 'wss ok');
  assert.equal((await got)[1].toString(), 'wss ok');
  await assert.rejects(connectOnce(t, url, { ca: ca.cert, servername: 'localhost' }));
  await listener.reload();
  const again = await connectOnce(t, url, { ca: ca.cert, cert: client.cert, key: client.key, servername: 'localhost' });
  assert.equal(again.connected, true);
});

test('selectSubprotocol prefers mqtt, accepts the legacy mqttv3.1, refuses anything else', () => {
  assert.equal(selectSubprotocol('mqtt'), 'mqtt');
  assert.equal(selectSubprotocol('mqttv3.1, mqtt'), 'mqtt');
  assert.equal(selectSubprotocol('mqttv3.1'), 'mqttv3.1');
  assert.equal(selectSubprotocol('MQTT'), undefined);
  assert.equal(selectSubprotocol('chat, superchat'), undefined);
  assert.equal(selectSubprotocol(undefined), undefined);
});

test('createSecureListener builds tls, ws and wss listeners from config entries', async (t) => {
  const { createSecureListener } = await import('../../src/broker/transport/ws.js');
  const { TlsListener } = await import('../../src/broker/transport/tls.js');
  const dir = await mkdtemp(join(tmpdir(), 'telemq-wsc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createCa();
  const server = await createServerCert(ca, { hosts: ['localhost'], ips: ['127.0.0.1'] });
  await writeFile(join(dir, 'server.crt'), server.cert);
  await writeFile(join(dir, 'server.key'), server.key);
  const files = { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
  const tls = createSecureListener({ type: 'tls', host: '127.0.0.1', port: 0, ...files, maxConnections: 5 });
  const ws = createSecureListener({ type: 'ws', host: '127.0.0.1', port: 0, paths: ['/x'] });
  const wss = createSecureListener({ type: 'wss', host: '127.0.0.1', port: 0, ...files });
  assert.ok(tls instanceof TlsListener);
  assert.ok(ws instanceof WsListener && wss instanceof WsListener);
  assert.throws(() => createSecureListener({ type: 'wss', host: '127.0.0.1', port: 0, ...files, identityFrom: 'cn' }), /requireClientCertificate/);
  const broker = createBroker({ listeners: [], sys: { enabled: false } }, { listeners: [tls, ws, wss] });
  await broker.start();
  t.after(() => broker.close(200));
  const names = broker.addresses().map((a) => a.name);
  assert.match(names[0]!, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  assert.match(names[1]!, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.match(names[2]!, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const opts = { ca: ca.cert, servername: 'localhost' };
  for (const url of [`mqtts://127.0.0.1:${tls.address().port}`, `ws://127.0.0.1:${ws.address().port}/x`, `wss://127.0.0.1:${wss.address().port}/mqtt`]) {
    const c = await connectOnce(t, url, opts);
    assert.equal(c.connected, true, url);
  }
});
