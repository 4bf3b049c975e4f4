/**
 * Byte transports keyed by URL scheme. Node-only transports (TCP, TLS, the `ws` package) are loaded
 * with dynamic import, so a browser importing the client never pulls a Node built-in.
 */

/** TLS settings for mqtts:// and wss:// (Node only; a browser uses its own trust store). */
export interface TlsOptions {
  /** Trusted CA certificate(s), PEM. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Client certificate chain, PEM. */
  cert?: string | Uint8Array;
  /** Client private key, PEM. */
  key?: string | Uint8Array;
  /** SNI server name and the name checked against the certificate; defaults to the URL host. */
  servername?: string;
  /** Verify the server certificate. Default true; false is for tests only. */
  rejectUnauthorized?: boolean;
}

export interface TransportHandlers {
  data(chunk: Uint8Array): void;
  /** The transport is gone; `error` when it did not close cleanly. Called once. */
  close(error?: Error): void;
  /** Buffered writes drained: more may be written. */
  drain(): void;
}

export interface Transport {
  /** Queues bytes; `done` runs once they are handed to the OS (or failed). Returns false under backpressure. */
  write(chunk: Uint8Array, done?: (error?: Error | null) => void): boolean;
  /** Half-close after pending writes (the MQTT DISCONNECT path). */
  end(): void;
  /** Tear down now. */
  destroy(): void;
}

export interface TransportOptions {
  tls?: TlsOptions;
  /** Extra HTTP headers for the WebSocket upgrade (Node only). */
  wsHeaders?: Record<string, string>;
}

export type TransportFactory = (url: URL, options: TransportOptions, handlers: TransportHandlers) => Promise<Transport>;

const nodeVersion = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;

export async function openTransport(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  switch (url.protocol) {
    case 'mqtt:':
    case 'tcp:':
    case 'mqtts:':
    case 'tls:':
    case 'ssl:': {
      if (nodeVersion === undefined) throw new Error(`${url.protocol}// needs Node.js; in a browser use ws:// or wss://`);
      const { openSocket } = await import('./transport-node.js');
      return openSocket(url, options, handlers);
    }
    case 'ws:':
    case 'wss:': {
      // In Node use the `ws` package: it takes TLS options and headers, the WHATWG WebSocket does not.
      if (nodeVersion === undefined) {
        const { openBrowserWebSocket } = await import('./transport-ws.js');
        return openBrowserWebSocket(url, options, handlers);
      }
      const { openNodeWebSocket } = await import('./transport-ws-node.js');
      return openNodeWebSocket(url, options, handlers);
    }
    default:
      throw new Error(`unsupported URL scheme '${url.protocol}' (use mqtt:, mqtts:, ws: or wss:)`);
  }
}
