/**
 * A transport listener hands the broker one Duplex per client connection. TCP is here; TLS and WebSocket
 * listeners implement the same interface, so the broker core never changes for a new transport.
 */
import type { Duplex } from 'node:stream';

export interface ConnectionMeta {
  /** Listener name, e.g. 'tcp://127.0.0.1:1883' (for logs and per-listener auth policy). */
  listener: string;
  remoteAddress?: string;
  /** Peer certificate (TLS with client certificates). */
  certificate?: unknown;
}

export interface Listener {
  /** Stable name, used in logs and ConnectRequest.listener. */
  readonly name: string;
  /** Starts accepting; every connection goes to `onConnection`. Rejects if the address cannot be bound. */
  listen(onConnection: (stream: Duplex, meta: ConnectionMeta) => void): Promise<void>;
  /** Bound address (after listen). */
  address(): { host: string; port: number };
  /** Stops accepting new connections; existing ones stay open. */
  close(): Promise<void>;
}
