/** A broker scripted packet by packet, for client tests: one connection at a time, everything received recorded. */
import { createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { Decoder, encode, type Packet } from '../../src/protocol/index.js';

export interface ScriptedBroker {
  url: string;
  /** Every packet the client sent, in order. */
  received: Packet[];
  send(packet: Packet): void;
  /** Whether the current connection has ended. */
  closed(): boolean;
  /** Resolves when the first connection closes. */
  firstClose: Promise<void>;
  /** Resolves once `predicate` holds, re-checked whenever a packet arrives or the connection closes. */
  until(predicate: () => boolean): Promise<void>;
}

/**
 * Listens on an ephemeral port (closed in t.after). `onConnect` answers each CONNECT; by default with CONNACK 0x00.
 */
export async function scriptedBroker(
  t: TestContext,
  version: 4 | 5,
  onConnect: (send: (p: Packet) => void) => void = (send) => send({ type: 'connack', sessionPresent: false, reasonCode: 0 }),
): Promise<ScriptedBroker> {
  const received: Packet[] = [];
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  let socket: Socket | undefined;
  let firstClosed!: () => void;
  const firstClose = new Promise<void>((resolve) => (firstClosed = resolve));
  const server = createServer((s) => {
    socket = s;
    const decoder = new Decoder({ protocolVersion: version });
    const send = (p: Packet): void => {
      s.write(encode(p, version));
    };
    s.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let p = decoder.read(); p !== undefined; p = decoder.read()) {
        if (p instanceof Error) throw p;
        received.push(p);
        if (p.type === 'connect') onConnect(send);
      }
      wake();
    });
    s.on('close', () => {
      firstClosed();
      wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    socket?.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    received,
    send: (packet) => socket?.write(encode(packet, version)),
    closed: () => socket?.destroyed === true || socket?.readableEnded === true,
    firstClose,
    async until(predicate) {
      while (!predicate()) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
