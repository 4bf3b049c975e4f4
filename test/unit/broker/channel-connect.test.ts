import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedPacketError, UnsupportedProtocolVersionError } from '../../../src/protocol/index.js';
import type { ConnackPacket, DisconnectPacket } from '../../../src/protocol/index.js';
import { setup } from './harness.js';

test('[MQTT-3.1.0-1] a packet other than CONNECT first closes the connection without a reply', () => {
  const { client } = setup();
  const c = client(4);
  c.in({ type: 'pingreq' });
  assert.deepEqual(c.sent(), []);
  assert.equal(c.closeAction()?.rule, 'MQTT-3.1.0-1');
});

test('[MQTT-3.1.0-2] a second CONNECT is a protocol error: v5 DISCONNECT 0x82, then close', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  c.connect();
  assert.equal(c.channel.state, 'disconnecting');
  const d = c.actions.find((a) => a.type === 'send' && a.packet.type === 'disconnect');
  assert.equal(((d as { packet: DisconnectPacket }).packet).reasonCode, 0x82);
  assert.ok(c.closed);
});

test('[MQTT-3.1.0-2] v3.1.1: a second CONNECT closes without DISCONNECT (v3 has no server DISCONNECT)', () => {
  const { client } = setup();
  const c = client(4);
  c.connect();
  c.connect();
  assert.ok(c.closed);
  assert.equal(c.sent().length, 0);
});

test('[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 and close', () => {
  const { client } = setup();
  const c = client(4);
  c.actions.push(...c.channel.handleDecodeError(new UnsupportedProtocolVersionError('MQTT', 6), 0));
  const [connack] = c.sent() as ConnackPacket[];
  assert.equal(connack?.type, 'connack');
  assert.equal(connack?.reasonCode, 0x01);
  assert.equal(c.channel.protocolVersion, 4);
  assert.ok(c.closed);
});

test('[MQTT-3.1.2-1] a wrong protocol name closes the connection', () => {
  const { client } = setup();
  const c = client(4);
  assert.deepEqual(c.connect({ protocolName: 'MQIsdp' }), []);
  assert.equal(c.closeAction()?.rule, 'MQTT-3.1.2-1');
});

test('a malformed packet after CONNECT: v5 DISCONNECT 0x81, then close', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  c.actions.push(...c.channel.handleDecodeError(new MalformedPacketError('bad'), 0));
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.type, 'disconnect');
  assert.equal(d?.reasonCode, 0x81);
  assert.ok(c.closed);
});

test('[MQTT-3.1.3-8] (3.1.1) empty client id with Clean Session 0: CONNACK 0x02', () => {
  const { client } = setup();
  const [connack] = client(4).connect({ clientId: '', cleanStart: false }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x02);
  assert.equal(connack?.sessionPresent, false);
});

test('[MQTT-3.1.3-8] v5 empty client id with Clean Start 0: CONNACK 0x85', () => {
  const { client } = setup();
  const [connack] = client(5).connect({ clientId: '', cleanStart: false }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x85);
});

test('[MQTT-3.1.3-6] [MQTT-3.1.3-7] empty client id with Clean Start: an id is assigned and returned (v5)', () => {
  const { client } = setup();
  const a = client(5).connect({ clientId: '' })[0] as ConnackPacket;
  const b = client(5).connect({ clientId: '' })[0] as ConnackPacket;
  assert.equal(a.reasonCode, 0);
  const idA = a.properties?.assignedClientIdentifier;
  assert.ok(idA !== undefined && idA.length > 0);
  assert.notEqual(idA, b.properties?.assignedClientIdentifier);
});

test('MQTT 3.1: an empty client id is refused with 0x02', () => {
  const { client } = setup();
  const [connack] = client(3).connect({ clientId: '' }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x02);
});

test('a client id longer than maximumClientIdLength is refused', () => {
  const { client } = setup({ limits: { maximumClientIdLength: 23 } });
  const [connack] = client(4).connect({ clientId: 'x'.repeat(24) }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x02);
});

