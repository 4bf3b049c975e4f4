// Child process for client-store.test.ts: publishes QoS 2 messages with a FileStore, reports once they
// are durable, then waits to be killed. Run without arguments (as the test runner does) it does nothing.
import { connect, openFileStore } from '../../src/client/index.js';

const [dir, url, clientId, count] = process.argv.slice(2);
if (dir !== undefined && url !== undefined && clientId !== undefined && count !== undefined) {
  const store = await openFileStore(dir);
  const client = await connect(url, { protocolVersion: 4, clientId, cleanStart: false, reconnect: false, store });
  for (let i = 1; i <= Number(count); i++) {
    client.publish(`stored/${i}`, `message ${i}`, { qos: 2 }).catch(() => {});
  }
  await client.persisted();
  process.stdout.write('stored\n');
  setInterval(() => {}, 60_000);
}
