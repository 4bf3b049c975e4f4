/** MQTT 5 enhanced authentication (section 4.12) in the client, against the telemq broker's EnhancedAuthenticator. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  AuthHandlerError,
  connect,
  ConnectionRefusedError,
  MqttError,
  ServerDisconnectError,
  type ConnectOptions,
} from '../../src/client/index.js';
import type { AuthStep, EnhancedAuthenticator } from '../../src/broker/index.js';
import type { Packet } from '../../src/protocol/index.js';
import { startBroker } from '../helpers/broker.js';
import { scriptedBroker } from '../helpers/scripted-broker.js';
import { Proxy, type WirePacket } from './client-proxy.js';

// A missing packet shows as a failed test, not a hung run.
const BOUNDED = { timeout: 15_000 };
const METHOD = 'TEST-HMAC-SHA256';
const SECRET = Buffer.from('meter-7 shared secret');
const DISCONNECT = 14;
const AUTH = 15;

const hmac = (secret: Buffer, nonce: Buffer | undefined): Buffer => createHmac('sha256', secret).update(nonce ?? Buffer.alloc(0)).digest();

/**
 * Challenge-response on the broker: each exchange (CONNECT or AUTH 0x19) gets a fresh nonce; the client answers
 * HMAC(secret, nonce). After `rounds` right answers: success with 'welcome'; a wrong one: failure 0x87.
 */
function hmacAuthenticator(rounds = 1): { hook: EnhancedAuthenticator; steps: AuthStep[]; nonces: Buffer[] } {
  const steps: AuthStep[] = [];
  const nonces: Buffer[] = [];
  const open = new Map<string, { nonce: Buffer; round: number }>();
  const challenge = (clientId: string, round: number): { result: 'continue'; data: Buffer } => {
    const nonce = randomBytes(16);
    nonces.push(nonce);
    open.set(clientId, { nonce, round });
    return { result: 'continue', data: nonce };
  };
  const hook: EnhancedAuthenticator = {
    methods: [METHOD],
    step(request) {
      steps.push(request);
      const state = request.initial ? undefined : open.get(request.clientId);
      if (state === undefined) return challenge(request.clientId, 1);
      const expected = hmac(SECRET, state.nonce);
      if (request.data === undefined || request.data.length !== expected.length || !timingSafeEqual(request.data, expected)) {
        open.delete(request.clientId);
        return { result: 'failure', reasonCode: 0x87, reason: 'wrong answer' };
      }
      if (state.round < rounds) return challenge(request.clientId, state.round + 1);
      open.delete(request.clientId);
      return { result: 'success', data: Buffer.from('welcome') };
    },
  };
  return { hook, steps, nonces };
}

interface HandlerCall {
  method: string;
  data: Buffer | undefined;
  reasonCode: number;
}

/** The client side: answers with the HMAC; `answer` may replace the secret or throw for a given call (1-based). */
function hmacClient(answer?: (call: number, nonce: Buffer | undefined) => Buffer | Promise<Buffer> | undefined): { options: ConnectOptions; calls: HandlerCall[] } {
  const calls: HandlerCall[] = [];
  const options: ConnectOptions = {
    authenticationMethod: METHOD,
    authenticationData: Buffer.from('meter-7'),
    onAuth: (method, data, reasonCode) => {
      calls.push({ method, data, reasonCode });
      return answer?.(calls.length, data) ?? hmac(SECRET, data);
    },
  };
  return { options, calls };
}

const authCodes = (packets: WirePacket[]): number[] => packets.filter((p) => p.type === AUTH).map((p) => p.bytes[2] ?? 0);
const disconnectCodes = (packets: WirePacket[]): number[] => packets.filter((p) => p.type === DISCONNECT).map((p) => p.bytes[2] ?? 0);

test('[MQTT-4.12.0-2] [MQTT-4.12.0-3] [MQTT-4.12.0-5] onAuth answers the AUTH 0x18 challenge with AUTH 0x18 and the same method', BOUNDED, async (t) => {
  const { hook, steps, nonces } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const { options, calls } = hmacClient();
  const client = await connect(broker.url, { ...options, clientId: 'meter-7', reconnect: false });
  t.after(() => client.end());
  // The CONNECT carried the method and the initial data.
  assert.equal(steps[0]?.initial, true);
  assert.equal(steps[0]?.method, METHOD);
  assert.deepEqual(steps[0]?.data, Buffer.from('meter-7'));
  assert.deepEqual(calls, [{ method: METHOD, data: nonces[0], reasonCode: 0x18 }]);
  // The broker checks that the answer came in AUTH 0x18 with the same method (it refuses with 0x82 otherwise);
  // the client checked the CONNACK's method.
  assert.equal(steps.length, 2);
  assert.equal(client.connected, true);
  assert.deepEqual(await client.subscribe('auth/t', { qos: 1 }), [1]);
});

