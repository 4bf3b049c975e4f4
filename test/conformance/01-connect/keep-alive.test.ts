/** Keep Alive: the server closes a silent client after one and a half times the interval; v5 Server Keep Alive. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, pingreq, prop } from '../../helpers/raw-client.js';
import { broker, raw, rawAny, uid } from '../support.js';

// Margin for timer granularity and a loaded 2-core CI machine.
const MARGIN_MS = 700;

for (const [v, rule] of [
  [4, 'MQTT-3.1.2-24'],
  [5, 'MQTT-3.1.2-22'],
] as const) {
  test(`[${rule}] v${v}: a client silent for 1.5 x Keep Alive is disconnected, PINGREQ keeps it alive`, async (t) => {
    const { port } = await broker(t);
    const c = await raw(t, port, { version: v, clientId: uid(), keepAlive: 1 });
    // A PINGREQ just before the interval elapses must keep the connection.
    await new Promise((r) => setTimeout(r, 900));
    c.send(pingreq());
    await c.expect(T.PINGRESP);
    const lastPacketAt = Date.now();
    await c.waitClose(1500 + MARGIN_MS);
    const silentFor = Date.now() - lastPacketAt;
    assert.ok(silentFor >= 1000, `closed after only ${silentFor} ms of silence`);
  });
}

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
