/** v5 Topic Alias in both directions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { P, T, parsePublish, prop, publish } from '../../helpers/raw-client.js';
import { broker, expectErrorClose, nextPublish, raw, rawAny, sub, uid } from '../support.js';

test('[MQTT-3.3.2-12] the server accepts a Topic Alias set by the client and resolves it on later PUBLISHes', async (t) => {
  const { port } = await broker(t, { mqtt: { topicAliasMaximum: 4 } });
  const topic = `alias/${uid()}`;
  const s = await raw(t, port, { version: 4, clientId: uid() });
  await sub(s, 4, topic, 0);
  const { client: p, connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  assert.equal(prop(connack.properties, P.TopicAliasMaximum), 4);
  p.send(publish({ version: 5, topic, payload: 'set', properties: [[P.TopicAlias, 4]] }));
  p.send(publish({ version: 5, topic: '', payload: 'use', properties: [[P.TopicAlias, 4]] }));
  p.send(publish({ version: 5, topic: `${topic}/other`, payload: 'remap', properties: [[P.TopicAlias, 4]] }));
  p.send(publish({ version: 5, topic: '', payload: 'use2', properties: [[P.TopicAlias, 4]] }));
  const got = [];
  for (let i = 0; i < 2; i++) got.push(await nextPublish(s, 4));
  assert.deepEqual(got.map((m) => `${m.topic}=${m.payload.toString()}`), [`${topic}=set`, `${topic}=use`]);
  assert.equal(await s.silentFor(300), undefined, 'the re-mapped alias points at the other topic');
});

test('[MQTT-3.3.2-8] a Topic Alias of 0 -> DISCONNECT 0x94 Topic Alias invalid', async (t) => {
  const { port } = await broker(t, { mqtt: { topicAliasMaximum: 4 } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.TopicAlias, 0]] }));
  await expectErrorClose(c, 5, [0x94]);
});

test('[MQTT-3.2.2-17] a Topic Alias above the server Topic Alias Maximum -> DISCONNECT 0x94', async (t) => {
  const { port } = await broker(t, { mqtt: { topicAliasMaximum: 4 } });
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.TopicAlias, 5]] }));
  await expectErrorClose(c, 5, [0x94]);
});

test('[MQTT-3.2.2-18] with Topic Alias Maximum 0 any Topic Alias -> DISCONNECT 0x94', async (t) => {
  const { port } = await broker(t, { mqtt: { topicAliasMaximum: 0 } });
  const { client, connack } = await rawAny(t, port, { version: 5, clientId: uid() });
  const tam = prop(connack.properties, P.TopicAliasMaximum);
  assert.ok(tam === undefined || tam === 0);
  client.send(publish({ version: 5, topic: 'a', payload: 'x', properties: [[P.TopicAlias, 1]] }));
  await expectErrorClose(client, 5, [0x94]);
});

test('[MQTT-3.3.2-7] topic alias mappings do not survive a reconnect: an unknown alias with an empty topic is a Protocol Error', async (t) => {
  const { port } = await broker(t, { mqtt: { topicAliasMaximum: 4 } });
  const id = uid();
  const a = await raw(t, port, { version: 5, clientId: id });
  a.send(publish({ version: 5, topic: 'mapped', payload: 'x', qos: 1, packetId: 1, properties: [[P.TopicAlias, 1]] }));
  await a.expect(T.PUBACK);
  a.destroy();
  const b = await raw(t, port, { version: 5, clientId: id });
  b.send(publish({ version: 5, topic: '', payload: 'x', properties: [[P.TopicAlias, 1]] }));
  await expectErrorClose(b, 5, [0x82]);
});

test('v5: an empty topic without a Topic Alias is a Protocol Error (3.3.2.3.4)', async (t) => {
  const { port } = await broker(t);
  const c = await raw(t, port, { version: 5, clientId: uid() });
  c.send(publish({ version: 5, topic: '', payload: 'x' }));
  await expectErrorClose(c, 5, [0x82]);
});

test('[MQTT-3.3.2-11] the broker assigns topic aliases to a client that allows them, never above its maximum', async (t) => {
  const { port } = await broker(t);
  const b = uid('ta');
  const s = await raw(t, port, { version: 5, clientId: uid(), properties: [[P.TopicAliasMaximum, 2]] });
  await sub(s, 5, `${b}/#`, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  const topics = [`${b}/a`, `${b}/a`, `${b}/b`, `${b}/b`, `${b}/c`, `${b}/a`, `${b}/c`, `${b}/c`];
  for (const topic of topics) p.send(publish({ version: 5, topic, payload: topic }));
  const aliases = new Map<number, string>();
  let used = 0;
  for (const expected of topics) {
    const m = parsePublish(await s.expect(T.PUBLISH), 5);
    const alias = prop(m.properties, P.TopicAlias);
    let topic = m.topic;
    if (alias !== undefined) {
      assert.equal(typeof alias, 'number');
      const n = alias as number;
      assert.ok(n >= 1 && n <= 2, `alias ${n} outside 1..2`);
      if (m.topic === '') {
        const known = aliases.get(n);
        assert.ok(known !== undefined, `alias ${n} used before it was set`);
        topic = known;
        used += 1;
      } else aliases.set(n, m.topic);
    }
    assert.equal(topic, expected);
    assert.equal(m.payload.toString(), expected, 'payload matches the resolved topic');
  }
  assert.ok(used > 0, 'the broker never sent a PUBLISH with an empty topic and an alias (issue 3: assigns aliases)');
});

test('[MQTT-3.1.2-27] the broker sends no Topic Alias to a client whose Topic Alias Maximum is 0 or absent', async (t) => {
  const { port } = await broker(t);
  const topic = `nota/${uid()}`;
  const s = await raw(t, port, { version: 5, clientId: uid() });
  await sub(s, 5, topic, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 0; i < 4; i++) p.send(publish({ version: 5, topic, payload: `${i}` }));
  for (let i = 0; i < 4; i++) {
    const m = await nextPublish(s, 5);
    assert.equal(prop(m.properties, P.TopicAlias), undefined);
    assert.equal(m.topic, topic);
  }
});

test('[MQTT-3.3.2-7] broker-assigned topic aliases start afresh on a new connection', async (t) => {
  const { port } = await broker(t);
  const topic = `tar/${uid()}`;
  const id = uid();
  const opts = { version: 5 as const, clientId: id, clean: false, properties: [[P.SessionExpiryInterval, 60], [P.TopicAliasMaximum, 5]] as const };
  const a = await raw(t, port, { ...opts, properties: [...opts.properties] });
  await sub(a, 5, topic, 0);
  const p = await raw(t, port, { version: 5, clientId: uid() });
  for (let i = 0; i < 3; i++) p.send(publish({ version: 5, topic, payload: `a${i}` }));
  for (let i = 0; i < 3; i++) await nextPublish(a, 5);
  a.destroy();
  const b = await raw(t, port, { ...opts, properties: [...opts.properties] });
  p.send(publish({ version: 5, topic, payload: 'after reconnect' }));
  const m = await nextPublish(b, 5);
  assert.equal(m.topic, topic, 'the first PUBLISH on a new connection must carry the topic name');
  assert.equal(m.payload.toString(), 'after reconnect');
});