test('[MQTT-4.12.0-4] a wrong answer: connect() rejects with the hook\'s reason code from CONNACK', BOUNDED, async (t) => {
  const { hook } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const { options, calls } = hmacClient((_call, nonce) => hmac(Buffer.from('wrong secret'), nonce));
  await assert.rejects(connect(broker.url, { ...options, reconnect: false }), (err: unknown) => {
    assert.ok(err instanceof ConnectionRefusedError);
    assert.equal(err.returnCode, 0x87);
    return true;
  });
  assert.equal(calls.length, 1);
});

test('[MQTT-4.12.0-3] a two-round exchange: onAuth is called per AUTH 0x18, each answer with the method', BOUNDED, async (t) => {
  const { hook, steps, nonces } = hmacAuthenticator(2);
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const { options, calls } = hmacClient();
  const client = await connect(broker.url, { ...options, reconnect: false });
  t.after(() => client.end());
  assert.equal(nonces.length, 2);
  assert.notDeepEqual(nonces[0], nonces[1]);
  assert.deepEqual(calls.map((c) => c.data), nonces);
  assert.deepEqual(calls.map((c) => c.reasonCode), [0x18, 0x18]);
  assert.equal(steps.length, 3);
  assert.equal(client.connected, true);
});

test('[MQTT-4.12.1-1] reauthenticate(): AUTH 0x19 with the same method, challenge answered, resolves on AUTH 0x00; the connection stays up', BOUNDED, async (t) => {
  const { hook, steps, nonces } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const { options, calls } = hmacClient();
  const client = await connect(proxy.url, { ...options, reconnect: false });
  t.after(() => client.end());
  let offline = false;
  client.on('offline', () => (offline = true));
  const properties = await client.reauthenticate(Buffer.from('again'));
  assert.deepEqual(properties?.authenticationData, Buffer.from('welcome'));
  assert.equal(properties?.authenticationMethod, METHOD);
  const reauth = steps.filter((s) => s.reauthenticate);
  assert.equal(reauth.length, 2, 'AUTH 0x19 and the answer reached the hook');
  assert.equal(reauth[0]?.method, METHOD);
  assert.deepEqual(reauth[0]?.data, Buffer.from('again'));
  assert.deepEqual(calls[1], { method: METHOD, data: nonces[1], reasonCode: 0x18 });
  // On the wire: the initial answer (0x18), then re-authentication (0x19) and its answer (0x18).
  assert.deepEqual(authCodes(proxy.connections[0]?.up ?? []), [0x18, 0x19, 0x18]);
  assert.equal(offline, false);
  assert.equal(client.connected, true);
  assert.equal((await client.publish('auth/after', 'x', { qos: 1 })).reasonCode, 0);
  // A second one works as well (the first has settled).
  await client.reauthenticate();
  assert.deepEqual(steps.filter((s) => s.reauthenticate)[2]?.data, Buffer.from('meter-7'), 'data defaults to authenticationData');
});

test('[MQTT-4.12.1-2] a refused re-authentication: reauthenticate() rejects with the DISCONNECT code; the reconnect redoes the exchange', BOUNDED, async (t) => {
  const { hook, steps } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  // The second answer (the re-authentication's) is wrong.
  const { options, calls } = hmacClient((call, nonce) => (call === 2 ? hmac(Buffer.from('stale secret'), nonce) : undefined));
  const client = await connect(broker.url, { ...options, reconnect: { initialDelay: 10, maxDelay: 20 } });
  t.after(() => client.end());
  client.on('error', () => {});
  const back = new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await assert.rejects(client.reauthenticate(), (err: unknown) => {
    assert.ok(err instanceof ServerDisconnectError);
    assert.equal(err.reasonCode, 0x87);
    return true;
  });
  await back;
  // A fresh CONNECT with the method, a fresh challenge, answered right.
  assert.equal(steps.at(-2)?.initial, true);
  assert.deepEqual(steps.at(-2)?.data, Buffer.from('meter-7'));
  assert.equal(calls.length, 3);
  assert.equal(client.connected, true);
});

test('after a lost connection every reconnect redoes the exchange; an onAuth failure on the way is an error event, not the end', BOUNDED, async (t) => {
  const { hook, steps } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const { options, calls } = hmacClient((call) => {
    if (call === 2) throw new Error('token store unavailable');
    return undefined;
  });
  const client = await connect(proxy.url, { ...options, reconnect: { initialDelay: 10, maxDelay: 20 } });
  t.after(() => client.end());
  const errors: Error[] = [];
  client.on('error', (e) => errors.push(e));
  const back = new Promise<void>((resolve) => client.once('connect', () => resolve()));
  proxy.cut();
  await back;
  assert.equal(calls.length, 3);
  assert.equal(steps.filter((s) => s.initial).length, 3, 'three CONNECTs, each with the method');
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof AuthHandlerError);
  assert.equal((errors[0].cause as Error).message, 'token store unavailable');
  // The failed attempt said why before closing.
  assert.deepEqual(disconnectCodes(proxy.connections[1]?.up ?? []), [0x83]);
});

