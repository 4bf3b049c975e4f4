/**
 * MQTT over TLS (mqtts, port 8883), optionally with client certificates verified against a CA (port 8884 style).
 * Hands the broker one TLSSocket per connection after the handshake. Certificates can be reloaded (SIGHUP) without
 * touching established connections.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import { silentLogger, type Logger } from '../../shared/logger.js';
import type { ConnectionMeta, Listener } from './listener.js';

/** Which part of a verified client certificate becomes the MQTT username. */
export type CertificateIdentitySource = 'cn' | 'san-dns' | 'san-email' | 'san-uri';

/** The TLS files and client-certificate policy, shared by the mqtts and wss listeners. */
export interface TlsFiles {
  /** Server certificate chain, PEM. */
  certFile: string;
  /** Server private key, PEM. */
  keyFile: string;
  /** CA bundle that signs acceptable client certificates. Required with `requireClientCertificate`. */
  caFile?: string;
  /** Handshake fails unless the client presents a certificate signed by `caFile`. */
  requireClientCertificate?: boolean;
  /** Take the username from the verified client certificate (needs `requireClientCertificate`). */
  identityFrom?: CertificateIdentitySource;
  /** Oldest protocol accepted; default TLSv1.2. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface TlsListenerOptions extends TlsFiles {
  host: string;
  port: number;
  /** Open connections (including handshakes in progress) beyond which new ones are closed; 0 = no limit. */
  maxConnections?: number;
  /** Milliseconds a client may take to finish the TLS handshake. Default 10,000. */
  handshakeTimeout?: number;
  logger?: Logger;
}

/** What a TLS listener puts in `ConnectionMeta.certificate` for a verified client certificate. */
export interface PeerCertificateInfo {
  /** The username taken from the certificate, when the listener has `identityFrom`. */
  identity?: string;
  /** Subject CN. */
  commonName?: string;
  /** The subjectAltName entries, e.g. `DNS:meter-17.example`. */
  subjectAltNames: string[];
  fingerprint256: string;
  serialNumber: string;
  validTo: string;
}

/** Checks option combinations that cannot work; returns the problems (empty when fine). */
export function tlsFilesProblems(o: TlsFiles): string[] {
  const problems: string[] = [];
  if (o.requireClientCertificate === true && o.caFile === undefined) problems.push('requireClientCertificate needs caFile');
  if (o.identityFrom !== undefined && o.requireClientCertificate !== true) {
    problems.push('identityFrom needs requireClientCertificate: an identity from an unverified certificate would be a claim, not a proof');
  }
  return problems;
}

/** Reads the files and builds the options of a secure context; throws when a file is missing or does not parse. */
export async function loadTlsFiles(o: TlsFiles): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readFile(o.certFile),
    readFile(o.keyFile),
    o.caFile === undefined ? undefined : readFile(o.caFile),
  ]);
  const options: SecureContextOptions = { cert, key, minVersion: o.minVersion ?? 'TLSv1.2' };
  if (ca !== undefined) options.ca = ca;
  // Throws now (bad PEM, key not matching the certificate) rather than at the first handshake.
  createSecureContext(options);
  return options;
}

/** Splits Node's `subjectaltname` string (`DNS:a, IP Address:1.2.3.4, email:"x, y"`) into entries. */
export function parseSubjectAltNames(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const out: string[] = [];
  // Node quotes a value as a JSON string when it holds a comma, quote or control character.
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(re)) {
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw;
      }
    }
    out.push(`${m[1]!}:${value}`);
  }
  return out;
}

