/**
 * The worker thread `telemq broker` runs the broker in (see runInThread in broker.ts): it serves the configuration
 * the main thread checked, with signals, error text and the exit code passed through the main thread, which alone
 * receives signals.
 */
import { EventEmitter } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import type { BrokerConfig } from '../broker/index.js';
import { serve } from './broker.js';

const port = parentPort;
if (port === null) throw new Error('broker-thread.ts runs only as a worker thread');
const data = workerData as { config: BrokerConfig; pretty: boolean };

/** A signal that arrives before the broker listens for it (during startup) is kept until it does. */
class Signals extends EventEmitter {
  readonly #early = new Set<string>();
  deliver(signal: string): void {
    if (this.listenerCount(signal) > 0) this.emit(signal);
    else this.#early.add(signal);
  }
  override on(signal: string, fn: (...args: unknown[]) => void): this {
    super.on(signal, fn);
    if (this.#early.delete(signal)) queueMicrotask(() => this.emit(signal));
    return this;
  }
}

const signals = new Signals();
port.on('message', (m: { signal?: string }) => {
  if (typeof m.signal === 'string') signals.deliver(m.signal);
});
const code = await serve(data.config, {
  signals,
  stderr: (text) => port.postMessage({ stderr: text }),
  pretty: data.pretty,
});
port.postMessage({ exitCode: code });
port.close();
