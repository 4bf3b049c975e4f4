import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createBroker } from '../../src/broker/index.js';
import { silentLogger } from '../../src/shared/logger.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('close() called while start() is still binding leaves no listener bound', async () => {
  const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }] }, { logger: silentLogger });
  const started = broker.start();
  const closed = broker.close();
  await started;
  const ports = broker.addresses().map((a) => a.port);
  assert.ok(ports.length > 0, 'the listener was bound');
  await closed;
  for (const port of ports) assert.equal(await canConnect(port), false, `port ${port} still accepts connections`);
});