/** Describes a verified peer certificate; `identity` per `source`, undefined when the certificate lacks it. */
export function describePeer(socket: TLSSocket, source: CertificateIdentitySource | undefined): PeerCertificateInfo | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return undefined;
  const cnRaw = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.CN;
  // A subject with several CNs is ambiguous: none of them is used.
  const commonName = typeof cnRaw === 'string' ? cnRaw : undefined;
  const subjectAltNames = parseSubjectAltNames(cert.subjectaltname);
  const info: PeerCertificateInfo = {
    subjectAltNames,
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validTo: cert.valid_to,
  };
  if (commonName !== undefined) info.commonName = commonName;
  let identity: string | undefined;
  if (source === 'cn') identity = commonName;
  else if (source !== undefined) {
    const prefix = source === 'san-dns' ? 'DNS:' : source === 'san-email' ? 'email:' : 'URI:';
    identity = subjectAltNames.find((s) => s.startsWith(prefix))?.slice(prefix.length);
  }
  if (identity !== undefined && identity !== '') info.identity = identity;
  return info;
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export class TlsListener implements Listener {
  readonly #options: TlsListenerOptions;
  readonly #log: Logger;
  #server: Server | undefined;
  name: string;

  constructor(options: TlsListenerOptions) {
    const problems = tlsFilesProblems(options);
    if (problems.length > 0) throw new Error(`TLS listener: ${problems.join('; ')}`);
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.name = `mqtts://${formatHost(options.host)}:${options.port}`;
  }

  async listen(onConnection: (stream: Duplex, meta: ConnectionMeta) => void): Promise<void> {
    const o = this.#options;
    const secure = await loadTlsFiles(o);
    const mutual = o.requireClientCertificate === true;
    const server = createServer({
      ...secure,
      // The client certificate is the client's proof of identity (MQTT 5.0 section 5.4.5, 3.1.1 section 5.4.4).
      requestCert: mutual,
      rejectUnauthorized: mutual,
      handshakeTimeout: o.handshakeTimeout ?? 10_000,
    });
    if (o.maxConnections !== undefined && o.maxConnections > 0) server.maxConnections = o.maxConnections;
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.setNoDelay(true);
      const meta: ConnectionMeta = { listener: this.name };
      if (socket.remoteAddress !== undefined) meta.remoteAddress = socket.remoteAddress;
      if (mutual) {
        // rejectUnauthorized guarantees the chain verified; describe it for the authenticator.
        const peer = describePeer(socket, o.identityFrom);
        if (o.identityFrom !== undefined && peer?.identity === undefined) {
          // The username must come from the certificate; one without that field identifies nobody.
          this.#log.warn({ listener: this.name, remoteAddress: socket.remoteAddress, identityFrom: o.identityFrom }, 'client certificate has no identity');
          socket.destroy();
          return;
        }
        if (peer !== undefined) meta.certificate = peer;
      }
      onConnection(socket, meta);
    });
    // Failed handshakes (no or untrusted certificate, plain text, timeouts). A handshake timeout does not destroy
    // the socket by itself: a client that connects and sends nothing would otherwise hold it forever.
    server.on('tlsClientError', (err, socket) => {
      this.#log.warn({ listener: this.name, remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
      socket.destroy();
    });
    server.on('drop', (data) => {
      this.#log.warn({ listener: this.name, remoteAddress: data?.remoteAddress }, 'connection refused: listener maxConnections reached');
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        this.name = `mqtts://${formatHost(o.host)}:${this.address().port}`;
        resolve();
      });
    });
  }

  /**
   * Reads the certificate, key and CA files again and uses them for new handshakes; established connections keep
   * their session. On error (missing file, bad PEM, key not matching) the current certificates stay in use.
   */
  async reload(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    const secure = await loadTlsFiles(this.#options);
    server.setSecureContext(secure);
    this.#log.info({ listener: this.name }, 'TLS certificates reloaded');
  }

  address(): { host: string; port: number } {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return { host: this.#options.host, port: a?.port ?? this.#options.port };
  }

  close(): Promise<void> {
    const server = this.#server;
    // server.close() stops listening at once but calls back only when every connection has ended, and the
    // broker closes the connections after its listeners: so do not wait for the callback.
    if (server !== undefined && server.listening) server.close();
    return Promise.resolve();
  }
}
