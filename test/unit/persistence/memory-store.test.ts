/** The in-memory store against the shared Store conformance suite (no restart: reload reads the same object). */
import { MemoryStore } from '../../../src/broker/persistence/memory-store.js';
import { storeConformance } from './store-conformance.js';

storeConformance('MemoryStore', (t) => {
  const store = new MemoryStore();
  t.after(() => store.close());
  return Promise.resolve({ store, reload: () => Promise.resolve(store.loadSessions()) });
});
