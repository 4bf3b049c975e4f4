import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientSetup, commonFlags, parseArgs, UsageError } from '../../../src/cli/client-args.js';
import { formatMessage, jsonLine } from '../../../src/cli/sub.js';

const flags = { ...commonFlags, '-m': { value: true }, '-r': { value: false } };

test('mosquitto-style flags: repeated -t, long aliases, --opt=value, -D with user-property pairs', () => {
  const args = parseArgs(['-t', 'a', '--topic=b', '-q', '1', '--retain', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'publish', 'message-expiry-interval', '60', '-D', 'connect', 'receive-maximum', '5'], { ...flags, '--retain': { value: false } });
  assert.deepEqual(args.flags.get('-t'), ['a', 'b']);
  assert.deepEqual(args.flags.get('-q'), ['1']);
  assert.deepEqual(args.properties.publish, { userProperties: [['k', 'v']], messageExpiryInterval: 60 });
  assert.deepEqual(args.properties.connect, { receiveMaximum: 5 });
  assert.throws(() => parseArgs(['-D', 'connect', 'content-type', 'x'], flags), UsageError);
  assert.throws(() => parseArgs(['-D', 'publish', 'message-expiry-interval', '-1'], flags), /non-negative integer/);
  assert.throws(() => parseArgs(['--nope'], flags), /unknown option '--nope'/);
  assert.throws(() => parseArgs(['-t'], flags), /-t needs a value/);
});

test('connection setup: -L gives host, credentials and topic; TLS flags switch to mqtts on 8883; -V names', () => {
  const fromUrl = clientSetup(parseArgs(['-L', 'mqtt://u:p%40ss@h.example:1999/plant/a%2Fb'], flags), 'x-');
  assert.equal(fromUrl.url, 'mqtt://h.example:1999');
  assert.equal(fromUrl.topicFromUrl, 'plant/a/b');
  assert.equal(fromUrl.options.username, 'u');
  assert.equal(fromUrl.options.password, 'p@ss');
  assert.equal(fromUrl.options.protocolVersion, 4);
  const tls = clientSetup(parseArgs(['-h', 'broker', '--insecure', '-V', 'mqttv5', '-x', '30'], flags), 'x-');
  assert.equal(tls.url, 'mqtts://broker:8883');
  assert.equal(tls.options.tls?.rejectUnauthorized, false);
  assert.equal(tls.options.sessionExpiryInterval, 30);
  assert.equal(clientSetup(parseArgs(['-V', '31'], flags), 'x-').options.protocolVersion, 3);
  assert.throws(() => clientSetup(parseArgs(['-V', '6'], flags), 'x-'), /-V must be/);
  assert.throws(() => clientSetup(parseArgs(['-c'], flags), 'x-'), /needs a client id/);
  assert.throws(() => clientSetup(parseArgs(['-x', '5'], flags), 'x-'), /needs -V mqttv5/);
  assert.equal(clientSetup(parseArgs(['-h', '::1'], flags), 'x-').url, 'mqtt://[::1]:1883');
});

test('sub output: -F format specifiers and --json (UTF-8 or base64 payload)', () => {
  const now = new Date('2026-11-26T01:02:03.000Z');
  const m = {
    topic: 't/1',
    payload: Buffer.from('hé'),
    qos: 1 as const,
    retain: true,
    dup: false,
    properties: { contentType: 'text/plain', userProperties: [['a', 'b']] as Array<[string, string]>, correlationData: Buffer.from('c1') },
  };
  assert.equal(formatMessage('%t %p %q %r %l %x %I %C %P %D %% %z', m, now), 't/1 hé 1 1 3 68c3a9 2026-11-26T01:02:03.000Z text/plain a:b c1 % %z');
  assert.deepEqual(JSON.parse(jsonLine(m, now)), {
    tst: '2026-11-26T01:02:03.000Z',
    topic: 't/1',
    qos: 1,
    retain: true,
    payloadlen: 3,
    payload: 'hé',
    properties: { contentType: 'text/plain', userProperties: [['a', 'b']], correlationData: Buffer.from('c1').toString('base64') },
  });
  const binary = JSON.parse(jsonLine({ topic: 'b', payload: Buffer.from([0xff, 0x00]), qos: 0, retain: false, dup: false }, now)) as Record<string, unknown>;
  assert.equal(binary.payload_base64, '/wA=');
  assert.equal(binary.payload, undefined);
});
