/**
 * An Authenticator and Authorizer built from a password file and an ACL file, both optional, reloadable as a pair
 * (SIGHUP). Without an ACL file every authenticated client may read and write everything; with one, access is denied
 * unless a rule grants it (see acl.ts). Anonymous access is decided per listener: by default only listeners bound to
 * loopback addresses admit clients without a username.
 */
import { isIP } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { ReasonCode, parseSharedSubscription } from '../../protocol/index.js';
import type { Logger } from '../../shared/logger.js';
import { silentLogger } from '../../shared/logger.js';
import { Acl } from './acl.js';
import type { AuthResult, Authenticator, Authorizer, ConnectRequest, PublishRequest, ReadRequest, SubscribeRequest } from './auth.js';
import { PasswordFile } from './password-file.js';

/** What a TLS listener attaches as `ConnectRequest.certificate` (see transport/tls.ts). */
export interface PeerIdentity {
  /** The verified client certificate's identity chosen by the listener (CN or a SAN), used as the username. */
  identity?: string;
}

export interface FileAuthOptions {
  passwordFile?: string;
  aclFile?: string;
  /** Whether clients without a username are admitted on the named listener; see {@link defaultAllowAnonymous}. */
  allowAnonymous: (listener: string) => boolean;
  /** Wait before answering a failed login, so guessing is slow (milliseconds, default 500). */
  failureDelay?: number;
  logger?: Logger;
}

/** True for an address that is only reachable from this machine: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const v = isIP(host);
  if (v === 4) return host.startsWith('127.');
  if (v === 6) {
    const h = host.toLowerCase();
    return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  }
  return false;
}

/** The default anonymous policy of a listener: allowed only when it binds a loopback address. */
export function defaultAllowAnonymous(listener: { host: string; allowAnonymous?: boolean }): boolean {
  return listener.allowAnonymous ?? isLoopbackHost(listener.host);
}

/**
 * The host of a listener name such as `tcp://127.0.0.1:1883`, `mqtts://[::1]:8883` or `ws://0.0.0.0:8080`;
 * undefined when the name has no such form.
 */
export function listenerHost(name: string): string | undefined {
  const m = /^[a-z]+:\/\/(\[([^\]]+)\]|[^:/]+)(?::\d+)?(?:\/.*)?$/.exec(name);
  if (m === null) return undefined;
  return m[2] ?? m[1];
}

/** Anonymous policy keyed by listener name: the loopback rule of {@link defaultAllowAnonymous} from the bound host. */
export function loopbackListenersAllowAnonymous(name: string): boolean {
  const host = listenerHost(name);
  return host !== undefined && isLoopbackHost(host);
}

/**
 * The anonymous policy of a set of listeners, looked up by the listener's current name (names change when a port 0
 * is bound): each entry's `allowAnonymous`, or loopback-only when it is absent. A name not in `entries` (a listener
 * passed in code) gets the loopback rule from the host in its name.
 */
export function anonymousPolicy(
  entries: ReadonlyArray<{ listener: { readonly name: string }; host: string; allowAnonymous?: boolean }>,
): (listenerName: string) => boolean {
  return (name) => {
    const e = entries.find((x) => x.listener.name === name);
    return e === undefined ? loopbackListenersAllowAnonymous(name) : defaultAllowAnonymous(e);
  };
}

interface Loaded {
  passwords: PasswordFile | undefined;
  acl: Acl | undefined;
}

async function loadFiles(passwordFile: string | undefined, aclFile: string | undefined): Promise<Loaded> {
  const [passwords, acl] = await Promise.all([
    passwordFile === undefined ? undefined : PasswordFile.load(passwordFile),
    aclFile === undefined ? undefined : Acl.load(aclFile),
  ]);
  return { passwords, acl };
}

export class FileAuth implements Authenticator, Authorizer {
  readonly #options: FileAuthOptions;
  readonly #log: Logger;
  #loaded: Loaded;

  private constructor(options: FileAuthOptions, loaded: Loaded) {
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.#loaded = loaded;
    this.#reportProblems();
  }

