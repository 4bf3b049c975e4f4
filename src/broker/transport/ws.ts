/**
 * MQTT over WebSocket (ws) and WebSocket over TLS (wss). Each accepted WebSocket becomes one Duplex of raw MQTT bytes
 * for the broker: binary frames only [MQTT-6.0.0-1], packets may span or share frames [MQTT-6.0.0-2] (the broker's
 * decoder is a byte stream, so frame boundaries never matter), and the handshake must offer the `mqtt` subprotocol
 * [MQTT-6.0.0-3], which the server selects [MQTT-6.0.0-4].
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { ConnectionMeta, Listener } from './listener.js';
import { TlsListener, describePeer, loadTlsFiles, tlsFilesProblems, type TlsFiles, type TlsListenerOptions } from './tls.js';

export interface WsListenerOptions {
  host: string;
  port: number;
  /** URL paths that accept MQTT; others get 404. Default `['/mqtt', '/']`. */
  paths?: string[];
  /** When set, a request with an Origin header not in this list gets 403 (browser pages from other sites). */
  allowedOrigins?: string[];
  /** Open WebSockets (and upgrades in progress) beyond which new ones get 503; 0 = no limit. */
  maxConnections?: number;
  /** Largest WebSocket message accepted, bytes; larger ones close the connection (1009). Default 16 MiB. */
  maxPayload?: number;
  /** Makes this a wss listener. */
  tls?: TlsFiles;
  logger?: Logger;
}

/**
 * A Duplex over one WebSocket: binary messages in, binary messages out, with backpressure both ways
 * (`ws.pause()` while the reader is full, the send callback for writes).
 */
export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        // [MQTT-6.0.0-1] any other type of data frame closes the network connection.
        ws.close(1003, 'MQTT needs binary frames');
        this.destroy();
        return;
      }
      const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (!this.push(chunk)) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      callback(new Error('WebSocket is not open'));
      return;
    }
    this.#ws.send(chunk, { binary: true }, (err) => callback(err ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      // Give the close frame a moment, then cut the TCP connection.
      this.#ws.close(1000);
      const timer = setTimeout(() => this.#ws.terminate(), 1000);
      timer.unref();
    }
    callback(error);
  }
}

