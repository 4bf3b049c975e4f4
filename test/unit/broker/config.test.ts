import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfig, loadConfigFile, resolveConfig } from '../../../src/broker/config.js';

test('no configuration gives the defaults: 127.0.0.1 and ::1 on 1883', () => {
  const c = resolveConfig({});
  assert.deepEqual(c, defaultConfig);
  assert.deepEqual(c.listeners.map((l) => [l.host, l.port]), [['127.0.0.1', 1883], ['::1', 1883]]);
});

test('partial sections merge over the defaults', () => {
  const c = resolveConfig({ mqtt: { maximumQoS: 1 }, sys: { interval: 5 } });
  assert.equal(c.mqtt.maximumQoS, 1);
  assert.equal(c.mqtt.receiveMaximum, defaultConfig.mqtt.receiveMaximum);
  assert.deepEqual(c.sys, { enabled: true, interval: 5 });
});

test('unknown keys are errors, at every level, all reported at once', () => {
  assert.throws(
    () => resolveConfig({ mqt: {}, mqtt: { maximumQos: 1 }, listeners: [{ type: 'tcp', host: 'h', port: 1, tls: true }] }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual([...err.problems].sort(), ['listeners[0].tls: unknown key', 'mqt: unknown key', 'mqtt.maximumQos: unknown key']);
      return true;
    },
  );
});

test('values out of range or of the wrong type are errors', () => {
  const bad: Array<[unknown, string]> = [
    [{ mqtt: { maximumQoS: 3 } }, 'mqtt.maximumQoS'],
    [{ mqtt: { receiveMaximum: 0 } }, 'mqtt.receiveMaximum'],
    [{ mqtt: { maximumClientIdLength: 10 } }, 'mqtt.maximumClientIdLength'],
    [{ mqtt: { retainAvailable: 'yes' } }, 'mqtt.retainAvailable'],
    [{ mqtt: { queueOverflow: 'block' } }, 'mqtt.queueOverflow'],
    [{ listeners: [{ type: 'tcp', host: 'h', port: 70000 }] }, 'listeners[0].port'],
    [{ listeners: [{ type: 'tcp', port: 1 }] }, 'listeners[0].host'],
    [{ log: { level: 'verbose' } }, 'log.level'],
    [[], 'config'],
  ];
  for (const [input, key] of bad) {
    assert.throws(() => resolveConfig(input), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith(key)), key);
  }
});

test('a YAML config file is read and validated, errors name the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'telemq-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'listeners:\n  - { type: tcp, host: 0.0.0.0, port: 1884 }\nmqtt:\n  maximumQoS: 1\n');
  const c = resolveConfig(await loadConfigFile(good));
  assert.deepEqual(c.listeners, [{ type: 'tcp', host: '0.0.0.0', port: 1884 }]);
  assert.equal(c.mqtt.maximumQoS, 1);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'mqtt:\n  colour: blue\n');
  await assert.rejects(loadConfigFile(bad), (err: unknown) => err instanceof ConfigError && err.message.includes('bad.yaml: mqtt.colour: unknown key'));
  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  assert.deepEqual(await loadConfigFile(empty), {});
});
