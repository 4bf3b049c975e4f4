/** Keep Alive: the server closes a silent client after one and a half times the interval; v5 Server Keep Alive. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { T, pingreq, publish } from '../../helpers/raw-client.js';
import { broker, raw, uid } from '../support.js';

// Margin for timer granularity and a loaded 2-core CI machine.
const MARGIN_MS = 1000;

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

test('[MQTT-3.1.2-24] any control packet, not only PINGREQ, resets the keep-alive timer', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 4, clientId: uid(), keepAlive: 1 });
  // Six QoS 0 PUBLISHes 400 ms apart span 2.4 s, past 1.5 x Keep Alive measured from CONNECT.
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(c.closed, false, `closed after ${i * 400} ms despite traffic`);
    c.send(publish({ topic: 'ka/traffic', payload: 'x' }));
  }
  c.send(pingreq());
  await c.expect(T.PINGRESP);
});
