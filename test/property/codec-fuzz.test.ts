/**
 * fast-check properties for the codec, with a fixed seed (fast-check prints seed and counterexample path on
 * failure; rerun with the same seed to reproduce):
 * 1. random bytes, any version, random chunking: the decoder yields packets or MqttProtocolError, never throws;
 * 2. the same for random mutations of valid packets;
 * 3. every packet the decoder accepts re-encodes to bytes that decode to the same packet;
 * 4. arbitrary valid packets round-trip: decode(encode(p)) equals p and bytes are stable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  Decoder,
  encode,
  MAX_VARIABLE_BYTE_INTEGER,
  MqttProtocolError,
  PROPERTY_DEFINITIONS,
  PropertyType,
  ReasonCodesByPacket,
  contextMask,
  type Packet,
  type Properties,
  type PropertyContext,
  type ProtocolVersion,
  type QoS,
} from '../../src/protocol/index.js';
import { samplePackets } from '../unit/protocol/fixtures.js';

const SEED = 0x7e1e5eed;
const versionArb = fc.constantFrom<ProtocolVersion | undefined>(3, 4, 5, undefined);

/** Feeds bytes in the given chunk sizes; returns decoded packets, stopping at the first error. */
function feed(bytes: Uint8Array, version: ProtocolVersion | undefined, cuts: number[]): { packets: Packet[]; error?: MqttProtocolError; decoder: Decoder } {
  const d = new Decoder(version === undefined ? {} : { protocolVersion: version });
  const packets: Packet[] = [];
  let pos = 0;
  let k = 0;
  while (pos < bytes.length) {
    const n = Math.max(1, cuts.length === 0 ? bytes.length : cuts[k++ % cuts.length]!);
    d.push(Buffer.from(bytes.subarray(pos, pos + n)));
    pos += n;
    for (let r = d.read(); r !== undefined; r = d.read()) {
      if (r instanceof MqttProtocolError) return { packets, error: r, decoder: d };
      // Anything else that is an Error would be a bug: surfaced by the assertion below.
      assert.ok(!(r instanceof Error), `unexpected ${String(r)}`);
      packets.push(r);
    }
  }
  return { packets, decoder: d };
}

/** Every accepted packet must survive encode -> decode unchanged (decoder and encoder agree on validity). */
function checkReencode(packets: Packet[], streamVersion: ProtocolVersion | undefined): void {
  let v = streamVersion;
  for (const p of packets) {
    if (p.type === 'connect') v ??= p.protocolVersion;
    const ver = p.type === 'connect' ? p.protocolVersion : v!;
    const bytes = encode(p, ver);
    const d = new Decoder({ protocolVersion: ver });
    d.push(bytes);
    assert.deepEqual(d.read(), p);
  }
}

const chunking = fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 6 });

/** Tallies outcomes so a decoder that rejects (or accepts) everything cannot pass unnoticed. */
function tally(): { seen: Map<string, number>; add(packets: Packet[], error: MqttProtocolError | undefined): void } {
  const seen = new Map<string, number>();
  return {
    seen,
    add(packets, error) {
      for (const p of packets) seen.set(p.type, (seen.get(p.type) ?? 0) + 1);
      if (error !== undefined) seen.set(error.code, (seen.get(error.code) ?? 0) + 1);
    },
  };
}

test('random bytes never make the decoder throw (100,000 cases)', () => {
  const t = tally();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 48 }), versionArb, chunking, (bytes, v, cuts) => {
      const { packets, error } = feed(bytes, v, cuts);
      t.add(packets, error);
      checkReencode(packets, v);
    }),
    { seed: SEED, numRuns: 100_000 },
  );
  assert.ok(t.seen.size >= 10, `outcomes: ${JSON.stringify([...t.seen])}`);
});

// Valid packets from every version, encoded once; mutated below.
const corpus: Array<{ v: ProtocolVersion; bytes: Buffer }> = [];
for (const v of [3, 4, 5] as const) for (const [, p] of samplePackets(v)) corpus.push({ v, bytes: encode(p, v) });

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
);

function mutate(src: Buffer, muts: Array<{ kind: string; at: number; value: number }>): Buffer {
  let b = Buffer.from(src);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'set') b[at] = m.value;
    else if (m.kind === 'flip') b[at] = b[at]! ^ (1 << m.value);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.value]), b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else b = b.subarray(0, at);
  }
  return b;
}

test('mutated valid packets never make the decoder throw (100,000 cases)', () => {
  const t = tally();
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: corpus.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      chunking,
      (index, muts, twice, cuts) => {
        const { v, bytes } = corpus[index]!;
        const mutated = mutate(bytes, muts);
        // Sometimes follow it with an intact packet, to exercise the boundary after a mutated one.
        const stream = twice ? Buffer.concat([mutated, bytes]) : mutated;
        const { packets, error } = feed(stream, v, cuts);
        t.add(packets, error);
        checkReencode(packets, v);
      },
    ),
    { seed: SEED, numRuns: 100_000 },
  );
  for (const code of ['MQTT_ERR_MALFORMED_PACKET', 'MQTT_ERR_PROTOCOL_ERROR', 'publish', 'connect', 'subscribe']) {
    assert.ok((t.seen.get(code) ?? 0) > 0, `never saw ${code}: ${JSON.stringify([...t.seen])}`);
  }
});

