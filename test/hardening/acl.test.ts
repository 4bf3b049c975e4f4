/**
 * Hostile use of permissions: subscribing to everything, wills and publishes to forbidden topics, and rules that
 * change under existing subscriptions and offline sessions (delivery-time read checks).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, publish, subscribe } from '../helpers/raw-client.js';
import { T, ackCode, hostile, parsePublish, subackCodes, type Hostile } from './harness.js';

const RULES = [
  'all',
  'topic readwrite bystander/#',
  'topic readwrite open/#',
  'client watcher',
  'topic read secret/#',
  '',
].join('\n');

async function withAcl(t: TestContext, rules = RULES): Promise<Hostile & { acl: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-hardening-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const acl = join(dir, 'acl');
  await writeFile(acl, rules);
  const h = await hostile(t, { auth: { aclFile: acl, failureDelay: 0 } });
  return { ...h, acl };
}

test('an unauthorized SUBSCRIBE to # gets 0x87 (v5) / 0x80 (v3.1.1) and receives nothing', async (t) => {
  const h = await withAcl(t);
  const v5 = await h.raw({ version: 5, clientId: 'greedy-5' });
  v5.send(subscribe({ version: 5 }, { topic: '#', qos: 1 }, { topic: '$SYS/#', qos: 0 }));
  assert.deepEqual(subackCodes(await v5.expect(T.SUBACK), 5), [0x87, 0x87]);
  const v4 = await h.raw({ version: 4, clientId: 'greedy-4' });
  v4.send(subscribe({ version: 4 }, { topic: '#', qos: 1 }));
  assert.deepEqual(subackCodes(await v4.expect(T.SUBACK), 4), [0x80]);
  await h.survived();
  assert.equal(await v5.silentFor(100), undefined);
  assert.equal(await v4.silentFor(100), undefined);
});

test('a PUBLISH to a forbidden topic: v5 PUBACK 0x87, v3.1.1 acknowledged and dropped; nobody receives it', async (t) => {
  const h = await withAcl(t);
  const watcher = await h.raw({ version: 4, clientId: 'watcher' });
  watcher.send(subscribe({ version: 4 }, { topic: 'secret/#', qos: 0 }));
  assert.deepEqual(subackCodes(await watcher.expect(T.SUBACK), 4), [0]);
  const v5 = await h.raw({ version: 5, clientId: 'forger-5' });
  v5.send(publish({ version: 5, topic: 'secret/cmd', payload: 'forged', qos: 1, packetId: 1 }));
  assert.equal(ackCode(await v5.expect(T.PUBACK)), 0x87);
  const v4 = await h.raw({ version: 4, clientId: 'forger-4' });
  v4.send(publish({ topic: 'secret/cmd', payload: 'forged', qos: 1, packetId: 1 }));
  await v4.expect(T.PUBACK);
  assert.equal(await watcher.silentFor(200), undefined);
  await h.survived();
});

test('a will message to a forbidden topic is not published; one to an allowed topic is', async (t) => {
  const h = await withAcl(t);
  const watcher = await h.raw({ version: 4, clientId: 'watcher' });
  watcher.send(subscribe({ version: 4 }, { topic: 'secret/#', qos: 0 }, { topic: 'open/#', qos: 0 }));
  await watcher.expect(T.SUBACK);
  const evil = await h.raw({ version: 5, clientId: 'will-evil', will: { topic: 'secret/will', payload: 'forged will' } });
  evil.destroy();
  const good = await h.raw({ version: 5, clientId: 'will-good', will: { topic: 'open/will', payload: 'fair will' } });
  good.destroy();
  // Wills go out in close order: the allowed one arriving first means the forbidden one was dropped.
  const m = parsePublish(await watcher.expect(T.PUBLISH), 4);
  assert.equal(m.topic, 'open/will');
  assert.equal(await watcher.silentFor(150), undefined);
  await h.survived();
});

test('after an ACL reload an existing subscription stops receiving what is no longer readable (delivery-time check)', async (t) => {
  const h = await withAcl(t);
  const watcher = await h.raw({ version: 5, clientId: 'watcher' });
  watcher.send(subscribe({ version: 5 }, { topic: 'secret/#', qos: 1 }));
  assert.deepEqual(subackCodes(await watcher.expect(T.SUBACK), 5), [1]);
  h.broker.publish({ topic: 'secret/a', payload: 'before', qos: 0 });
  assert.equal(parsePublish(await watcher.expect(T.PUBLISH), 5).payload.toString(), 'before');
  await writeFile(h.acl, RULES.replace('topic read secret/#', 'topic read secret/public/#'));
  const results = await h.broker.reload();
  assert.ok(results.every((r) => r.ok));
  h.broker.publish({ topic: 'secret/a', payload: 'after', qos: 1 });
  h.broker.publish({ topic: 'secret/public/b', payload: 'still readable', qos: 0 });
  const m = parsePublish(await watcher.expect(T.PUBLISH), 5);
  assert.equal(m.payload.toString(), 'still readable');
  assert.equal(h.broker.limitsHit.readDenied, 1);
  await h.survived();
});

test('a resumed session does not receive queued messages its client may no longer read', async (t) => {
  const h = await withAcl(t);
  const opts = { version: 5, clientId: 'watcher', clean: false, properties: [[0x11, 600]] } as const;
  const first = await h.raw(opts);
  first.send(subscribe({ version: 5 }, { topic: 'secret/#', qos: 1 }));
  await first.expect(T.SUBACK);
  first.send('e0 00');
  await first.waitClose();
  h.broker.publish({ topic: 'secret/queued', payload: 'revoked', qos: 1 });
  h.broker.publish({ topic: 'secret/public/q', payload: 'kept', qos: 1 });
  await writeFile(h.acl, RULES.replace('topic read secret/#', 'topic read secret/public/#'));
  await h.broker.reload();
  const again = await h.raw();
  again.send(connect(opts));
  const connack = await again.expect(T.CONNACK);
  assert.equal(connack.body[0], 1, 'session present');
  const m = parsePublish(await again.expect(T.PUBLISH), 5);
  assert.equal(m.payload.toString(), 'kept');
  assert.equal(await again.silentFor(150), undefined);
  await h.survived();
});

test('an ACL that fails to load on reload keeps the old rules: no client gains access', async (t) => {
  const h = await withAcl(t);
  await writeFile(h.acl, 'this is not an acl line\n');
  const results = await h.broker.reload();
  assert.ok(results.some((r) => !r.ok));
  const c = await h.raw({ version: 5, clientId: 'after-bad-reload' });
  c.send(subscribe({ version: 5 }, { topic: 'secret/#', qos: 0 }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x87]);
  await h.survived();
});

test('a client id chosen to attack %c patterns (`#`) gets nothing from a pattern rule', async (t) => {
  const h = await withAcl(t, `${RULES}\npattern readwrite devices/%c/#\n`);
  const c = await h.raw({ version: 5, clientId: '#' });
  c.send(subscribe({ version: 5 }, { topic: 'devices/#', qos: 0 }, { topic: 'devices/other/#', qos: 0 }));
  assert.deepEqual(subackCodes(await c.expect(T.SUBACK), 5), [0x87, 0x87]);
  c.send(publish({ version: 5, topic: 'devices/other/cmd', payload: 'x', qos: 1, packetId: 3 }));
  assert.equal(ackCode(await c.expect(T.PUBACK)), 0x87);
  await h.survived();
});
