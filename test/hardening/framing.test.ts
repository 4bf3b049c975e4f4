/**
 * Hostile framing: broken fixed headers and lengths. Each case checks the broker's answer, that it stays up, and
 * that the bystander's session and retained message are untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, hex, packet, publish, str, u16 } from '../helpers/raw-client.js';
import { T, closed, disconnectCode, hostile } from './harness.js';

test('a Remaining Length of five bytes is malformed: v5 DISCONNECT 0x81 and close', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'frame-5b' });
  c.send('30 ff ff ff ff 01');
  const got = await closed(c);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x81);
  await h.survived();
});

test('a declared length of 256 MiB is refused from the fixed header (v5 DISCONNECT 0x95) without allocating it', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'frame-huge' });
  const before = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
  // 268,435,455 bytes announced, a few sent.
  c.send(Buffer.concat([hex('30 ff ff ff 7f'), Buffer.alloc(1000)]));
  const got = await closed(c);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x95);
  const after = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
  assert.ok(after - before < 64 * 1024 * 1024, `memory grew by ${after - before} bytes`);
  await h.survived();
});

test('a huge declared CONNECT length before CONNECT closes the connection without a CONNACK', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send('10 ff ff ff 7f 00 04 4d 51 54 54');
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('packet type 0 (reserved) closes the connection', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'frame-type0' });
  c.send('00 00');
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('AUTH (type 15) from an MQTT 3.1.1 client closes the connection', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'frame-auth3' });
  c.send('f0 00');
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.8.1-1] SUBSCRIBE with fixed header flags 0000 is malformed: v5 DISCONNECT 0x81', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'frame-subflags' });
  c.send(packet(0x80, u16(1), hex('00'), str('a'), hex('00')));
  const got = await closed(c);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x81);
  await h.survived();
});

test('[MQTT-3.3.1-4] PUBLISH with QoS 3 closes the connection (v3.1.1)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'frame-qos3' });
  c.send(packet(0x36, str('bystander/x'), u16(1), Buffer.from('bad')));
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('[MQTT-3.1.2-3] CONNECT with the reserved flag set closes without CONNACK 0', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(connect({ version: 4, clientId: 'frame-reserved', extraFlags: 0x01 }));
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || p.body[1] !== 0), 'not accepted');
  await h.survived();
});

test('[MQTT-3.1.2-13] will QoS without the will flag closes without CONNACK 0', async (t) => {
  const h = await hostile(t);
  const c = await h.raw();
  c.send(connect({ version: 4, clientId: 'frame-willqos', extraFlags: 0x08 }));
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || p.body[1] !== 0), 'not accepted');
  await h.survived();
});

test('a string length that runs past the end of the packet is malformed: v5 DISCONNECT 0x81', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 5, clientId: 'frame-strlen' });
  // Topic length 0xffff in a 5-byte PUBLISH.
  c.send('30 05 ff ff 61 62 63');
  const got = await closed(c);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x81);
  await h.survived();
});

test('PINGREQ with a non-zero Remaining Length is malformed and closes (v3.1.1)', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'frame-ping' });
  c.send('c0 01 00');
  assert.deepEqual(await closed(c), []);
  await h.survived();
});

test('4 KiB of random bytes instead of CONNECT close the connection without a CONNACK 0', async (t) => {
  const h = await hostile(t);
  // Deterministic noise (xorshift), first byte forced to a non-CONNECT type.
  const noise = Buffer.alloc(4096);
  let x = 0x2545f491;
  for (let i = 0; i < noise.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    noise[i] = x & 0xff;
  }
  noise[0] = 0x3a;
  const c = await h.raw();
  c.send(noise);
  const got = await closed(c);
  assert.ok(got.every((p) => p.type !== T.CONNACK || p.body[1] !== 0));
  await h.survived();
});

test('a truncated PUBLISH followed by a dropped connection leaves no trace', async (t) => {
  const h = await hostile(t);
  const c = await h.raw({ version: 4, clientId: 'frame-trunc' });
  const full = publish({ topic: 'bystander/half', payload: 'never complete', qos: 1, packetId: 3 });
  c.send(full.subarray(0, full.length - 4));
  c.destroy();
  await h.survived();
});

test('a packet larger than maximumPacketSize gets DISCONNECT 0x95 (v5)', async (t) => {
  const h = await hostile(t, { mqtt: { maximumPacketSize: 1024 } });
  const c = await h.raw({ version: 5, clientId: 'frame-large' });
  c.send(publish({ version: 5, topic: 'bystander/x', payload: Buffer.alloc(2000) }));
  const got = await closed(c);
  assert.equal(got[0]?.type, T.DISCONNECT);
  assert.equal(disconnectCode(got[0]!), 0x95);
  await h.survived();
});
