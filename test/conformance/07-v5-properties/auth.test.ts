/** v5 enhanced authentication: the AUTH exchange routed to the broker's enhanced-auth hook (section 4.12). */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { EnhancedAuthenticator } from '../../../src/broker/index.js';
import { P, T, auth, connect, disconnect, parseAuth, parseConnack, parseDisconnect, prop, publish } from '../../helpers/raw-client.js';
import { broker, expectErrorClose, socket, uid } from '../support.js';

/** A toy challenge/response: 'hello' gets the challenge, 'answer' passes, anything else fails with 0x87. */
const toy: EnhancedAuthenticator = {
  methods: ['TOY'],
  step({ data }) {
    const d = data?.toString();
    if (d === 'answer') return { result: 'success' };
    if (d === 'hello' || d === undefined) return { result: 'continue', data: Buffer.from('challenge') };
    return { result: 'failure', reasonCode: 0x87 };
  },
};

async function toyBroker(t: TestContext): Promise<number> {
  return (await broker(t, {}, { enhancedAuthenticator: toy })).port;
}

const open = socket;

const METHOD = [P.AuthenticationMethod, 'TOY'] as const;

test('[MQTT-4.12.0-2] [MQTT-4.12.0-5] CONNECT -> AUTH 0x18 challenge -> AUTH 0x18 answer -> CONNACK 0x00 with the same method', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  const challenge = parseAuth(await c.expect(T.AUTH));
  assert.equal(challenge.reasonCode, 0x18, 'Continue authentication');
  assert.equal(prop(challenge.properties, P.AuthenticationMethod), 'TOY');
  assert.deepEqual(prop(challenge.properties, P.AuthenticationData), Buffer.from('challenge'));
  c.send(auth(0x18, [METHOD, [P.AuthenticationData, Buffer.from('answer')]]));
  const ack = parseConnack(await c.expect(T.CONNACK), 5);
  assert.equal(ack.code, 0);
  assert.equal(prop(ack.properties, P.AuthenticationMethod), 'TOY');
  c.send(Buffer.from([0xc0, 0]));
  await c.expect(T.PINGRESP);
  c.destroy();
});

test('[MQTT-4.12.0-4] a failed AUTH exchange gets a CONNACK >= 0x80 and a close', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  await c.expect(T.AUTH);
  c.send(auth(0x18, [METHOD, [P.AuthenticationData, Buffer.from('wrong')]]));
  await expectErrorClose(c, 5, [0x87], 'connect');
});

test('[MQTT-4.12.0-5] an AUTH with a different Authentication Method during the exchange is a Protocol Error', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  await c.expect(T.AUTH);
  c.send(auth(0x18, [[P.AuthenticationMethod, 'OTHER'], [P.AuthenticationData, Buffer.from('answer')]]));
  await expectErrorClose(c, 5, [0x82], 'connect');
});

test('[MQTT-3.1.2-30] a PUBLISH before the AUTH exchange completed is refused and not routed', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  await c.expect(T.AUTH);
  c.send(publish({ version: 5, topic: 'early', payload: 'x' }));
  await expectErrorClose(c, 5, [0x82], 'connect');
});

test('[MQTT-3.1.2-30] a DISCONNECT during the AUTH exchange ends the connection without CONNACK; the broker serves on', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  await c.expect(T.AUTH);
  c.send(disconnect(0x00));
  // Not a protocol error: no CONNACK 0x82, nothing at all, just the close.
  assert.deepEqual(await c.waitClose(), []);
  const again = await open(t, port);
  again.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('hello')]] }));
  await again.expect(T.AUTH);
  again.send(auth(0x18, [METHOD, [P.AuthenticationData, Buffer.from('answer')]]));
  assert.equal(parseConnack(await again.expect(T.CONNACK), 5).code, 0);
  again.destroy();
});

test('[MQTT-4.12.0-6] without an Authentication Method there is no AUTH and no method in CONNACK', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid() }));
  const first = await c.next();
  assert.equal(first.type, T.CONNACK);
  const ack = parseConnack(first, 5);
  assert.equal(ack.code, 0);
  assert.equal(prop(ack.properties, P.AuthenticationMethod), undefined);
  c.destroy();
});

test('[MQTT-4.12.1-1] re-authentication: AUTH 0x19 -> AUTH 0x18 -> AUTH 0x18 -> AUTH 0x00, connection stays up', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('answer')]] }));
  assert.equal(parseConnack(await c.expect(T.CONNACK), 5).code, 0);
  c.send(auth(0x19, [METHOD, [P.AuthenticationData, Buffer.from('hello')]]));
  const challenge = parseAuth(await c.expect(T.AUTH));
  assert.equal(challenge.reasonCode, 0x18);
  assert.equal(prop(challenge.properties, P.AuthenticationMethod), 'TOY');
  c.send(auth(0x18, [METHOD, [P.AuthenticationData, Buffer.from('answer')]]));
  const done = parseAuth(await c.expect(T.AUTH));
  assert.equal(done.reasonCode, 0x00, 'Success');
  assert.equal(prop(done.properties, P.AuthenticationMethod), 'TOY');
  c.send(Buffer.from([0xc0, 0]));
  await c.expect(T.PINGRESP);
  c.destroy();
});

test('[MQTT-4.12.1-1] re-authentication with a different method is a Protocol Error', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('answer')]] }));
  assert.equal(parseConnack(await c.expect(T.CONNACK), 5).code, 0);
  c.send(auth(0x19, [[P.AuthenticationMethod, 'OTHER'], [P.AuthenticationData, Buffer.from('hello')]]));
  await expectErrorClose(c, 5, [0x82]);
});

test('[MQTT-4.12.1-2] a failed re-authentication -> DISCONNECT >= 0x80 and a close', async (t) => {
  const port = await toyBroker(t);
  const c = await open(t, port);
  c.send(connect({ version: 5, clientId: uid(), properties: [METHOD, [P.AuthenticationData, Buffer.from('answer')]] }));
  assert.equal(parseConnack(await c.expect(T.CONNACK), 5).code, 0);
  c.send(auth(0x19, [METHOD, [P.AuthenticationData, Buffer.from('wrong')]]));
  const unread = await c.waitClose(3000);
  const d = unread.find((x) => x.type === T.DISCONNECT);
  assert.ok(d, 'a DISCONNECT before the close');
  assert.ok(parseDisconnect(d).reasonCode >= 0x80);
});
