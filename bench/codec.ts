/**
 * Codec benchmark: telemq's encoder/decoder against mqtt-packet in the same process.
 * Each case runs a warm-up round, then ROUNDS timed rounds of ~ROUND_MS; the median ops/s is reported.
 * Last line of output: one JSON object of ratios (ours / mqtt-packet).
 */
import * as mqttPacket from 'mqtt-packet';
import { Decoder, encode, type Packet, type ProtocolVersion } from '../src/protocol/index.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 250);

interface Case {
  name: string;
  version: ProtocolVersion;
  ours: Packet;
  theirs: mqttPacket.Packet;
}

function payload(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31) & 0xff;
  return b;
}

function publishCase(size: number, version: ProtocolVersion): Case {
  const p = payload(size);
  const topic = 'plant/line-3/press-07/temperature';
  if (version === 5) {
    return {
      name: `publish_${size >= 1024 ? `${size / 1024}k` : size}_v5`,
      version,
      ours: {
        type: 'publish', topic, payload: p, qos: 1, retain: false, dup: false, packetId: 42,
        properties: { payloadFormatIndicator: 0, messageExpiryInterval: 3600, contentType: 'application/octet-stream', userProperties: [['site', 'berlin']] },
      },
      theirs: {
        cmd: 'publish', topic, payload: p, qos: 1, retain: false, dup: false, messageId: 42,
        properties: { payloadFormatIndicator: false, messageExpiryInterval: 3600, contentType: 'application/octet-stream', userProperties: { site: 'berlin' } },
      },
    };
  }
  return {
    name: `publish_${size >= 1024 ? `${size / 1024}k` : size}_v4`,
    version,
    ours: { type: 'publish', topic, payload: p, qos: 1, retain: false, dup: false, packetId: 42 },
    theirs: { cmd: 'publish', topic, payload: p, qos: 1, retain: false, dup: false, messageId: 42 },
  };
}

const cases: Case[] = [
  publishCase(16, 4),
  publishCase(1024, 4),
  publishCase(65536, 4),
  publishCase(16, 5),
  publishCase(1024, 5),
  publishCase(65536, 5),
  {
    name: 'subscribe_v4',
    version: 4,
    ours: { type: 'subscribe', packetId: 7, subscriptions: [{ topicFilter: 'plant/+/press-07/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }, { topicFilter: 'alarms/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 }] },
    theirs: { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'plant/+/press-07/#', qos: 1 }, { topic: 'alarms/#', qos: 2 }] },
  },
  {
    name: 'subscribe_v5',
    version: 5,
    ours: { type: 'subscribe', packetId: 7, properties: { subscriptionIdentifiers: [12] }, subscriptions: [{ topicFilter: 'plant/+/press-07/#', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 1 }] },
    theirs: { cmd: 'subscribe', messageId: 7, properties: { subscriptionIdentifier: 12 }, subscriptions: [{ topic: 'plant/+/press-07/#', qos: 1, nl: true, rap: true, rh: 1 }] },
  },
  {
    name: 'connect_v4',
    version: 4,
    ours: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, cleanStart: true, keepAlive: 60, clientId: 'press-07-gateway', username: 'gateway', password: Buffer.from('s3cret'), will: { topic: 'plant/line-3/press-07/status', payload: Buffer.from('offline'), qos: 1, retain: true } },
    theirs: { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'press-07-gateway', username: 'gateway', password: Buffer.from('s3cret'), will: { topic: 'plant/line-3/press-07/status', payload: Buffer.from('offline'), qos: 1, retain: true } },
  },
  {
    name: 'connect_v5',
    version: 5,
    ours: { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 60, clientId: 'press-07-gateway', username: 'gateway', password: Buffer.from('s3cret'), properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 } },
    theirs: { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'press-07-gateway', username: 'gateway', password: Buffer.from('s3cret'), properties: { sessionExpiryInterval: 3600, receiveMaximum: 100 } },
  },
];

let sink = 0;