test('v5 CONNACK announces the configured server limits', () => {
  const { client } = setup({
    limits: {
      maximumQoS: 1,
      retainAvailable: false,
      receiveMaximum: 10,
      topicAliasMaximum: 5,
      maximumPacketSize: 4096,
      wildcardSubscriptionAvailable: false,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifierAvailable: false,
      maximumKeepAlive: 30,
    },
  });
  const [connack] = client(5).connect({ keepAlive: 60 }) as ConnackPacket[];
  assert.deepEqual(connack?.properties, {
    receiveMaximum: 10,
    maximumQoS: 1,
    retainAvailable: 0,
    maximumPacketSize: 4096,
    topicAliasMaximum: 5,
    wildcardSubscriptionAvailable: 0,
    subscriptionIdentifierAvailable: 0,
    sharedSubscriptionAvailable: 0,
    serverKeepAlive: 30,
  });
});

test('[MQTT-3.2.2-12] a will QoS above Maximum QoS is refused with 0x9B', () => {
  const { client } = setup({ limits: { maximumQoS: 1 } });
  const w = { topic: 'w', payload: Buffer.from('x'), qos: 2 as const, retain: false };
  const [connack] = client(5).connect({ will: w }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x9b);
});

test('[MQTT-3.2.2-13] a retained will when retain is unavailable is refused with 0x9A', () => {
  const { client } = setup({ limits: { retainAvailable: false } });
  const w = { topic: 'w', payload: Buffer.from('x'), qos: 0 as const, retain: true };
  const [connack] = client(5).connect({ will: w }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x9a);
});

test('[MQTT-4.12.0-1] an Authentication Method without an enhanced-auth hook is refused with 0x8C', () => {
  const { client } = setup();
  const c = client(5);
  const [connack] = c.connect({ properties: { authenticationMethod: 'SCRAM-SHA-1' } }) as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0x8c);
  assert.ok(c.closed);
});

test('enhanced auth: CONNECT -> AUTH 0x18 -> AUTH -> CONNACK with the same method [MQTT-4.12.0-5]', () => {
  const steps: string[] = [];
  const { client } = setup({
    enhancedAuthenticator: {
      methods: ['TEST'],
      step: (s) => {
        steps.push(s.data?.toString() ?? '');
        return s.initial ? { result: 'continue', data: Buffer.from('challenge') } : { result: 'success' };
      },
    },
  });
  const c = client(5);
  c.in({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 0, clientId: 'e', properties: { authenticationMethod: 'TEST', authenticationData: Buffer.from('hello') } });
  const step1 = c.actions.at(-1);
  assert.equal(step1?.type, 'authStep');
  c.actions.push(...c.channel.handleAuthStepResult({ result: 'continue', data: Buffer.from('challenge') }, 0));
  const [auth] = c.sent();
  assert.equal(auth?.type, 'auth');
  assert.equal((auth as { reasonCode: number }).reasonCode, 0x18);
  c.in({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'TEST', authenticationData: Buffer.from('response') } });
  assert.equal(c.actions.at(-1)?.type, 'authStep');
  c.actions.push(...c.channel.handleAuthStepResult({ result: 'success' }, 0));
  const [connack] = c.sent() as ConnackPacket[];
  assert.equal(connack?.reasonCode, 0);
  assert.equal(connack?.properties?.authenticationMethod, 'TEST');
  assert.equal(c.channel.state, 'connected');
});

test('a refused authentication maps v5 reason codes to v3 return codes', () => {
  const { client } = setup();
  for (const [v5, v3] of [[0x86, 0x04], [0x87, 0x05], [0x88, 0x03]] as const) {
    // Answer the 'authenticate' action ourselves instead of the harness's automatic success.
    const c2 = client(4);
    const acts = c2.channel.handleIn({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 0, clientId: 'y' }, 0);
    assert.equal(acts[0]?.type, 'authenticate');
    const out = c2.channel.handleAuthResult({ ok: false, reasonCode: v5 }, 0);
    const connack = out.find((a) => a.type === 'send');
    assert.equal((connack as { packet: ConnackPacket }).packet.reasonCode, v3);
    assert.ok(out.some((a) => a.type === 'close'));
  }
});