// ---- arbitraries for valid packets, in the shape the decoder returns ----

const safeChar = fc.constantFrom('a', 'b', 'Z', '0', '-', '_', ' ', 'ü', '€', '😀', '\uFEFF', '$');
const text = fc.string({ unit: safeChar, maxLength: 6 });
const level = fc.string({ unit: safeChar, maxLength: 4 });
const topicName = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')).filter((t) => t.length > 0);
const topicFilter = fc
  .array(fc.oneof(level, fc.constant('+')), { minLength: 1, maxLength: 4 })
  .chain((l) => fc.boolean().map((hash) => (hash ? [...l, '#'] : l).join('/')))
  .filter((t) => t.length > 0);
const bin = fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u));
const packetId = fc.integer({ min: 1, max: 0xffff });
const qos = fc.constantFrom<QoS>(0, 1, 2);

function valueArb(name: string, type: number, min: number | undefined, max: number | undefined): fc.Arbitrary<unknown> {
  switch (type) {
    case PropertyType.Byte:
      return fc.integer({ min: min ?? 0, max: max ?? 255 });
    case PropertyType.TwoByteInteger:
      return fc.integer({ min: min ?? 0, max: max ?? 0xffff });
    case PropertyType.FourByteInteger:
      return fc.integer({ min: min ?? 0, max: max ?? 0xffffffff });
    case PropertyType.VariableByteInteger:
      return fc.integer({ min: min ?? 0, max: max ?? MAX_VARIABLE_BYTE_INTEGER });
    case PropertyType.Utf8String:
      return name === 'responseTopic' ? topicName : text;
    case PropertyType.BinaryData:
      return bin;
    default:
      return fc.tuple(text, text);
  }
}

/** Properties allowed in `context`, driven by the same table as the codec. */
function propertiesArb(context: PropertyContext): fc.Arbitrary<Properties | undefined> {
  const mask = contextMask(context);
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const d of PROPERTY_DEFINITIONS) {
    if ((d.mask & mask) === 0) continue;
    const one = valueArb(d.name, d.type, d.min, d.max);
    model[d.name] = d.repeatable ? fc.array(one, { minLength: 1, maxLength: context === 'subscribe' ? 1 : 3 }) : one;
  }
  return fc.record(model, { requiredKeys: [] }).map((r) => {
    const props = { ...r } as Properties;
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) delete props.authenticationData;
    return Object.keys(props).length === 0 ? undefined : props;
  });
}

const withProps = <T extends object>(p: T, props: Properties | undefined): T => (props === undefined ? p : { ...p, properties: props });

function reasonArb(codes: readonly number[]): fc.Arbitrary<number> {
  return fc.constantFrom(...codes);
}

