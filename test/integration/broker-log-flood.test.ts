/**
 * Many connections that break the protocol or are refused: each is still answered and closed, but the log gets a
 * bounded number of lines per kind and a summary with the count of those left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordingLogger } from '../helpers/log-recorder.js';
import { startBroker } from '../helpers/broker.js';
import { RawClient, T, connect } from '../helpers/raw-client.js';

/** Runs `fn` for 0..n-1, `width` at a time (a light load on a shared machine). */
async function inBatches(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += width) {
    await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)));
  }
}

const BURST = 10;
const INTERVAL_MS = 10_000;

test('a flood of malformed and refused connections: all answered and closed, log lines rate-limited per kind', async (t) => {
  const { logger, lines } = recordingLogger(['info', 'warn']);
  const started = Date.now();
  const { broker, port } = await startBroker(t, {}, { logger });
  const garbage = 200;
  const refused = 50;
  await inBatches(garbage, 20, async () => {
    const c = await RawClient.connect(port);
    // [MQTT-3.1.0-1] reserved packet type 0 instead of CONNECT: closed without a reply.
    c.send(Buffer.from([0x00, 0x00]));
    assert.deepEqual(await c.waitClose(), []);
  });
  await inBatches(refused, 20, async () => {
    const c = await RawClient.connect(port);
    // [MQTT-3.1.3-8] (3.1.1) an empty client id without Clean Session: CONNACK 2 and close.
    c.send(connect({ version: 4, clientId: '', clean: false }));
    const [connack] = await c.waitClose();
    assert.equal(connack?.type, T.CONNACK);
    assert.equal(connack.body[1], 2);
  });
  assert.equal(broker.stats.protocolErrors, garbage);
  assert.equal(broker.stats.closedBeforeConnect, refused);
  // Pending summaries are written at shutdown.
  await broker.close(200);
  // Windows the test spanned (one unless the machine was very slow).
  const windows = 1 + Math.floor((Date.now() - started) / INTERVAL_MS);
  for (const [kind, msg, total] of [
    ['protocolError', 'protocol error: closing connection', garbage],
    ['closedBeforeConnect', 'connection closed before CONNECT completed', refused],
    ['connectRefused', 'CONNACK refusal sent', refused],
  ] as const) {
    const logged = lines.filter((l) => l.msg === msg);
    assert.ok(logged.length >= 1 && logged.length <= BURST * windows, `${kind}: ${logged.length} lines`);
    // The lines that are logged keep what identifies the connection.
    assert.ok(logged.every((l) => typeof l.obj['remoteAddress'] === 'string'));
    if (kind !== 'connectRefused') assert.ok(logged.every((l) => typeof l.obj['reason'] === 'string'));
    const summaries = lines.filter((l) => l.msg === 'log lines suppressed' && l.obj['kind'] === kind);
    assert.ok(summaries.length >= 1 && summaries.length <= windows, `${kind}: ${summaries.length} summaries`);
    assert.ok(summaries.every((s) => s.level === 'warn' && s.obj['intervalMs'] === INTERVAL_MS));
    const suppressed = summaries.reduce((n, s) => n + (s.obj['suppressed'] as number), 0);
    assert.equal(logged.length + suppressed, total, `${kind}: every event is either logged or counted in a summary`);
  }
});
