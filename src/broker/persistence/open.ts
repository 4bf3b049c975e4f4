/** Builds the broker's storage (sessions + retained messages) from its configuration. */
import type { Logger } from '../../shared/logger.js';
import { MemoryRetainedStore, type RetainedStore } from '../router/index.js';
import { MemoryStore } from './memory-store.js';
import { SqliteRetainedStore } from './sqlite-retained.js';
import { SqliteDatabase, SqliteStore, type Durability } from './sqlite-store.js';
import type { Store } from './store.js';

export type StorageOptions =
  | { type: 'memory' }
  | {
      type: 'sqlite';
      /** Database file, relative to the working directory; its folder is created when missing. */
      path: string;
      durability: Durability;
      batchIntervalMs?: number;
      /** How long a QoS 1 delivery's row waits for the subscriber's PUBACK before it is written (ms); default 5, 0 = never wait. */
      ackWaitMs?: number;
      /** Period of the purge of expired sessions and messages (ms); default 60 s. */
      cleanupIntervalMs?: number;
    };

export interface Storage {
  store: Store;
  retained: RetainedStore;
  /** Commits what is pending and closes the files. Idempotent; safe after Broker.close() closed the store. */
  close(): Promise<void>;
}

/**
 * Opens storage. SQLite: creates the file's folder, checks and migrates the schema, and loads retained messages;
 * rejects with a StorageError (clear message, file untouched) when the database is corrupt, foreign, newer than
 * this build, or in use by another process.
 */
export function openStorage(options: StorageOptions, logger: Logger): Promise<Storage> {
  try {
    return Promise.resolve(openNow(options, logger));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

function openNow(options: StorageOptions, logger: Logger): Storage {
  if (options.type === 'memory') {
    const store = new MemoryStore();
    return {
      store,
      retained: new MemoryRetainedStore(),
      close: () => {
        store.close();
        return Promise.resolve();
      },
    };
  }
  const database = new SqliteDatabase({
    path: options.path,
    durability: options.durability,
    logger,
    ...(options.batchIntervalMs === undefined ? {} : { batchIntervalMs: options.batchIntervalMs }),
    ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
    ...(options.cleanupIntervalMs === undefined ? {} : { cleanupIntervalMs: options.cleanupIntervalMs }),
  });
  let retained: SqliteRetainedStore;
  try {
    retained = new SqliteRetainedStore(database);
  } catch (err) {
    database.close();
    throw err;
  }
  const store = new SqliteStore(database);
  logger.info({ path: options.path, durability: options.durability, retained: retained.count }, 'storage opened');
  return {
    store,
    retained,
    close: () => {
      database.close();
      return Promise.resolve();
    },
  };
}