test('onAuth throwing at connect: DISCONNECT 0x83, connect() rejects with AuthHandlerError carrying the cause', BOUNDED, async (t) => {
  const { hook } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const cause = new Error('no key');
  const { options } = hmacClient(() => {
    throw cause;
  });
  await assert.rejects(connect(proxy.url, { ...options, reconnect: false }), (err: unknown) => {
    assert.ok(err instanceof AuthHandlerError);
    assert.equal(err.code, 'MQTT_ERR_AUTH_HANDLER');
    assert.equal(err.cause, cause);
    return true;
  });
  await proxy.until(() => disconnectCodes(proxy.connections[0]?.up ?? []).length > 0);
  assert.deepEqual(disconnectCodes(proxy.connections[0]?.up ?? []), [0x83]);
});

test('onAuth rejecting during re-authentication: DISCONNECT 0x83, reauthenticate() rejects, the client reconnects', BOUNDED, async (t) => {
  const { hook } = hmacAuthenticator();
  const broker = await startBroker(t, {}, { enhancedAuthenticator: hook });
  const proxy = await Proxy.start(broker.port);
  t.after(() => proxy.close());
  const { options, calls } = hmacClient((call) => (call === 2 ? Promise.reject(new Error('hsm timeout')) : undefined));
  const client = await connect(proxy.url, { ...options, reconnect: { initialDelay: 10, maxDelay: 20 } });
  t.after(() => client.end());
  const back = new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await assert.rejects(client.reauthenticate(), (err: unknown) => err instanceof AuthHandlerError && (err.cause as Error).message === 'hsm timeout');
  await proxy.until(() => disconnectCodes(proxy.connections[0]?.up ?? []).length > 0);
  assert.deepEqual(disconnectCodes(proxy.connections[0]?.up ?? []), [0x83]);
  await back;
  assert.equal(calls.length, 3);
});

test('[MQTT-4.12.0-7] reauthenticate() without an Authentication Method rejects before sending; 3.1.1 refuses the option', BOUNDED, async (t) => {
  const broker = await startBroker(t);
  const client = await connect(broker.url, { reconnect: false });
  t.after(() => client.end());
  await assert.rejects(client.reauthenticate(), (err: unknown) => err instanceof MqttError && err.code === 'MQTT_ERR_NO_AUTH_METHOD');
  assert.equal(client.connected, true);
  await assert.rejects(connect(broker.url, { protocolVersion: 4, authenticationMethod: METHOD }), (err: unknown) => err instanceof MqttError && err.code === 'MQTT_ERR_INVALID_OPTIONS');
  await assert.rejects(connect(broker.url, { authenticationData: Buffer.from('x') }), (err: unknown) => err instanceof MqttError && err.code === 'MQTT_ERR_INVALID_OPTIONS');
});

const protocolError = (rule: string) => (err: unknown) => err instanceof MqttError && err.code === 'MQTT_ERR_PROTOCOL_ERROR' && err.rule === rule;
const sentDisconnect = (received: Packet[]): number | undefined => {
  const d = received.find((p) => p.type === 'disconnect');
  return d?.type === 'disconnect' ? d.reasonCode : undefined;
};

test('[MQTT-4.12.0-5] a successful CONNACK with another method: DISCONNECT 0x82, connect() rejects', BOUNDED, async (t) => {
  const broker = await scriptedBroker(t, 5, (send) => send({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { authenticationMethod: 'OTHER' } }));
  const { options } = hmacClient();
  await assert.rejects(connect(broker.url, { ...options, reconnect: false }), protocolError('MQTT-4.12.0-5'));
  await broker.firstClose;
  assert.equal(sentDisconnect(broker.received), 0x82);
});

test('[MQTT-4.12.0-5] an AUTH challenge with another method: DISCONNECT 0x82, onAuth not called', BOUNDED, async (t) => {
  const broker = await scriptedBroker(t, 5, (send) => send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'OTHER', authenticationData: Buffer.from('n') } }));
  const { options, calls } = hmacClient();
  await assert.rejects(connect(broker.url, { ...options, reconnect: false }), protocolError('MQTT-4.12.0-5'));
  await broker.firstClose;
  assert.equal(sentDisconnect(broker.received), 0x82);
  assert.equal(calls.length, 0);
});

test('[MQTT-4.12.0-6] AUTH to a client whose CONNECT had no method: DISCONNECT 0x82', BOUNDED, async (t) => {
  const broker = await scriptedBroker(t, 5, (send) => send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD } }));
  await assert.rejects(connect(broker.url, { reconnect: false }), protocolError('MQTT-4.12.0-6'));
  await broker.firstClose;
  assert.equal(sentDisconnect(broker.received), 0x82);
  const connectPacket = broker.received[0];
  assert.ok(connectPacket?.type === 'connect' && connectPacket.properties?.authenticationMethod === undefined);
});