/** The subprotocol to select: `mqtt`, or `mqttv3.1` for MQTT 3.1 clients that offer only that; else undefined. */
export function selectSubprotocol(header: string | undefined): 'mqtt' | 'mqttv3.1' | undefined {
  if (header === undefined) return undefined;
  const offered = header.split(',').map((s) => s.trim());
  // [MQTT-6.0.0-3] the client offers "mqtt"; [MQTT-6.0.0-4] the server selects "mqtt".
  if (offered.includes('mqtt')) return 'mqtt';
  // The name used before MQTT 3.1.1 registered "mqtt"; MQTT 3.1 clients (MQTT.js, Paho) still send it.
  if (offered.includes('mqttv3.1')) return 'mqttv3.1';
  return undefined;
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function refuse(socket: Socket, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  socket.destroySoon?.();
}

export class WsListener implements Listener {
  readonly #options: WsListenerOptions;
  readonly #log: Logger;
  readonly #paths: ReadonlySet<string>;
  #server: HttpServer | HttpsServer | undefined;
  #wss: WebSocketServer | undefined;
  #open = 0;
  name: string;

  constructor(options: WsListenerOptions) {
    if (options.tls !== undefined) {
      const problems = tlsFilesProblems(options.tls);
      if (problems.length > 0) throw new Error(`wss listener: ${problems.join('; ')}`);
    }
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.#paths = new Set(options.paths ?? ['/mqtt', '/']);
    this.name = this.#makeName(options.port);
  }

  #makeName(port: number): string {
    return `${this.#options.tls === undefined ? 'ws' : 'wss'}://${formatHost(this.#options.host)}:${port}`;
  }

  async listen(onConnection: (stream: Duplex, meta: ConnectionMeta) => void): Promise<void> {
    const o = this.#options;
    let server: HttpServer | HttpsServer;
    const mutual = o.tls?.requireClientCertificate === true;
    if (o.tls !== undefined) {
      const secure = await loadTlsFiles(o.tls);
      server = createHttpsServer({ ...secure, requestCert: mutual, rejectUnauthorized: mutual, handshakeTimeout: 10_000 });
      server.on('tlsClientError', (err, socket) => {
        this.#log.warn({ listener: this.name, remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
        // A handshake timeout leaves the socket open otherwise (a client that connects and sends nothing).
        socket.destroy();
      });
    } else {
      server = createHttpServer();
    }
    // An upgrade request sent slowly, or never, is dropped after 10 s (Node's defaults are 60 s and 300 s).
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    // Plain HTTP requests get a short answer; only upgrades carry MQTT.
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'close' });
      res.end('This is an MQTT over WebSocket endpoint (subprotocol "mqtt").');
    });
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: o.maxPayload ?? 16 * 1024 * 1024,
      perMessageDeflate: false,
      handleProtocols: (protocols) => selectSubprotocol([...protocols].join(',')) ?? false,
    });
    this.#wss = wss;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      const path = (req.url ?? '/').split('?')[0]!;
      const why = this.#check(req, path);
      if (why !== undefined) {
        this.#log.warn({ listener: this.name, remoteAddress: socket.remoteAddress, reason: why.text, path }, 'WebSocket upgrade refused');
        refuse(socket, why.status, why.text);
        return;
      }
      this.#open++;
      let counted = true;
      const release = () => {
        if (counted) {
          counted = false;
          this.#open--;
        }
      };
      socket.once('close', release);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = new WebSocketDuplex(ws);
        const meta: ConnectionMeta = { listener: this.name };
        if (socket.remoteAddress !== undefined) meta.remoteAddress = socket.remoteAddress;
        if (mutual) {
          const from = o.tls?.identityFrom;
          const peer = describePeer(socket as TLSSocket, from);
          if (from !== undefined && peer?.identity === undefined) {
            this.#log.warn({ listener: this.name, remoteAddress: socket.remoteAddress, identityFrom: from }, 'client certificate has no identity');
            ws.close(1008, 'client certificate has no identity');
            stream.destroy();
            return;
          }
          if (peer !== undefined) meta.certificate = peer;
        }
        onConnection(stream, meta);
      });
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        this.name = this.#makeName(this.address().port);
        resolve();
      });
    });
  }

  #check(req: IncomingMessage, path: string): { status: number; text: string } | undefined {
    const o = this.#options;
    if (!this.#paths.has(path)) return { status: 404, text: 'Not Found' };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { status: 400, text: 'Bad Request' };
    const origin = req.headers.origin;
    if (o.allowedOrigins !== undefined && origin !== undefined && !o.allowedOrigins.includes(origin)) {
      return { status: 403, text: 'Forbidden' };
    }
    // [MQTT-6.0.0-3] / [MQTT-6.0.0-4]: without "mqtt" on offer there is nothing the server may select.
    if (selectSubprotocol(req.headers['sec-websocket-protocol']) === undefined) {
      return { status: 400, text: 'Bad Request: the WebSocket subprotocol must be mqtt' };
    }
    if (o.maxConnections !== undefined && o.maxConnections > 0 && this.#open >= o.maxConnections) {
      return { status: 503, text: 'Service Unavailable' };
    }
    return undefined;
  }

  /** wss only: reads the TLS files again for new handshakes; on error the current ones stay in use. */
  async reload(): Promise<void> {
    const server = this.#server;
    if (server === undefined || this.#options.tls === undefined) return;
    const secure = await loadTlsFiles(this.#options.tls);
    (server as HttpsServer).setSecureContext(secure);
    this.#log.info({ listener: this.name }, 'TLS certificates reloaded');
  }

  /** Open WebSocket connections on this listener. */
  get connections(): number {
    return this.#open;
  }

  address(): { host: string; port: number } {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return { host: this.#options.host, port: a?.port ?? this.#options.port };
  }

  /** Stops accepting; open WebSockets stay until the broker closes them. */
  close(): Promise<void> {
    const server = this.#server;
    this.#wss?.close();
    // server.close() stops listening at once but calls back only when every connection has ended, and the
    // broker closes the connections after its listeners: so do not wait for the callback.
    if (server !== undefined && server.listening) {
      server.close();
      server.closeIdleConnections();
    }
    return Promise.resolve();
  }
}

/** Config entry of an mqtts listener (what `listeners: [{ type: 'tls', ... }]` holds). */
export interface TlsListenerConfig extends TlsFiles {
  type: 'tls';
  host: string;
  port: number;
  maxConnections?: number;
  handshakeTimeout?: number;
  /** Admit clients without a username; default: only when `host` is a loopback address. */
  allowAnonymous?: boolean;
}

/** Config entry of a ws listener. */
export interface WsListenerConfig {
  type: 'ws';
  host: string;
  port: number;
  paths?: string[];
  allowedOrigins?: string[];
  maxConnections?: number;
  maxPayload?: number;
  allowAnonymous?: boolean;
}

/** Config entry of a wss listener: a ws listener plus the TLS files and client-certificate policy. */
export interface WssListenerConfig extends Omit<WsListenerConfig, 'type'>, TlsFiles {
  type: 'wss';
}

export type SecureListenerConfig = TlsListenerConfig | WsListenerConfig | WssListenerConfig;

/** Builds the listener for a tls, ws or wss config entry. Throws for impossible combinations (see tlsFilesProblems). */
export function createSecureListener(cfg: SecureListenerConfig, logger?: Logger): TlsListener | WsListener {
  const log = logger === undefined ? {} : { logger };
  const tlsFiles = (c: TlsFiles): TlsFiles => {
    const f: TlsFiles = { certFile: c.certFile, keyFile: c.keyFile };
    if (c.caFile !== undefined) f.caFile = c.caFile;
    if (c.requireClientCertificate !== undefined) f.requireClientCertificate = c.requireClientCertificate;
    if (c.identityFrom !== undefined) f.identityFrom = c.identityFrom;
    if (c.minVersion !== undefined) f.minVersion = c.minVersion;
    return f;
  };
  if (cfg.type === 'tls') {
    const o: TlsListenerOptions = { host: cfg.host, port: cfg.port, ...tlsFiles(cfg), ...log };
    if (cfg.maxConnections !== undefined) o.maxConnections = cfg.maxConnections;
    if (cfg.handshakeTimeout !== undefined) o.handshakeTimeout = cfg.handshakeTimeout;
    return new TlsListener(o);
  }
  const o: WsListenerOptions = { host: cfg.host, port: cfg.port, ...log };
  if (cfg.paths !== undefined) o.paths = cfg.paths;
  if (cfg.allowedOrigins !== undefined) o.allowedOrigins = cfg.allowedOrigins;
  if (cfg.maxConnections !== undefined) o.maxConnections = cfg.maxConnections;
  if (cfg.maxPayload !== undefined) o.maxPayload = cfg.maxPayload;
  if (cfg.type === 'wss') o.tls = tlsFiles(cfg);
  return new WsListener(o);
}
