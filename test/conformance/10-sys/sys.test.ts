/** $SYS topics: periodic broker statistics, hidden from wildcard filters, not publishable by clients. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { T, parseAck, parseDisconnect, parsePublish, publish, type Publish } from '../../helpers/raw-client.js';
import { broker, nextPublish, raw, sub, uid } from '../support.js';

// Issue 3's list, under the names mosquitto made customary.
const EXPECTED = [
  'version',
  'uptime',
  'clients/connected',
  'clients/total',
  'messages/received',
  'messages/sent',
  'bytes/received',
  'bytes/sent',
  'subscriptions/count',
  'retained messages/count',
];

async function collectSys(c: Awaited<ReturnType<typeof raw>>, v: 4 | 5, wanted: readonly string[], timeoutMs: number): Promise<Map<string, Publish>> {
  const seen = new Map<string, Publish>();
  const deadline = Date.now() + timeoutMs;
  while (wanted.some((w) => !seen.has(w))) {
    const left = deadline - Date.now();
    assert.ok(left > 0, `missing $SYS topics: ${wanted.filter((w) => !seen.has(w)).join(', ')}`);
    const m = await nextPublish(c, v, left);
    // Retained copies may predate this client; only live publications count.
    if (!m.retain) seen.set(m.topic.replace(/^\$SYS\/broker\//, ''), m);
  }
  return seen;
}

test('$SYS/broker/... statistics are published periodically', async (t) => {
  const { port } = await broker(t, { sys: { enabled: true, interval: 1 } });
  const c = await raw(t, port, { version: 4, clientId: uid() });
  await sub(c, 4, '$SYS/broker/#', 0);
  const seen = await collectSys(c, 4, EXPECTED, 2500);
  assert.match(seen.get('version')?.payload.toString() ?? '', /telemq/i);
  for (const k of EXPECTED.filter((x) => x !== 'version' && x !== 'uptime')) {
    assert.match(seen.get(k)?.payload.toString() ?? '', /^\d+$/, `${k} is a count`);
  }
  assert.ok(Number(seen.get('clients/connected')?.payload.toString()) >= 1, 'this client is connected');
  assert.ok(Number(seen.get('subscriptions/count')?.payload.toString()) >= 1, 'this subscription counts');
  // Published again on the next tick.
  const again = await collectSys(c, 4, ['uptime'], 2000);
  assert.ok(again.has('uptime'));
});

test('[MQTT-4.7.2-1] filters starting with a wildcard (also behind $share/g/) do not match $SYS topics', async (t) => {
  const { port } = await broker(t, { sys: { enabled: true, interval: 1 } });
  const all = await raw(t, port, { version: 4, clientId: uid() });
  await sub(all, 4, '#', 0);
  const shared = await raw(t, port, { version: 5, clientId: uid() });
  await sub(shared, 5, '$share/g/#', 0);
  const plus = await raw(t, port, { version: 5, clientId: uid() });
  await sub(plus, 5, '+/broker/#', 0);
  const marker = `normal/${uid()}`;
  const p = await raw(t, port, { version: 4, clientId: uid() });
  // Wait past one $SYS tick, then send a marker: everything before it must not be $SYS.
  await new Promise((r) => setTimeout(r, 1300));
  p.send(publish({ topic: marker, payload: 'm' }));
  for (;;) {
    const m = await nextPublish(all, 4);
    assert.ok(!m.topic.startsWith('$'), `'#' received ${m.topic}`);
    if (m.topic === marker) break;
  }
  for (;;) {
    const m = await nextPublish(shared, 5);
    assert.ok(!m.topic.startsWith('$'), `'$share/g/#' received ${m.topic}`);
    if (m.topic === marker) break;
  }
  assert.equal(await plus.silentFor(300), undefined, "'+/broker/#' must not match $SYS/broker/...");
});

for (const v of [4, 5] as const) {
  test(`v${v}: clients cannot publish to $ topics`, async (t) => {
    const { port } = await broker(t, { sys: { enabled: true, interval: 1 } });
    const watcher = await raw(t, port, { version: 4, clientId: uid() });
    await sub(watcher, 4, '$SYS/broker/version', 0);
    const custom = await raw(t, port, { version: 4, clientId: uid() });
    await sub(custom, 4, '$custom/#', 0);
    const c = await raw(t, port, { version: v, clientId: uid() });
    c.send(publish({ version: v, topic: '$SYS/broker/version', payload: 'fake', qos: 1, packetId: 1 }));
    const answer = await c.silentFor(2000);
    assert.ok(answer !== undefined, 'a QoS 1 PUBLISH must be acknowledged or the connection closed');
    if (answer !== 'closed') {
      if (answer.type === T.PUBACK) {
        // [MQTT-3.3.5-2] (3.1.1) a positive PUBACK is allowed; v5 should say why it refused.
        if (v === 5) assert.ok(parseAck(answer).reasonCode >= 0x80, `PUBACK 0x${parseAck(answer).reasonCode.toString(16)}`);
      } else {
        assert.equal(answer.type, T.DISCONNECT, `unexpected ${answer.raw.toString('hex')}`);
        assert.ok(parseDisconnect(answer).reasonCode >= 0x80);
      }
    }
    const c2 = await raw(t, port, { version: v, clientId: uid() });
    c2.send(publish({ version: v, topic: '$custom/x', payload: 'fake' }));
    assert.equal(await custom.silentFor(400), undefined, '$custom/x was routed');
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const m = await watcher.silentFor(Math.max(1, until - Date.now()));
      if (m === undefined || m === 'closed') break;
      assert.notEqual(parsePublish(m, 4).payload.toString(), 'fake', 'a client-published $SYS value was routed');
    }
  });
}
