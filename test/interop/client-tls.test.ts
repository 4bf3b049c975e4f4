import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, type Message, type MqttClient } from '../../src/client/index.js';
import { freePort, startMosquitto } from '../helpers/mosquitto.js';
import { makeCerts, tlsListener } from './client-certs.js';

function roundTrip(client: MqttClient, topic: string): Promise<Message> {
  const got = new Promise<Message>((resolve) => client.once('message', resolve));
  return client.subscribe(topic, { qos: 1 }).then(() => client.publish(topic, 'over tls', { qos: 1 })).then(() => got);
}

test('mqtts:// and wss:// with a CA, a client certificate and server name check; ws:// from Node', async (t) => {
  const certs = await makeCerts(t);
  const [tlsPort, wssPort] = [await freePort(), await freePort()];
  const broker = await startMosquitto(t, { websockets: true, extraConfig: [...tlsListener(tlsPort, certs), ...tlsListener(wssPort, certs, true)] });
  const tls = { ca: await readFile(certs.ca), cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };

  const secure = await connect(`mqtts://localhost:${tlsPort}`, { reconnect: false, tls });
  t.after(() => secure.end());
  assert.equal((await roundTrip(secure, 'tls/a')).payload.toString(), 'over tls');

  // By IP: the certificate names 127.0.0.1 as well; servername picks the name to check explicitly.
  const byIp = await connect(`mqtts://127.0.0.1:${tlsPort}`, { reconnect: false, tls: { ...tls, servername: 'localhost' } });
  t.after(() => byIp.end());
  assert.equal((await roundTrip(byIp, 'tls/b')).topic, 'tls/b');

  const wss = await connect(`wss://localhost:${wssPort}/mqtt`, { reconnect: false, tls });
  t.after(() => wss.end());
  assert.equal((await roundTrip(wss, 'tls/c')).topic, 'tls/c');

  assert.ok(broker.wsUrl);
  const ws = await connect(`${broker.wsUrl}/mqtt`, { reconnect: false, protocolVersion: 4 });
  t.after(() => ws.end());
  assert.equal((await roundTrip(ws, 'ws/d')).topic, 'ws/d');
});

test('TLS failures reject connect(): untrusted server, wrong name, missing client certificate', async (t) => {
  const certs = await makeCerts(t);
  const tlsPort = await freePort();
  await startMosquitto(t, { extraConfig: tlsListener(tlsPort, certs) });
  const client = { cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };
  const ca = await readFile(certs.ca);

  await assert.rejects(connect(`mqtts://localhost:${tlsPort}`, { reconnect: false, tls: client }), (err: { code?: string }) =>
    ['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'].includes(err.code ?? ''),
  );
  await assert.rejects(connect(`mqtts://localhost:${tlsPort}`, { reconnect: false, tls: { ...client, ca, servername: 'broker.example' } }), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
  });
  // The broker requires a client certificate: the handshake (or the first read) fails.
  await assert.rejects(connect(`mqtts://localhost:${tlsPort}`, { reconnect: false, tls: { ca }, connectTimeout: 3000 }));
  // rejectUnauthorized: false skips the server check (tests only).
  const insecure = await connect(`mqtts://localhost:${tlsPort}`, { reconnect: false, tls: { ...client, rejectUnauthorized: false } });
  await insecure.end();
});
