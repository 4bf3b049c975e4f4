/**
 * The password file: one `username:hash` line per user, where the hash records its algorithm and parameters so they
 * can be raised later without invalidating existing lines:
 *
 *   alice:$scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
 *   bob:$pbkdf2-sha512$i=210000$<salt, base64>$<key, base64>
 *
 * New hashes use scrypt with N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s on one core), a 16-byte random salt and a
 * 32-byte key. PBKDF2-SHA512 lines are verified too. Comparison is constant-time, and an unknown user costs the same
 * work as a known one so timing does not reveal who exists. docs/security.md describes the format.
 */
import { pbkdf2, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { chmod, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { utf8CheckedLength } from '../../protocol/utf8.js';

/** Parameters of a new scrypt hash. `ln` is log2(N). */
export interface ScryptParams {
  algorithm: 'scrypt';
  ln: number;
  r: number;
  p: number;
}

/** Parameters of a new PBKDF2-SHA512 hash. */
export interface Pbkdf2Params {
  algorithm: 'pbkdf2-sha512';
  iterations: number;
}

export type HashParams = ScryptParams | Pbkdf2Params;

export const defaultHashParams: Readonly<ScryptParams> = Object.freeze({ algorithm: 'scrypt', ln: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;

// Bounds on parameters read from a file, so a tampered or mistyped line cannot make one login take minutes or
// gigabytes. The lower bounds refuse hashes too weak to be worth keeping.
const SCRYPT_LN = { min: 10, max: 20 } as const;
const SCRYPT_R = { min: 1, max: 32 } as const;
const SCRYPT_P = { min: 1, max: 16 } as const;
const PBKDF2_ITERATIONS = { min: 10_000, max: 10_000_000 } as const;
// 128 * N * r * p bytes, plus headroom; Node's default maxmem (32 MiB) is just below N=2^15, r=8.
const SCRYPT_MAXMEM_SLACK = 16 * 1024 * 1024;

/** A decoded hash field. */
export type ParsedHash =
  | { algorithm: 'scrypt'; ln: number; r: number; p: number; salt: Buffer; key: Buffer }
  | { algorithm: 'pbkdf2-sha512'; iterations: number; salt: Buffer; key: Buffer };

function derive(params: HashParams, password: Uint8Array, salt: Buffer, keyLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (params.algorithm === 'scrypt') {
      const N = 2 ** params.ln;
      const opts: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * params.p + SCRYPT_MAXMEM_SLACK };
      scrypt(password, salt, keyLength, opts, (err, key) => (err ? reject(err) : resolve(key)));
    } else {
      pbkdf2(password, salt, params.iterations, keyLength, 'sha512', (err, key) => (err ? reject(err) : resolve(key)));
    }
  });
}

function toBytes(password: string | Uint8Array): Uint8Array {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

function checkParams(params: HashParams): void {
  const inRange = (v: number, b: { min: number; max: number }) => Number.isInteger(v) && v >= b.min && v <= b.max;
  const ok =
    params.algorithm === 'scrypt'
      ? inRange(params.ln, SCRYPT_LN) && inRange(params.r, SCRYPT_R) && inRange(params.p, SCRYPT_P)
      : inRange(params.iterations, PBKDF2_ITERATIONS);
  if (!ok) throw new RangeError(`hash parameters out of range: ${JSON.stringify(params)}`);
}

/** Hashes `password` (MQTT passwords are binary data; a string is taken as UTF-8) with a fresh random salt. */
export async function hashPassword(password: string | Uint8Array, params: HashParams = defaultHashParams): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(params, toBytes(password), salt, KEY_BYTES);
  const head =
    params.algorithm === 'scrypt' ? `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}` : `$pbkdf2-sha512$i=${params.iterations}`;
  return `${head}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeB64(s: string, min: number, max: number): Buffer | undefined {
  if (!B64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.length >= min && b.length <= max ? b : undefined;
}

function parseKv(s: string, keys: readonly string[]): Map<string, number> | undefined {
  const out = new Map<string, number>();
  for (const part of s.split(',')) {
    const m = /^([a-z]+)=([0-9]{1,9})$/.exec(part);
    if (m === null || !keys.includes(m[1]!) || out.has(m[1]!)) return undefined;
    out.set(m[1]!, Number(m[2]));
  }
  return out.size === keys.length ? out : undefined;
}

/** Decodes a hash field; `undefined` when it is malformed, of an unknown algorithm or has out-of-range parameters. */
export function parseHash(field: string): ParsedHash | undefined {
  const parts = field.split('$');
  // A leading '$' gives an empty first part.
  if (parts.length !== 5 || parts[0] !== '') return undefined;
  const [, alg, paramText, saltText, keyText] = parts as [string, string, string, string, string];
  const salt = decodeB64(saltText, 8, 64);
  const key = decodeB64(keyText, 16, 128);
  if (salt === undefined || key === undefined) return undefined;
  if (alg === 'scrypt') {
    const kv = parseKv(paramText, ['ln', 'r', 'p']);
    if (kv === undefined) return undefined;
    const params: ScryptParams = { algorithm: 'scrypt', ln: kv.get('ln')!, r: kv.get('r')!, p: kv.get('p')! };
    try {
      checkParams(params);
    } catch {
      return undefined;
    }
    return { ...params, salt, key };
  }
  if (alg === 'pbkdf2-sha512') {
    const kv = parseKv(paramText, ['i']);
    if (kv === undefined) return undefined;
    const params: Pbkdf2Params = { algorithm: 'pbkdf2-sha512', iterations: kv.get('i')! };
    try {
      checkParams(params);
    } catch {
      return undefined;
    }
    return { ...params, salt, key };
  }
  return undefined;
}

/** True when `password` matches the encoded hash; false for a wrong password or an unusable hash. Never throws. */
export async function verifyPassword(encoded: string, password: string | Uint8Array): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (parsed === undefined) return false;
  const params: HashParams =
    parsed.algorithm === 'scrypt'
      ? { algorithm: 'scrypt', ln: parsed.ln, r: parsed.r, p: parsed.p }
      : { algorithm: 'pbkdf2-sha512', iterations: parsed.iterations };
  let key: Buffer;
  try {
    key = await derive(params, toBytes(password), parsed.salt, parsed.key.length);
  } catch {
    return false;
  }
  return timingSafeEqual(key, parsed.key);
}

/** Why a username cannot be stored: it separates fields (':'), lines, or is not valid MQTT UTF-8. */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the username is empty';
  if (name.includes(':')) return "the username contains ':'";
  if (/[\r\n]/.test(name)) return 'the username contains a line break';
  const bytes = utf8CheckedLength(name);
  // [MQTT-3.1.3-11] the User Name is a UTF-8 Encoded String: no U+0000, no surrogates, at most 65,535 bytes.
  if (bytes === -1) return 'the username is not valid UTF-8 or contains U+0000';
  if (bytes > 65_535) return 'the username is longer than 65,535 bytes';
  return undefined;
}

/** The parsed contents of a password file, in file order. */
export interface PasswordEntries {
  /** username -> encoded hash. */
  users: Map<string, string>;
  /** One message per unusable line (`file:line: why`); those lines are skipped. */
  problems: string[];
}

/** Parses password-file text. Blank lines and `#` comments are skipped; bad lines are reported, never thrown. */
export function parsePasswordFile(text: string, source = 'password file'): PasswordEntries {
  const users = new Map<string, string>();
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${source}:${i + 1}`;
    const colon = line.lastIndexOf(':');
    if (colon <= 0) {
      problems.push(`${at}: expected 'username:hash'`);
      return;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const bad = usernameProblem(user);
    if (bad !== undefined) problems.push(`${at}: ${bad}`);
    else if (parseHash(hash) === undefined) problems.push(`${at}: unknown or malformed hash for '${user}'`);
    else if (users.has(user)) problems.push(`${at}: '${user}' is listed twice; the first line is used`);
    else users.set(user, hash);
  });
  return { users, problems };
}

/** Formats entries as password-file text, one line each, in map order. */
export function formatPasswordFile(users: ReadonlyMap<string, string>): string {
  let out = '';
  for (const [user, hash] of users) out += `${user}:${hash}\n`;
  return out;
}

/**
 * Writes `text` to `path` atomically: a 0600 temporary file in the same folder, fsync, rename over the target. A
 * reader (the broker reloading on SIGHUP) sees the old or the new file, never half of one.
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
    await fh.close();
    // The umask may have narrowed the mode at creation; make it exact.
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * A loaded password file that checks credentials. Immutable: reload by loading again and swapping the instance.
 */
export class PasswordFile {
  readonly #users: ReadonlyMap<string, string>;
  readonly problems: readonly string[];
  // Verified for unknown users so they cost as much as known ones.
  static #dummy: Promise<string> | undefined;

  constructor(entries: PasswordEntries) {
    this.#users = entries.users;
    this.problems = entries.problems;
  }

  static async load(path: string): Promise<PasswordFile> {
    return new PasswordFile(parsePasswordFile(await readFile(path, 'utf8'), path));
  }

  get size(): number {
    return this.#users.size;
  }

  has(user: string): boolean {
    return this.#users.has(user);
  }

  /** True when `user` exists and `password` is theirs. Never throws. */
  async verify(user: string, password: string | Uint8Array): Promise<boolean> {
    const hash = this.#users.get(user);
    if (hash === undefined) {
      PasswordFile.#dummy ??= hashPassword(randomBytes(16));
      await verifyPassword(await PasswordFile.#dummy, password);
      return false;
    }
    return verifyPassword(hash, password);
  }
}
