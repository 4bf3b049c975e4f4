import WebSocket from 'ws';
import type { Transport, TransportHandlers, TransportOptions } from './transport.js';

/** ws:// and wss:// in Node through the `ws` package, subprotocol 'mqtt' [MQTT-6.0.0-3]. */
export function openNodeWebSocket(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const tls = options.tls ?? {};
  const ws = new WebSocket(url, 'mqtt', {
    perMessageDeflate: false,
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | Array<string | Buffer> }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert as string | Buffer }),
    ...(tls.key === undefined ? {} : { key: tls.key as string | Buffer }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
    ...(options.wsHeaders === undefined ? {} : { headers: options.wsHeaders }),
  });
  ws.binaryType = 'nodebuffer';
  return new Promise((resolve, reject) => {
    let open = false;
    let failure: Error | undefined;
    ws.on('open', () => {
      open = true;
      resolve({
        write: (chunk, done) => {
          // [MQTT-6.0.0-1] binary frames only.
          ws.send(chunk, { binary: true }, done);
          return true;
        },
        end: () => ws.close(1000),
        destroy: () => ws.terminate(),
      });
    });
    ws.on('message', (data: Buffer) => {
      handlers.data(data);
    });
    ws.on('error', (err) => {
      failure ??= err;
      if (!open) reject(err);
    });
    ws.on('close', () => {
      if (open) handlers.close(failure);
      else reject(failure ?? new Error('WebSocket closed before it opened'));
    });
  });
}
