/**
 * A broker process for the crash test and bench/persistence.ts: `node broker-child.js '<json>'` with
 * `{ storage: StorageOptions, port?: number, maximumQueuedMessages?: number }`. Prints one JSON line
 * `{"port":N,"pid":N}` once listening; SIGTERM closes it gracefully. Not a test file itself.
 */
import { createBroker } from '../../src/broker/index.js';
import { openStorage, type StorageOptions } from '../../src/broker/persistence/open.js';
import { silentLogger } from '../../src/shared/logger.js';

interface ChildOptions {
  storage: StorageOptions;
  port?: number;
  maximumQueuedMessages?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const storage = await openStorage(options.storage, silentLogger);
const broker = createBroker(
  {
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: options.port ?? 0 }],
    sys: { enabled: false },
    mqtt: { maximumQueuedMessages: options.maximumQueuedMessages ?? 1_000_000 },
  },
  { store: storage.store, retained: storage.retained },
);
await broker.start();
process.stdout.write(`${JSON.stringify({ port: broker.addresses()[0]?.port, pid: process.pid })}\n`);
process.once('SIGTERM', () => {
  void broker
    .close(500)
    .then(() => storage.close())
    .then(() => process.exit(0));
});
