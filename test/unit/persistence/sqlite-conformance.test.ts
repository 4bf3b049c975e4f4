/**
 * SqliteStore against the shared Store conformance suite, in each durability mode; reload() closes the file and
 * reopens it, so every kind of stored state is checked across a restart.
 */
import { join } from 'node:path';
import type { Durability } from '../../../src/broker/persistence/sqlite-store.js';
import { openSqlite, tempDir } from './helpers.js';
import { storeConformance } from './store-conformance.js';

for (const durability of ['batch', 'sync', 'none'] as Durability[]) {
  storeConformance(`SqliteStore (${durability}, restart before each load)`, (t) => {
    const path = join(tempDir(t), 'telemq.db');
    const first = openSqlite(t, { path, durability });
    return Promise.resolve({
      store: first.store,
      reload: () => {
        first.store.close();
        const again = openSqlite(t, { path, durability });
        return Promise.resolve(again.store.loadSessions());
      },
    });
  });
}
