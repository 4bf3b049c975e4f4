/**
 * Hardening tests: a broker with a bystander whose data must survive whatever the attacker does. After each hostile
 * input, `survived()` checks that the broker still accepts new clients, the bystander's persistent session still
 * receives, and its retained message is unchanged.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Broker, BrokerConfig, BrokerOptions, DeepPartial } from '../../src/broker/index.js';
import { startBroker } from '../helpers/broker.js';
import { RawClient, T, ack, connect, publish, subscribe, type ConnectOptions, type RawPacket } from '../helpers/raw-client.js';

export { RawClient, T };

/** Decoded PUBLISH fields the tests look at. */
export interface Publish {
  topic: string;
  qos: number;
  retain: boolean;
  packetId: number | undefined;
  payload: Buffer;
}

/** Reads a PUBLISH off the wire (the broker's output is trusted here: the codec has its own tests). */
export function parsePublish(p: RawPacket, version: 3 | 4 | 5): Publish {
  const b = p.body;
  const qos = (p.flags >> 1) & 3;
  const len = b.readUInt16BE(0);
  const topic = b.subarray(2, 2 + len).toString('utf8');
  let i = 2 + len;
  let packetId: number | undefined;
  if (qos > 0) {
    packetId = b.readUInt16BE(i);
    i += 2;
  }
  if (version === 5) {
    let n = 0;
    let mul = 1;
    for (;;) {
      const x = b[i++] ?? 0;
      n += (x & 0x7f) * mul;
      mul *= 128;
      if ((x & 0x80) === 0) break;
    }
    i += n;
  }
  return { topic, qos, retain: (p.flags & 1) === 1, packetId, payload: b.subarray(i) };
}

/** CONNACK return code (v3) or reason code (v5). */
export const connackCode = (p: RawPacket): number => p.body[1] ?? -1;
/** DISCONNECT reason code (0 when omitted). */
export const disconnectCode = (p: RawPacket): number => p.body[0] ?? 0;
/** PUBACK/PUBREC/PUBREL/PUBCOMP reason code (0 when omitted). */
export const ackCode = (p: RawPacket): number => p.body[2] ?? 0;

/** SUBACK reason codes. */
export function subackCodes(p: RawPacket, version: 3 | 4 | 5): number[] {
  let i = 2;
  if (version === 5) {
    let n = 0;
    let mul = 1;
    for (;;) {
      const x = p.body[i++] ?? 0;
      n += (x & 0x7f) * mul;
      mul *= 128;
      if ((x & 0x80) === 0) break;
    }
    i += n;
  }
  return [...p.body.subarray(i)];
}

export interface Hostile {
  broker: Broker;
  port: number;
  /** A raw client, closed in t.after. With `options`, CONNECT is sent and CONNACK 0 awaited. */
  raw(options?: ConnectOptions): Promise<RawClient>;
  /** Asserts the broker is up and the bystander's subscription, session and retained message are intact. */
  survived(): Promise<void>;
  /** Payloads the bystander (subscribed to `bystander/#`) has received so far. */
  readonly seen: string[];
}

let counter = 0;

/** Starts a broker (merged `config`) with a bystander: a v5 persistent session on `bystander/#` and a retained message. */
export async function hostile(
  t: TestContext,
  config: DeepPartial<BrokerConfig> = {},
  options: BrokerOptions = {},
): Promise<Hostile> {
  const { broker, port } = await startBroker(t, config, options);
  const raw = async (o?: ConnectOptions): Promise<RawClient> => {
    const c = await RawClient.connect(port);
    t.after(() => c.destroy());
    if (o !== undefined) {
      c.send(connect(o));
      const connack = await c.expect(T.CONNACK);
      assert.equal(connackCode(connack), 0, 'CONNACK accepted');
    }
    return c;
  };
  const owner = await raw({ version: 4, clientId: 'bystander-owner' });
  owner.send(publish({ topic: 'bystander/retained', payload: 'kept', qos: 1, retain: true, packetId: 1 }));
  await owner.expect(T.PUBACK);
  const bystander = await raw({ version: 5, clientId: 'bystander', clean: false, properties: [[0x11, 3600]] });
  bystander.send(subscribe({ version: 5, packetId: 1 }, { topic: 'bystander/#', qos: 1, retainHandling: 2 }));
  await bystander.expect(T.SUBACK);

  const seen: string[] = [];
  const survived = async (): Promise<void> => {
    const n = `n${++counter}`;
    // A new client is admitted and may publish.
    const pub = await raw({ version: 4, clientId: `probe-${n}` });
    pub.send(publish({ topic: 'bystander/live', payload: n, qos: 1, packetId: 7 }));
    await pub.expect(T.PUBACK);
    // The bystander's subscription delivers it.
    for (;;) {
      const p = await bystander.expect(T.PUBLISH, 3000);
      const m = parsePublish(p, 5);
      if (m.packetId !== undefined) bystander.send(ack(T.PUBACK, m.packetId, 0));
      seen.push(m.payload.toString());
      if (m.payload.toString() === n) break;
    }
    // The retained message is unchanged.
    const sub = await raw({ version: 4, clientId: `probe-sub-${n}` });
    sub.send(subscribe({ version: 4, packetId: 2 }, { topic: 'bystander/retained', qos: 0 }));
    await sub.expect(T.SUBACK);
    const r = parsePublish(await sub.expect(T.PUBLISH), 4);
    assert.equal(r.payload.toString(), 'kept', 'retained message intact');
    assert.equal(r.retain, true);
    pub.destroy();
    sub.destroy();
  };
  return { broker, port, raw, survived, seen };
}

/** Waits until the broker closes `c`; returns what it sent before closing. */
export function closed(c: RawClient, ms = 3000): Promise<RawPacket[]> {
  return c.waitClose(ms);
}
