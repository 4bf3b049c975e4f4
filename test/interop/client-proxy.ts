import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** One MQTT packet as seen on the wire: first byte (type << 4 | flags) and the whole packet. */
export interface WirePacket {
  type: number;
  flags: number;
  bytes: Buffer;
}

/** Splits a byte stream into MQTT packets by fixed header and remaining length. */
class Framer {
  #buf = Buffer.alloc(0);
  push(chunk: Buffer): WirePacket[] {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    const out: WirePacket[] = [];
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < this.#buf.length && i <= 4; i++) {
        const byte = this.#buf[i] as number;
        len += (byte & 0x7f) * mul;
        mul *= 128;
        if ((byte & 0x80) === 0) break;
      }
      if (i >= this.#buf.length || this.#buf.length < i + 1 + len) return out;
      const total = i + 1 + len;
      const first = this.#buf[0] as number;
      out.push({ type: first >> 4, flags: first & 0x0f, bytes: this.#buf.subarray(0, total) });
      this.#buf = this.#buf.subarray(total);
    }
  }
}

interface Pair {
  client: Socket;
  broker: Socket;
  up: WirePacket[];
  down: WirePacket[];
}

/**
 * A TCP proxy between client and broker that records client->broker packets per connection, can drop
 * broker->client packets by type, go silent (black hole), refuse connections, and cut all connections.
 */
export class Proxy {
  readonly connections: Pair[] = [];
  /** Broker->client packets for which this returns false are dropped. */
  passDown: (packet: WirePacket) => boolean = () => true;
  /** When true, nothing is forwarded in either direction but sockets stay open. */
  blackhole = false;
  /** When true, new client connections are closed at once. */
  refuse = false;
  #server: Server;
  #waiters: Array<() => void> = [];
  port = 0;

  private constructor(private readonly target: number) {
    this.#server = createServer((client) => {
      this.#accept(client);
    });
  }

  static async start(target: number): Promise<Proxy> {
    const proxy = new Proxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    const address = proxy.#server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    proxy.port = address.port;
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  #accept(client: Socket): void {
    if (this.refuse) {
      client.destroy();
      return;
    }
    const broker = createConnection({ host: '127.0.0.1', port: this.target });
    const pair: Pair = { client, broker, up: [], down: [] };
    this.connections.push(pair);
    const upFramer = new Framer();
    const downFramer = new Framer();
    client.on('data', (chunk: Buffer) => {
      if (this.blackhole) return;
      const packets = upFramer.push(chunk);
      pair.up.push(...packets);
      for (const p of packets) broker.write(p.bytes);
      this.#notify();
    });
    broker.on('data', (chunk: Buffer) => {
      if (this.blackhole) return;
      for (const p of downFramer.push(chunk)) {
        pair.down.push(p);
        if (this.passDown(p)) client.write(p.bytes);
      }
      this.#notify();
    });
    const close = (): void => {
      client.destroy();
      broker.destroy();
    };
    client.on('close', close);
    broker.on('close', close);
    client.on('error', close);
    broker.on('error', close);
    this.#notify();
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves once `predicate` holds; re-checked after traffic in either direction or a new connection. */
  async until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Destroys every open connection (both sides), like a network failure. */
  cut(): void {
    for (const { client, broker } of this.connections) {
      client.destroy();
      broker.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export const PUBLISH = 3;
export const PUBACK = 4;
export const PUBREC = 5;
export const PUBREL = 6;
export const PUBCOMP = 7;
export const SUBSCRIBE = 8;
export const PINGREQ = 12;
