/** Shared plumbing for the conformance suites: broker per test, raw and MQTT.js clients, close assertions. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import mqtt from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import {
  RawClient,
  T,
  TYPE_NAMES,
  parseConnack,
  parseDisconnect,
  parsePublish,
  publish,
  rawConnect,
  rawSession,
  rawSubscribe,
  ack,
  type ConnectOptions,
  type Publish,
  type RawPacket,
  type Version,
} from '../helpers/raw-client.js';

export type BrokerConfigInput = Parameters<typeof startBroker>[1];
export type BrokerOptionsInput = Parameters<typeof startBroker>[2];

export interface TestBroker {
  port: number;
  url: string;
  /** For tests of server-initiated shutdown. */
  close(): Promise<void>;
}

const cleanups = new WeakMap<TestContext, Array<() => unknown>>();

/** Client cleanups run before the broker closes (hooks run in registration order), so close never waits on them. */
function addCleanup(t: TestContext, fn: () => unknown): void {
  const list = cleanups.get(t);
  if (list) list.push(fn);
  else t.after(fn);
}

export async function broker(t: TestContext, config?: BrokerConfigInput, options?: BrokerOptionsInput): Promise<TestBroker> {
  const list: Array<() => unknown> = [];
  cleanups.set(t, list);
  t.after(async () => {
    for (const fn of list.splice(0)) await fn();
  });
  const b = await startBroker(t, config, options);
  return { port: b.port, url: b.url, close: () => b.broker.close(500) };
}

let seq = 0;
/** A client id / topic suffix unique within this process. */
export function uid(prefix = 'c'): string {
  seq += 1;
  return `${prefix}${process.pid}x${seq}`;
}

/** Raw connection that got CONNACK 0; destroyed after the test. */
export async function raw(t: TestContext, port: number, o: ConnectOptions = {}): Promise<RawClient> {
  const c = await rawSession(port, o);
  addCleanup(t, () => c.destroy());
  return c;
}

/** Raw connection with whatever CONNACK came back; destroyed after the test. */
export async function rawAny(
  t: TestContext,
  port: number,
  o: ConnectOptions = {},
): Promise<Awaited<ReturnType<typeof rawConnect>>> {
  const r = await rawConnect(port, o);
  addCleanup(t, () => r.client.destroy());
  return r;
}

/** Bare socket, nothing sent yet; destroyed after the test. */
export async function socket(t: TestContext, port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  addCleanup(t, () => c.destroy());
  return c;
}

/** MQTT.js client without auto-reconnect; force-ended after the test. */
export async function mq(t: TestContext, url: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  addCleanup(t, () => c.endAsync(true));
  return c;
}

/** Subscribes a raw client and asserts the granted codes. */
export async function sub(c: RawClient, version: Version, filter: string, qos = 0, packetId = 1): Promise<void> {
  const codes = await rawSubscribe(c, version, packetId, { topic: filter, qos });
  assert.deepEqual(codes, [qos], `SUBACK for ${filter}`);
}

/** Next packet must be a PUBLISH; parsed. */
export async function nextPublish(c: RawClient, version: Version, timeoutMs = 2000): Promise<Publish> {
  return parsePublish(await c.expect(T.PUBLISH, timeoutMs), version);
}

/** QoS 1 publish from a raw client, waiting for its PUBACK. */
export async function pub1(c: RawClient, version: Version, topic: string, payload: string, packetId: number): Promise<void> {
  c.send(publish({ version, topic, payload, qos: 1, packetId }));
  const p = await c.expect(T.PUBACK);
  assert.equal(p.body.readUInt16BE(0), packetId);
}

/** Acknowledges a received PUBLISH according to its QoS (completing the QoS 2 flow). */
export async function ackPublish(c: RawClient, p: Publish): Promise<void> {
  if (p.qos === 1 && p.packetId !== undefined) c.send(ack(T.PUBACK, p.packetId));
  if (p.qos === 2 && p.packetId !== undefined) {
    c.send(ack(T.PUBREC, p.packetId));
    const rel = await c.expect(T.PUBREL);
    c.send(ack(T.PUBCOMP, rel.body.readUInt16BE(0)));
  }
}