test('[MQTT-3.1.2-22] keep alive: the connection is told to time out after 1.5 x keep alive', () => {
  const { client } = setup();
  const c = client(5);
  c.connect({ keepAlive: 10 });
  const ka = c.actions.find((a) => a.type === 'keepAlive');
  assert.deepEqual(ka, { type: 'keepAlive', ms: 15_000 });
  c.actions.push(...c.channel.handleKeepAliveTimeout(0));
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x8d);
  assert.ok(c.closed);
});

test('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP', () => {
  const { client } = setup();
  const c = client(4);
  c.connect();
  c.in({ type: 'pingreq' });
  assert.deepEqual(c.sent(), [{ type: 'pingresp' }]);
});

test('MQTT 3.1: a client id longer than 23 characters is refused with 0x02; 23 is accepted', () => {
  const { client } = setup();
  assert.equal((client(3).connect({ clientId: 'x'.repeat(24) })[0] as ConnackPacket).reasonCode, 0x02);
  assert.equal((client(3).connect({ clientId: 'y'.repeat(23) })[0] as ConnackPacket).reasonCode, 0x00);
});

test('[MQTT-3.1.2-29] Request Problem Information 0: no reason string; with 1 the refusal says why', () => {
  const { client } = setup();
  const quiet = client(5).connect({ clientId: '', cleanStart: false, properties: { requestProblemInformation: 0 } })[0] as ConnackPacket;
  assert.equal(quiet.reasonCode, 0x85);
  assert.equal(quiet.properties, undefined);
  const chatty = client(5).connect({ clientId: '', cleanStart: false })[0] as ConnackPacket;
  assert.equal(typeof chatty.properties?.reasonString, 'string');
});

test('[MQTT-4.12.1-1] re-authentication: AUTH 0x19 after CONNACK goes to the hook; another method is a protocol error', () => {
  const { client } = setup({ enhancedAuthenticator: { methods: ['TEST'], step: () => ({ result: 'success' }) } });
  const c = client(5);
  const acts = c.channel.handleIn(
    { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 0, clientId: 'r', properties: { authenticationMethod: 'TEST' } },
    0,
  );
  assert.equal(acts[0]?.type, 'authStep');
  c.actions.push(...c.channel.handleAuthStepResult({ result: 'success' }, 0));
  assert.equal(c.channel.state, 'connected');
  c.sent();
  c.in({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'TEST' } });
  const step = c.actions.at(-1);
  assert.equal(step?.type, 'authStep');
  assert.equal((step as { step: { reauthenticate: boolean } }).step.reauthenticate, true);
  c.actions.push(...c.channel.handleAuthStepResult({ result: 'success' }, 0));
  assert.deepEqual(c.sent(), [{ type: 'auth', reasonCode: 0, properties: { authenticationMethod: 'TEST' } }]);
  c.in({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'OTHER' } });
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x82); // [MQTT-4.12.1-1] a different method
});

test('[MQTT-4.12.0-7] AUTH from a client that did not use enhanced authentication: DISCONNECT 0x82', () => {
  const { client } = setup();
  const c = client(5);
  c.connect();
  c.in({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'X' } });
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x82);
});

test('[MQTT-4.12.1-2] a failed re-authentication ends the connection with DISCONNECT and the hook\'s reason code', () => {
  const { client } = setup({ enhancedAuthenticator: { methods: ['TEST'], step: () => ({ result: 'success' }) } });
  const c = client(5);
  c.channel.handleIn(
    { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 0, clientId: 'f', properties: { authenticationMethod: 'TEST' } },
    0,
  );
  c.channel.handleAuthStepResult({ result: 'success' }, 0);
  c.in({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'TEST' } });
  c.actions.push(...c.channel.handleAuthStepResult({ result: 'failure', reasonCode: 0x87 }, 0));
  const [d] = c.sent() as DisconnectPacket[];
  assert.equal(d?.reasonCode, 0x87);
  assert.ok(c.closed);
});