  /** Loads both files; rejects (ENOENT, AclError, ...) when either cannot be used. */
  static async create(options: FileAuthOptions): Promise<FileAuth> {
    return new FileAuth(options, await loadFiles(options.passwordFile, options.aclFile));
  }

  #reportProblems(): void {
    for (const p of this.#loaded.passwords?.problems ?? []) this.#log.warn({ problem: p }, 'password file line skipped');
  }

  /**
   * Reads both files again and swaps them in together. On any error the previous files stay in force and the error
   * is returned, so a typo in a reload never opens or locks the broker. Connected clients are not dropped; their
   * next publish or subscribe is checked against the new rules.
   */
  async reload(): Promise<{ ok: true } | { ok: false; error: Error }> {
    try {
      this.#loaded = await loadFiles(this.#options.passwordFile, this.#options.aclFile);
    } catch (err) {
      this.#log.error({ err }, 'auth reload failed; keeping the previous password and ACL files');
      return { ok: false, error: err as Error };
    }
    this.#reportProblems();
    this.#log.info({ users: this.#loaded.passwords?.size ?? 0, acl: this.#loaded.acl !== undefined }, 'auth reloaded');
    return { ok: true };
  }

  async #refuse(request: ConnectRequest, reasonCode: number, reason: string): Promise<AuthResult> {
    this.#log.warn(
      { clientId: request.clientId, username: request.username, remoteAddress: request.remoteAddress, listener: request.listener, reason },
      'connection refused',
    );
    const wait = this.#options.failureDelay ?? 500;
    if (wait > 0) await delay(wait);
    return { ok: false, reasonCode, reason };
  }

  async authenticate(request: ConnectRequest): Promise<AuthResult> {
    const cert = request.certificate as PeerIdentity | undefined;
    if (cert?.identity !== undefined) {
      // The TLS layer verified the certificate against the listener's CA and set the username from it.
      if (request.username === cert.identity) return { ok: true };
      return this.#refuse(request, ReasonCode.NotAuthorized, 'username differs from the certificate identity');
    }
    const { passwords } = this.#loaded;
    if (request.username === undefined) {
      if (this.#options.allowAnonymous(request.listener)) return { ok: true };
      // v5 0x87 Not Authorized; v3 return code 5.
      return this.#refuse(request, ReasonCode.NotAuthorized, 'anonymous access is not allowed on this listener');
    }
    if (passwords === undefined) {
      // No password file: a username is only a label, accepted where anonymous clients are.
      if (this.#options.allowAnonymous(request.listener)) return { ok: true };
      return this.#refuse(request, ReasonCode.NotAuthorized, 'no password file is configured');
    }
    // v5 0x86 Bad User Name or Password; v3 return code 4.
    if (request.password === undefined) return this.#refuse(request, ReasonCode.BadUserNameOrPassword, 'no password given');
    if (!(await passwords.verify(request.username, request.password))) {
      return this.#refuse(request, ReasonCode.BadUserNameOrPassword, 'bad username or password');
    }
    return { ok: true };
  }

  canPublish(request: PublishRequest): boolean {
    const { acl } = this.#loaded;
    return acl === undefined || acl.canWrite({ username: request.username, clientId: request.clientId }, request.topic);
  }

  canSubscribe(request: SubscribeRequest): boolean {
    const { acl } = this.#loaded;
    if (acl === undefined) return true;
    const share = parseSharedSubscription(request.topicFilter);
    if (share !== undefined && 'error' in share) return false;
    const filter = share === undefined ? request.topicFilter : share.filter;
    return acl.canSubscribe({ username: request.username, clientId: request.clientId }, filter);
  }

  /** May the client receive a message on `topic`? The broker asks before every delivery when an ACL file is configured. */
  canRead(request: ReadRequest): boolean {
    const { acl } = this.#loaded;
    return acl === undefined || acl.canRead({ username: request.username, clientId: request.clientId }, request.topic);
  }
}
