/**
 * Starts a broker for one test on 127.0.0.1 with an ephemeral port and a silent logger; it is closed in t.after.
 * `config` is merged over the defaults (see docs/configuration.md); its `listeners` are replaced by one TCP
 * listener on 127.0.0.1:0 unless given. $SYS publishing is off unless `sys` is given.
 */
import type { TestContext } from 'node:test';
import { createBroker, type Broker, type BrokerConfig, type BrokerOptions, type DeepPartial } from '../../src/broker/index.js';

export interface TestBroker {
  broker: Broker;
  port: number;
  host: '127.0.0.1';
  /** mqtt://127.0.0.1:port */
  url: string;
}

export async function startBroker(
  t: TestContext,
  config: DeepPartial<BrokerConfig> = {},
  options: BrokerOptions = {},
): Promise<TestBroker> {
  const broker = createBroker(
    {
      ...config,
      listeners: config.listeners ?? [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
      sys: config.sys ?? { enabled: false },
    },
    options,
  );
  await broker.start();
  t.after(() => broker.close(200));
  const address = broker.addresses()[0];
  if (address === undefined) throw new Error('broker has no listener');
  return { broker, port: address.port, host: '127.0.0.1', url: `mqtt://127.0.0.1:${address.port}` };
}

/**
 * Resolves with the arguments of the next `event` of an MQTT.js client (its typings are not a Node EventEmitter,
 * so `events.once` does not type-check on it).
 */
export function nextEvent<T extends unknown[]>(
  emitter: { once(event: string, listener: (...args: never[]) => void): unknown },
  event: string,
): Promise<T> {
  return new Promise<T>((resolve) => {
    emitter.once(event, ((...args: unknown[]) => resolve(args as T)) as (...args: never[]) => void);
  });
}
