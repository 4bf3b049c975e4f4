import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Transport, TransportHandlers, TransportOptions } from './transport.js';

/** TCP (mqtt://) and TLS (mqtts://) transports over a Node socket. */
export function openSocket(url: URL, options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
  const secure = url.protocol === 'mqtts:' || url.protocol === 'tls:' || url.protocol === 'ssl:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = url.port === '' ? (secure ? 8883 : 1883) : Number(url.port);
  return new Promise((resolve, reject) => {
    let socket: Socket;
    if (secure) {
      const tls = options.tls ?? {};
      socket = tlsConnect({
        host,
        port,
        servername: tls.servername ?? (/^[\d.:]+$/.test(host) ? '' : host),
        rejectUnauthorized: tls.rejectUnauthorized ?? true,
        ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | Array<string | Buffer> }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert as string | Buffer }),
        ...(tls.key === undefined ? {} : { key: tls.key as string | Buffer }),
      });
    } else {
      socket = netConnect({ host, port });
    }
    socket.setNoDelay(true);
    let open = false;
    let closed = false;
    let failure: Error | undefined;
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      open = true;
      resolve({
        write: (chunk, done) => socket.write(chunk, done),
        end: () => socket.end(),
        destroy: () => socket.destroy(),
      });
    });
    socket.on('data', (chunk: Buffer) => {
      handlers.data(chunk);
    });
    socket.on('drain', () => {
      handlers.drain();
    });
    socket.on('error', (err) => {
      failure ??= err;
      if (!open) reject(err);
    });
    socket.on('close', () => {
      if (closed) return;
      closed = true;
      if (open) handlers.close(failure);
      else reject(failure ?? new Error('connection closed before it opened'));
    });
  });
}
