/**
 * Child process for memory.test.ts: a broker alone in its process, so its RSS and heap can be measured without the
 * test's own buffers. Answers 'mem' with process.memoryUsage() after a GC, 'exit' by closing.
 */
import { createBroker } from '../../src/broker/index.js';

const broker = createBroker({ listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }], sys: { enabled: false } });
await broker.start();

function usage(): Record<string, number> {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, dropped: broker.stats.messagesDropped };
}

process.on('message', (msg: unknown) => {
  if (msg === 'mem') process.send?.({ mem: usage() });
  if (msg === 'exit') void broker.close(100).then(() => process.exit(0));
});
process.send?.({ port: broker.addresses()[0]?.port ?? 0, mem: usage() });
