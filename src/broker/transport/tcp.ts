/** Plain TCP listener (MQTT over TCP, default port 1883). */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionMeta, Listener } from './listener.js';

export interface TcpListenerOptions {
  host: string;
  port: number;
}

export class TcpListener implements Listener {
  readonly #options: TcpListenerOptions;
  #server: Server | undefined;
  name: string;

  constructor(options: TcpListenerOptions) {
    this.#options = options;
    this.name = `tcp://${formatHost(options.host)}:${options.port}`;
  }

  listen(onConnection: (stream: Duplex, meta: ConnectionMeta) => void): Promise<void> {
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      const meta: ConnectionMeta = { listener: this.name };
      if (socket.remoteAddress !== undefined) meta.remoteAddress = socket.remoteAddress;
      onConnection(socket, meta);
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', onError);
        const { port } = this.address();
        this.name = `tcp://${formatHost(this.#options.host)}:${port}`;
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return { host: this.#options.host, port: a?.port ?? this.#options.port };
  }

  close(): Promise<void> {
    const server = this.#server;
    if (server === undefined || !server.listening) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
