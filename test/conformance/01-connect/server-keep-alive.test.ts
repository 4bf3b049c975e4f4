/** v5 Server Keep Alive: announced in CONNACK when the server lowers the client value, then enforced. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, prop } from '../../helpers/raw-client.js';
import { broker, rawAny, uid } from '../support.js';

const MARGIN_MS = 1000;

test('[MQTT-3.1.2-21] [MQTT-3.2.2-21] v5: Server Keep Alive lowers the client value and is then enforced', async (t) => {
  const { port } = await broker(t, { mqtt: { maximumKeepAlive: 1 } });
  const started = Date.now();
  const { client, connack } = await rawAny(t, port, { version: 5, clientId: uid(), keepAlive: 60 });
  assert.equal(connack.code, 0);
  assert.equal(prop(connack.properties, P.ServerKeepAlive), 1);
  await client.waitClose(1500 + MARGIN_MS);
  assert.ok(Date.now() - started >= 1000);
});

test('[MQTT-3.2.2-22] v5: without a maximum the server keeps the client Keep Alive (no Server Keep Alive sent)', async (t) => {
  const { port } = await broker(t);
  const { connack } = await rawAny(t, port, { version: 5, clientId: uid(), keepAlive: 30 });
  assert.equal(connack.code, 0);
  const ska = prop(connack.properties, P.ServerKeepAlive);
  assert.ok(ska === undefined || ska === 30, `Server Keep Alive ${String(ska)} differs from the requested 30`);
});