function describe(p: RawPacket): string {
  return `${TYPE_NAMES[p.type] ?? p.type} ${p.raw.toString('hex')}`;
}

/**
 * The broker must close the connection because of an error in a packet.
 * [MQTT-4.13.1-1] the connection MUST close. v5 after CONNACK: the spec says SHOULD send a DISCONNECT with the
 * reason code first, issue 3 makes it a requirement, so one DISCONNECT carrying one of `reasonCodes` must come last.
 * v5 CONNECT errors: a CONNACK is optional (MAY), but if sent its code must be one of `reasonCodes`.
 * v3: no DISCONNECT exists server-to-client, the connection just closes.
 */
export async function expectErrorClose(
  c: RawClient,
  version: Version,
  reasonCodes: readonly number[],
  phase: 'connect' | 'connected' = 'connected',
  timeoutMs = 3000,
): Promise<void> {
  const unread = await c.waitClose(timeoutMs);
  const names = unread.map(describe).join(', ');
  if (phase === 'connect') {
    const connacks = unread.filter((p) => p.type === T.CONNACK);
    assert.ok(connacks.length <= 1, `at most one CONNACK, got ${names}`);
    assert.ok(unread.every((p) => p.type === T.CONNACK), `only a CONNACK may precede the close, got ${names}`);
    const first = connacks[0];
    if (first && version === 5) {
      const code = parseConnack(first, 5).code;
      assert.ok(reasonCodes.includes(code), `CONNACK reason 0x${code.toString(16)} not in ${hexList(reasonCodes)}`);
    } else if (first) {
      assert.notEqual(parseConnack(first, version).code, 0, 'a refused CONNECT must not be accepted');
    }
    return;
  }
  const discs = unread.filter((p) => p.type === T.DISCONNECT);
  if (version !== 5) {
    assert.equal(discs.length, 0, `a v3 server never sends DISCONNECT, got ${names}`);
    return;
  }
  assert.equal(discs.length, 1, `expected one DISCONNECT before the close, got [${names}]`);
  const last = unread[unread.length - 1];
  assert.equal(last?.type, T.DISCONNECT, `DISCONNECT must be the last packet, got [${names}]`);
  const code = parseDisconnect(last).reasonCode;
  assert.ok(reasonCodes.includes(code), `DISCONNECT reason 0x${code.toString(16)} not in ${hexList(reasonCodes)}`);
}

export function hexList(codes: readonly number[]): string {
  return `[${codes.map((c) => `0x${c.toString(16)}`).join(', ')}]`;
}

/** Another client can still do a QoS 1 round trip through the broker. */
export async function assertStillServed(t: TestContext, port: number): Promise<void> {
  const topic = `alive/${uid('t')}`;
  const s = await raw(t, port, { version: 4, clientId: uid('alive-sub') });
  await sub(s, 4, topic, 1);
  const p = await raw(t, port, { version: 4, clientId: uid('alive-pub') });
  await pub1(p, 4, topic, 'still here', 9);
  const got = await nextPublish(s, 4);
  assert.equal(got.topic, topic);
  assert.equal(got.payload.toString(), 'still here');
  s.destroy();
  p.destroy();
}

/** Resolves with the next message MQTT.js delivers on `client`, or rejects after timeoutMs. */
export function nextMessage(
  client: mqtt.MqttClient,
  timeoutMs = 2000,
): Promise<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }> {
  return new Promise((resolve, reject) => {
    const onMsg = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      clearTimeout(timer);
      client.off('message', onMsg);
      resolve({ topic, payload, packet });
    };
    const timer = setTimeout(() => {
      client.off('message', onMsg);
      reject(new Error(`no message within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('message', onMsg);
  });
}

/** Collects every MQTT.js message for `ms` milliseconds. */
export function collectMessages(client: mqtt.MqttClient, ms: number): Promise<Array<{ topic: string; payload: string; packet: mqtt.IPublishPacket }>> {
  return new Promise((resolve) => {
    const got: Array<{ topic: string; payload: string; packet: mqtt.IPublishPacket }> = [];
    const onMsg = (topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      got.push({ topic, payload: payload.toString(), packet });
    };
    client.on('message', onMsg);
    setTimeout(() => {
      client.off('message', onMsg);
      resolve(got);
    }, ms);
  });
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
