/** Will messages: published on every disconnect but a normal DISCONNECT; QoS and retain; v5 Will Delay Interval. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, connect, disconnect, prop, propAll, type ConnectOptions, type Version } from '../../helpers/raw-client.js';
import { broker, delay, nextPublish, raw, sub, uid } from '../support.js';

const VERSIONS: readonly Version[] = [4, 5];

function willOpts(v: Version, topic: string, extra: Partial<NonNullable<ConnectOptions['will']>> = {}): ConnectOptions {
  return { version: v, clientId: uid('will'), will: { topic, payload: 'gone', qos: 1, ...extra } };
}

for (const v of VERSIONS) {
  test(`[MQTT-3.1.2-8] v${v}: the Will is published when the network connection drops`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const w = await raw(t, port, willOpts(v, topic));
    w.destroy();
    const got = await nextPublish(s, v);
    assert.equal(got.payload.toString(), 'gone');
    assert.equal(got.qos, 1, 'Will QoS 1');
    assert.equal(got.retain, false);
  });

  test(`[${v === 4 ? 'MQTT-3.1.2-10' : 'MQTT-3.14.4-3'}] v${v}: a normal DISCONNECT discards the Will`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const w = await raw(t, port, willOpts(v, topic));
    w.send(v === 5 ? disconnect(0x00) : disconnect());
    await w.waitClose();
    assert.equal(await s.silentFor(600), undefined, 'no Will after DISCONNECT');
  });

  test(`[MQTT-3.1.2-8] v${v}: the Will is published when the server closes for a protocol error`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const w = await raw(t, port, willOpts(v, topic));
    w.send(connect({ version: v, clientId: uid() })); // [MQTT-3.1.0-2]
    await w.waitClose();
    assert.equal((await nextPublish(s, v)).payload.toString(), 'gone');
  });

  test(`[MQTT-3.1.2-8] v${v}: the Will is published on a keep-alive timeout`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    await raw(t, port, { ...willOpts(v, topic), keepAlive: 1 });
    assert.equal((await nextPublish(s, v, 3000)).payload.toString(), 'gone');
  });

  test(`[MQTT-3.1.2-8] v${v}: the Will is published when the session is taken over`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const s = await raw(t, port, { version: v, clientId: uid() });
    await sub(s, v, topic, 1);
    const o = willOpts(v, topic);
    const first = await raw(t, port, o);
    await raw(t, port, { version: v, clientId: o.clientId ?? '' });
    await first.waitClose();
    assert.equal((await nextPublish(s, v)).payload.toString(), 'gone');
  });

  test(`[${v === 4 ? 'MQTT-3.1.2-17' : 'MQTT-3.1.2-15'}] v${v}: a Will with Will Retain=1 is published as retained`, async (t) => {
    const { port } = await broker(t);
    const topic = `will/${uid()}`;
    const w = await raw(t, port, willOpts(v, topic, { retain: true, qos: 2 }));
    w.destroy();
    await delay(300);
    const late = await raw(t, port, { version: v, clientId: uid() });
    await sub(late, v, topic, 2);
    const got = await nextPublish(late, v);
    assert.equal(got.retain, true);
    assert.equal(got.qos, 2);
    assert.equal(got.payload.toString(), 'gone');
  });
}

test('v5: DISCONNECT 0x04 (Disconnect with Will Message) publishes the Will (3.14.2.1)', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, willOpts(5, topic));
  w.send(disconnect(0x04));
  assert.equal((await nextPublish(s, 5)).payload.toString(), 'gone');
});

test('v5: Will properties (3.1.3.2) are forwarded unaltered', async (t) => {
  const { port } = await broker(t);
  const topic = `will/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 1);
  const w = await raw(t, port, {
    version: 5,
    clientId: uid(),
    will: {
      topic,
      payload: '{}',
      qos: 1,
      properties: [
        [P.ContentType, 'application/json'],
        [P.PayloadFormatIndicator, 1],
        [P.CorrelationData, Buffer.from([1, 2, 3])],
        [P.ResponseTopic, 'reply/here'],
        [P.UserProperty, ['k', 'v1']],
        [P.UserProperty, ['k', 'v2']],
      ],
    },
  });
  w.destroy();
  const got = await nextPublish(s, 5);
  assert.equal(prop(got.properties, P.ContentType), 'application/json');
  assert.equal(prop(got.properties, P.PayloadFormatIndicator), 1);
  assert.deepEqual(prop(got.properties, P.CorrelationData), Buffer.from([1, 2, 3]));
  assert.equal(prop(got.properties, P.ResponseTopic), 'reply/here');
  assert.deepEqual(propAll(got.properties, P.UserProperty), [['k', 'v1'], ['k', 'v2']]);
});
