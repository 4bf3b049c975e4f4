import type { Transport, TransportHandlers, TransportOptions } from './transport.js';

interface BrowserWebSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number): void;
}
type WebSocketCtor = new (url: string, protocols: string[]) => BrowserWebSocket;

/** ws:// and wss:// with the platform WebSocket (browsers). TLS settings come from the browser. */
export function openBrowserWebSocket(url: URL, _options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const Ctor = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (Ctor === undefined) return Promise.reject(new Error('no WebSocket implementation in this environment'));
  const ws = new Ctor(url.href, ['mqtt']);
  ws.binaryType = 'arraybuffer';
  return new Promise((resolve, reject) => {
    let open = false;
    ws.onopen = () => {
      open = true;
      resolve({
        write: (chunk, done) => {
          ws.send(chunk);
          // The platform WebSocket offers no per-send callback; it has queued the bytes.
          if (done !== undefined) queueMicrotask(() => done());
          return true;
        },
        end: () => ws.close(1000),
        destroy: () => ws.close(1000),
      });
    };
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) handlers.data(new Uint8Array(ev.data));
    };
    ws.onerror = () => {
      if (!open) reject(new Error(`WebSocket connection to ${url.href} failed`));
    };
    ws.onclose = (ev) => {
      if (open) handlers.close(ev.code === 1000 ? undefined : new Error(`WebSocket closed (${ev.code}) ${ev.reason}`));
      else reject(new Error(`WebSocket connection to ${url.href} failed`));
    };
  });
}
