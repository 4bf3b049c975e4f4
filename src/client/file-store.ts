import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutgoingStore, StoredMessage } from './store.js';

type Entry =
  | { op: 'put'; id: number; topic: string; payload: string; qos: 1 | 2; retain: boolean; state: 'publish' | 'pubrel'; properties?: unknown }
  | { op: 'rel'; id: number }
  | { op: 'del'; id: number };

const LOG = 'outgoing.jsonl';

// Buffers inside v5 properties (correlation data) survive JSON as {type:'Buffer', data:[...]}.
function revive(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data);
  }
  return value;
}

/**
 * Outgoing QoS 1/2 messages in an append-only JSON-lines log, fdatasync'ed before a record counts (Node only).
 * Opening replays the log, drops a torn last line (a crash mid-append) and rewrites it compacted.
 */
export class FileStore implements OutgoingStore {
  readonly directory: string;
  #file: FileHandle | undefined;
  #messages = new Map<number, StoredMessage>();
  #loaded = false;
  #queue: Array<{ line: string; resolve: () => void; reject: (error: Error) => void }> = [];
  #drained: Promise<void> | undefined;

  private constructor(directory: string) {
    this.directory = directory;
  }

  /** Opens (creating if needed) the store in `directory`. One client per directory at a time. */
  static async open(directory: string): Promise<FileStore> {
    const store = new FileStore(directory);
    await mkdir(directory, { recursive: true });
    let text = '';
    try {
      text = await readFile(join(directory, LOG), 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: Entry;
      try {
        entry = JSON.parse(line, revive) as Entry;
      } catch {
        continue; // torn write of the last record: it was never acknowledged as stored
      }
      if (entry.op === 'put') {
        store.#messages.set(entry.id, {
          packetId: entry.id,
          state: entry.state,
          topic: entry.topic,
          payload: Buffer.from(entry.payload, 'base64'),
          qos: entry.qos,
          retain: entry.retain,
          ...(entry.properties === undefined ? {} : { properties: entry.properties as StoredMessage['properties'] & object }),
        });
      } else if (entry.op === 'rel') {
        const m = store.#messages.get(entry.id);
        if (m !== undefined) m.state = 'pubrel';
      } else {
        store.#messages.delete(entry.id);
      }
    }
    await store.#compact();
    return store;
  }

  async #compact(): Promise<void> {
    const tmp = join(this.directory, LOG + '.tmp');
    const handle = await open(tmp, 'w');
    try {
      const lines = [...this.#messages.values()].map((m) => JSON.stringify(toEntry(m)) + '\n').join('');
      await handle.writeFile(lines);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(this.directory, LOG));
    // Make the rename itself durable.
    const dir = await open(this.directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.#file = await open(join(this.directory, LOG), 'a');
  }

  /**
   * Group commit: records appended while a write is in progress go out together in the next write, with
   * one fdatasync for all of them; each promise resolves once its record is on disk. Order is call order.
   */
  #append(entry: Entry): Promise<void> {
    if (this.#file === undefined) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ line: JSON.stringify(entry) + '\n', resolve, reject });
      this.#drained ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      try {
        const file = this.#file;
        if (file === undefined) throw new Error('store is closed');
        await file.write(batch.map((b) => b.line).join(''));
        await file.datasync();
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.#drained = undefined;
  }

  load(): Promise<StoredMessage[]> {
    if (this.#loaded) return Promise.resolve([]);
    this.#loaded = true;
    return Promise.resolve([...this.#messages.values()]);
  }

  async put(message: StoredMessage): Promise<void> {
    this.#messages.set(message.packetId, message);
    await this.#append(toEntry(message));
  }

  async release(packetId: number): Promise<void> {
    const m = this.#messages.get(packetId);
    if (m === undefined) return;
    m.state = 'pubrel';
    await this.#append({ op: 'rel', id: packetId });
  }

  async delete(packetId: number): Promise<void> {
    if (!this.#messages.delete(packetId)) return;
    await this.#append({ op: 'del', id: packetId });
  }

  /** Messages currently stored, in order. */
  list(): StoredMessage[] {
    return [...this.#messages.values()];
  }

  async close(): Promise<void> {
    await this.#drained;
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}

function toEntry(m: StoredMessage): Entry {
  return {
    op: 'put',
    id: m.packetId,
    topic: m.topic,
    payload: Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength).toString('base64'),
    qos: m.qos,
    retain: m.retain,
    state: m.state,
    ...(m.properties === undefined ? {} : { properties: m.properties }),
  };
}