function packetArb(v: ProtocolVersion): fc.Arbitrary<Packet> {
  const v5 = v === 5;
  const props = (c: PropertyContext): fc.Arbitrary<Properties | undefined> => (v5 ? propertiesArb(c) : fc.constant(undefined));
  const connect = fc
    .record({
      cleanStart: fc.boolean(), keepAlive: fc.integer({ min: 0, max: 0xffff }), clientId: text,
      will: fc.option(fc.record({ topic: topicName, payload: bin, qos, retain: fc.boolean(), properties: props('will') }), { nil: undefined }),
      username: fc.option(text, { nil: undefined }), password: fc.option(bin, { nil: undefined }), properties: props('connect'),
    })
    .map((r): Packet => {
      const p: Packet = { type: 'connect', protocolName: v === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: v, cleanStart: r.cleanStart, keepAlive: r.keepAlive, clientId: r.clientId };
      if (r.will !== undefined) p.will = withProps({ topic: r.will.topic, payload: r.will.payload, qos: r.will.qos, retain: r.will.retain }, r.will.properties);
      if (r.username !== undefined) p.username = r.username;
      // [MQTT-3.1.2-22] before v5 a password needs a user name.
      if (r.password !== undefined && (v5 || r.username !== undefined)) p.password = r.password;
      return withProps(p, r.properties);
    });
  const connack = fc
    .record({ sessionPresent: fc.boolean(), reasonCode: v5 ? reasonArb(ReasonCodesByPacket.connack) : fc.integer({ min: 0, max: 5 }), properties: props('connack') })
    // [MQTT-3.2.2-4] [MQTT-3.2.2-6] Session Present only with success; MQTT 3.1 has no such flag.
    .map((r): Packet => withProps({ type: 'connack', sessionPresent: v !== 3 && r.reasonCode === 0 && r.sessionPresent, reasonCode: r.reasonCode }, r.properties));
  const publish = fc
    .record({ topic: topicName, payload: fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)), qos, retain: fc.boolean(), dup: fc.boolean(), packetId, properties: props('publish'), emptyTopic: fc.boolean() })
    .map((r): Packet => {
      const aliasOnly = v5 && r.emptyTopic && r.properties?.topicAlias !== undefined;
      const p: Packet = { type: 'publish', topic: aliasOnly ? '' : r.topic, payload: r.payload, qos: r.qos, retain: r.retain, dup: r.qos > 0 && r.dup };
      if (r.qos > 0) p.packetId = r.packetId;
      return withProps(p, r.properties);
    });
  const ack = (type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'): fc.Arbitrary<Packet> =>
    fc.record({ packetId, reasonCode: reasonArb(ReasonCodesByPacket[type]), properties: props(type) }).map((r): Packet =>
      v5 ? withProps({ type, packetId: r.packetId, reasonCode: r.reasonCode }, r.properties) : { type, packetId: r.packetId },
    );
  const subscription = fc.record({ topicFilter, qos, noLocal: fc.boolean(), retainAsPublished: fc.boolean(), retainHandling: fc.constantFrom<0 | 1 | 2>(0, 1, 2) }).map((s) =>
    v5 ? { ...s } : { ...s, noLocal: false, retainAsPublished: false, retainHandling: 0 as const },
  );
  const subscribe = fc
    .record({ packetId, subscriptions: fc.array(subscription, { minLength: 1, maxLength: 3 }), properties: props('subscribe') })
    .map((r): Packet => withProps({ type: 'subscribe', packetId: r.packetId, subscriptions: r.subscriptions }, r.properties));
  const suback = fc
    .record({ packetId, reasonCodes: fc.array(v5 ? reasonArb(ReasonCodesByPacket.suback) : fc.constantFrom(0, 1, 2, 0x80), { minLength: 1, maxLength: 4 }), properties: props('suback') })
    .map((r): Packet => withProps({ type: 'suback', packetId: r.packetId, reasonCodes: r.reasonCodes }, r.properties));
  const unsubscribe = fc
    .record({ packetId, topicFilters: fc.array(topicFilter, { minLength: 1, maxLength: 3 }), properties: props('unsubscribe') })
    .map((r): Packet => withProps({ type: 'unsubscribe', packetId: r.packetId, topicFilters: r.topicFilters }, r.properties));
  const unsuback = fc
    .record({ packetId, reasonCodes: fc.array(reasonArb(ReasonCodesByPacket.unsuback), { minLength: 1, maxLength: 4 }), properties: props('unsuback') })
    .map((r): Packet => (v5 ? withProps({ type: 'unsuback', packetId: r.packetId, reasonCodes: r.reasonCodes }, r.properties) : { type: 'unsuback', packetId: r.packetId, reasonCodes: [] }));
  const disconnect = fc
    .record({ reasonCode: reasonArb(ReasonCodesByPacket.disconnect), properties: props('disconnect') })
    .map((r): Packet => (v5 ? withProps({ type: 'disconnect', reasonCode: r.reasonCode }, r.properties) : { type: 'disconnect' }));
  const arbs: Array<fc.Arbitrary<Packet>> = [
    connect, connack, publish, ack('puback'), ack('pubrec'), ack('pubrel'), ack('pubcomp'), subscribe, suback, unsubscribe, unsuback,
    fc.constant<Packet>({ type: 'pingreq' }), fc.constant<Packet>({ type: 'pingresp' }), disconnect,
  ];
  if (v5) {
    // Section 3.15.2.2.2: every AUTH but the bare Success form (Remaining Length 0) names its Authentication Method.
    const auth = fc.record({ reasonCode: reasonArb(ReasonCodesByPacket.auth), properties: props('auth') }).map((r): Packet =>
      r.reasonCode === 0 && r.properties === undefined
        ? { type: 'auth', reasonCode: 0 }
        : { type: 'auth', reasonCode: r.reasonCode, properties: { authenticationMethod: 'm', ...r.properties } },
    );
    arbs.push(auth);
  }
  return fc.oneof(...arbs);
}

test('arbitrary valid packets round-trip through encode and decode (30,000 cases)', () => {
  const arb = fc.constantFrom<ProtocolVersion>(3, 4, 5).chain((v) => fc.tuple(fc.constant(v), packetArb(v)));
  fc.assert(
    fc.property(arb, chunking, ([v, packet], cuts) => {
      const bytes = encode(packet, v);
      const { packets, error } = feed(bytes, v, cuts);
      assert.equal(error, undefined);
      assert.deepEqual(packets, [packet]);
      assert.deepEqual(encode(packets[0]!, v), bytes);
    }),
    { seed: SEED, numRuns: 30_000 },
  );
});
