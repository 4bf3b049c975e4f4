import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Decoder, encode, encodedLength, type Packet, type ProtocolVersion } from '../../../src/protocol/index.js';
import { samplePackets } from './fixtures.js';

const VERSIONS: ProtocolVersion[] = [3, 4, 5];

function decodeAll(bytes: Buffer, v: ProtocolVersion, chunkSizes: (i: number) => number): Packet[] {
  const d = new Decoder({ protocolVersion: v });
  const packets: Packet[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = Math.max(1, chunkSizes(i));
    d.push(bytes.subarray(i, i + n));
    i += n;
    for (let r = d.read(); r !== undefined; r = d.read()) {
      if (r instanceof Error) throw r;
      packets.push(r);
    }
  }
  assert.equal(d.bufferedBytes, 0);
  return packets;
}

for (const v of VERSIONS) {
  for (const [name, packet] of samplePackets(v)) {
    test(`round trip v${v}: ${name}`, () => {
      const bytes = encode(packet, v);
      assert.equal(encodedLength(packet, v), bytes.length);
      const [decoded] = decodeAll(bytes, v, () => bytes.length);
      assert.deepEqual(decoded, packet);
      // Re-encoding the decoded packet gives the same bytes.
      assert.deepEqual(encode(decoded!, v), bytes);
    });

    test(`split chunks v${v}: ${name} fed 1 byte at a time and split at every point`, () => {
      const bytes = Buffer.from(encode(packet, v));
      assert.deepEqual(decodeAll(bytes, v, () => 1), [packet]);
      for (let split = 1; split < bytes.length; split++) {
        assert.deepEqual(decodeAll(bytes, v, (i) => (i === 0 ? split : bytes.length)), [packet], `split at ${split}`);
      }
    });
  }

  test(`many packets in one chunk v${v}, then the same stream in random-sized chunks`, () => {
    const packets = samplePackets(v).map(([, p]) => p);
    const stream = Buffer.concat(packets.map((p) => encode(p, v)));
    assert.deepEqual(decodeAll(stream, v, () => stream.length), packets);
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 20; round++) {
      assert.deepEqual(decodeAll(stream, v, () => 1 + (rnd() % 40)), packets);
    }
  });
}

test('a server-side decoder learns the protocol version from CONNECT', () => {
  for (const v of VERSIONS) {
    const [, connect] = samplePackets(v)[0]!;
    const d = new Decoder();
    assert.equal(d.protocolVersion, undefined);
    d.push(encode(connect, v));
    d.push(encode({ type: 'pingreq' }, v));
    assert.deepEqual(d.read(), connect);
    assert.equal(d.protocolVersion, v);
    assert.deepEqual(d.read(), { type: 'pingreq' });
    assert.equal(d.read(), undefined);
  }
});

/** A copy with its own ArrayBuffer (Buffer.from would share Node's pool). */
function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

test('PUBLISH payload is a zero-copy view when the packet lies in one chunk, a copy when it spans chunks', () => {
  const bytes = ownCopy(encode({ type: 'publish', topic: 't', payload: Buffer.from('payload'), qos: 0, retain: false, dup: false }, 4));
  const d = new Decoder({ protocolVersion: 4 });
  d.push(bytes);
  const p = d.read();
  assert.ok(p !== undefined && !(p instanceof Error) && p.type === 'publish');
  assert.ok(p.payload.buffer === bytes.buffer, 'payload shares the chunk memory');
  assert.equal(p.payload.toString(), 'payload');
  const d2 = new Decoder({ protocolVersion: 4 });
  const a = ownCopy(bytes.subarray(0, 5));
  const b = ownCopy(bytes.subarray(5));
  d2.push(a);
  assert.equal(d2.read(), undefined);
  d2.push(b);
  const q = d2.read();
  assert.ok(q !== undefined && !(q instanceof Error) && q.type === 'publish');
  assert.ok(q.payload.buffer !== a.buffer && q.payload.buffer !== b.buffer, 'payload spanning chunks is copied');
  assert.equal(q.payload.toString(), 'payload');
});

for (const [v, rule] of [[4, 'MQTT-1.5.3-3'], [5, 'MQTT-1.5.4-3']] as const) {
  test(`[${rule}] a leading U+FEFF in a string is kept, not stripped (v${v})`, () => {
    const topic = '\uFEFFtopic';
    const bytes = encode({ type: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, v);
    assert.deepEqual([...bytes.subarray(4, 7)], [0xef, 0xbb, 0xbf]);
    const d = new Decoder({ protocolVersion: v });
    d.push(bytes);
    const p = d.read();
    assert.ok(p !== undefined && !(p instanceof Error) && p.type === 'publish');
    assert.equal(p.topic, topic);
  });
}

test('4-byte UTF-8 (surrogate pairs in JS) round-trips', () => {
  const topic = 'emoji/😀/𝄞';
  const d = new Decoder({ protocolVersion: 5 });
  d.push(encode({ type: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 5));
  const p = d.read();
  assert.ok(p !== undefined && !(p instanceof Error) && p.type === 'publish');
  assert.equal(p.topic, topic);
});

test('large PUBLISH (4-byte remaining length) round-trips across chunk boundaries', () => {
  const payload = Buffer.alloc(2_100_000, 0xab);
  const packet: Packet = { type: 'publish', topic: 'big', payload, qos: 1, retain: false, dup: false, packetId: 1 };
  const bytes = encode(packet, 4);
  assert.equal(bytes[1]! & 0x80, 0x80);
  assert.equal(bytes[4]! & 0x80, 0);
  assert.deepEqual(decodeAll(bytes, 4, () => 65536), [packet]);
});