/** Runs fn in batches for about ms milliseconds; returns ops/s. */
function measure(fn: (n: number) => void, ms: number): number {
  let ops = 0;
  let batch = 64;
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  for (;;) {
    fn(batch);
    ops += batch;
    const elapsed = process.hrtime.bigint() - start;
    if (elapsed >= limit) return (ops * 1e9) / Number(elapsed);
    if (batch < 65536) batch *= 2;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Warms both sides up, then alternates timed rounds so machine noise hits both alike. */
function benchPair(ours: (n: number) => void, theirs: (n: number) => void): [number, number] {
  measure(ours, ROUND_MS);
  measure(theirs, ROUND_MS);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(measure(ours, ROUND_MS));
    b.push(measure(theirs, ROUND_MS));
  }
  return [median(a), median(b)];
}

function theirsOpts(version: ProtocolVersion): { protocolVersion: number } {
  return { protocolVersion: version };
}

const rows: Array<{ name: string; op: string; ours: number; theirs: number }> = [];

for (const c of cases) {
  const ourBytes = encode(c.ours, c.version);
  const theirBytes = mqttPacket.generate(c.theirs, theirsOpts(c.version));
  if (!ourBytes.equals(theirBytes) && !c.name.startsWith('connect')) {
    // Byte-identical except where mqtt-packet orders fields differently; keep the comparison honest.
    console.error(`note: ${c.name}: encodings differ (ours ${ourBytes.length} B, theirs ${theirBytes.length} B)`);
  }
  const [encOurs, encTheirs] = benchPair(
    (n) => {
      for (let i = 0; i < n; i++) sink += encode(c.ours, c.version).length;
    },
    (n) => {
      for (let i = 0; i < n; i++) sink += mqttPacket.generate(c.theirs, theirsOpts(c.version)).length;
    },
  );
  rows.push({ name: c.name, op: 'encode', ours: encOurs, theirs: encTheirs });

  // Decode: one packet per chunk, a long-lived streaming decoder/parser on each side.
  const decoder = new Decoder({ protocolVersion: c.version });
  if (c.ours.type === 'connect') decoder.protocolVersion = undefined;
  const parser = mqttPacket.parser(theirsOpts(c.version));
  let got = 0;
  parser.on('packet', () => {
    got++;
  });
  parser.on('error', (err: Error) => {
    throw err;
  });
  const [decOurs, decTheirs] = benchPair((n) => {
    for (let i = 0; i < n; i++) {
      if (c.ours.type === 'connect') decoder.protocolVersion = undefined;
      decoder.push(ourBytes);
      const pk = decoder.read();
      if (pk === undefined || pk instanceof Error) throw new Error(`decode failed: ${String(pk)}`);
      sink += pk.type.length;
    }
  }, (n) => {
    for (let i = 0; i < n; i++) parser.parse(ourBytes);
  });
  if (got === 0) throw new Error('mqtt-packet parsed nothing');
  rows.push({ name: c.name, op: 'decode', ours: decOurs, theirs: decTheirs });
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(12);
console.log(`${'case'.padEnd(18)} ${'op'.padEnd(7)} ${'telemq ops/s'.padStart(12)} ${'mqtt-packet'.padStart(12)}  ratio`);
const ratios: Record<string, number> = {};
for (const r of rows) {
  const ratio = r.ours / r.theirs;
  ratios[`${r.name}_${r.op}_ratio`] = Math.round(ratio * 100) / 100;
  console.log(`${r.name.padEnd(18)} ${r.op.padEnd(7)} ${fmt(r.ours)} ${fmt(r.theirs)}  ${ratio.toFixed(2)}x`);
}
function geomean(op: string): number {
  const xs = rows.filter((r) => r.name.startsWith('publish') && r.op === op).map((r) => r.ours / r.theirs);
  return Math.round(Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length) * 100) / 100;
}
if (sink === -1) console.log('unreachable');
console.log(JSON.stringify({ publish_decode_ratio: geomean('decode'), publish_encode_ratio: geomean('encode'), ...ratios }));
