/**
 * `telemq certs`: TLS files in one step each.
 *
 *   telemq certs ca --out certs/
 *   telemq certs server --ca certs/ --host localhost --ip 127.0.0.1
 *   telemq certs client --ca certs/ --name meter-17
 *
 * Writes PEM files: <dir>/ca.crt + ca.key, <dir>/server.crt + server.key, <dir>/<name>.crt + <name>.key. Keys get mode
 * 0600; existing files are kept unless --force.
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../broker/auth/password-file.js';
import {
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  createCa,
  createClientCert,
  createServerCert,
  type CertificateAndKey,
  type KeyOptions,
} from '../broker/tls/certs.js';

const usage = `Usage: telemq certs ca --out <dir> [--cn <name>]
       telemq certs server --ca <dir> (--host <name> | --ip <address>)... [--name server]
       telemq certs client --ca <dir> --name <client name>

  --out <dir>        where to write (default: the --ca folder; for 'ca' it is required)
  --ca <dir>         folder holding ca.crt and ca.key
  --host <name>      DNS name for the server certificate (repeatable; the first is the CN)
  --ip <address>     IP address for the server certificate (repeatable)
  --name <name>      client: the certificate CN (the MQTT username with use-identity-as-username);
                     server: the file name (default 'server')
  --cn <name>        ca: the CA's common name (default 'telemq CA')
  --days <n>         lifetime (default ${DEFAULT_CA_DAYS} for a CA, ${DEFAULT_LEAF_DAYS} otherwise)
  --key-type <t>     ec (ECDSA P-256, default) or rsa
  --rsa-bits <n>     2048 (default), 3072 or 4096
  --force            overwrite existing files
  -h, --help         show this help`;

class UsageError extends Error {}

function fileBase(name: string): string {
  // The CN may hold anything printable; the file name keeps a safe subset.
  const base = name.replace(/[^A-Za-z0-9._@-]/g, '_');
  return base.startsWith('.') ? `_${base.slice(1)}` : base;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function save(dir: string, base: string, pair: CertificateAndKey, force: boolean): Promise<string[]> {
  const certPath = join(dir, `${base}.crt`);
  const keyPath = join(dir, `${base}.key`);
  if (!force) {
    for (const p of [certPath, keyPath]) if (await exists(p)) throw new Error(`${p} exists (use --force to replace it)`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(keyPath, pair.key, 0o600);
  await writeFileAtomic(certPath, pair.cert, 0o644);
  return [certPath, keyPath];
}

async function loadCaDir(dir: string): Promise<CertificateAndKey> {
  try {
    return { cert: await readFile(join(dir, 'ca.crt'), 'utf8'), key: await readFile(join(dir, 'ca.key'), 'utf8') };
  } catch (err) {
    throw new UsageError(`cannot read the CA from ${dir}: ${(err as Error).message} (create one with 'telemq certs ca --out ${dir}')`);
  }
}

function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} must be a whole number`);
  return Number(text);
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        ca: { type: 'string' },
        host: { type: 'string', multiple: true },
        ip: { type: 'string', multiple: true },
        name: { type: 'string' },
        cn: { type: 'string' },
        days: { type: 'string' },
        'key-type': { type: 'string' },
        'rsa-bits': { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help === true) {
      process.stdout.write(usage + '\n');
      return 0;
    }
    const [kind, ...extra] = positionals;
    if (kind === undefined || extra.length > 0) throw new UsageError('expected one of: ca, server, client');
    const keyType = values['key-type'] ?? 'ec';
    if (keyType !== 'ec' && keyType !== 'rsa') throw new UsageError('--key-type must be ec or rsa');
    const bits = positiveInt(values['rsa-bits'], '--rsa-bits');
    if (bits !== undefined && bits !== 2048 && bits !== 3072 && bits !== 4096) throw new UsageError('--rsa-bits must be 2048, 3072 or 4096');
    const keyOpts: KeyOptions = bits === undefined ? { keyType } : { keyType, rsaBits: bits };
    const days = positiveInt(values.days, '--days');
    const common = days === undefined ? keyOpts : { ...keyOpts, days };
    const force = values.force === true;

    let written: string[];
    switch (kind) {
      case 'ca': {
        if (values.out === undefined) throw new UsageError("'certs ca' needs --out <dir>");
        const pair = await createCa(values.cn === undefined ? common : { ...common, commonName: values.cn });
        written = await save(values.out, 'ca', pair, force);
        break;
      }
      case 'server': {
        if (values.ca === undefined) throw new UsageError("'certs server' needs --ca <dir>");
        const hosts = values.host ?? [];
        const ips = values.ip ?? [];
        if (hosts.length + ips.length === 0) throw new UsageError("'certs server' needs at least one --host or --ip");
        const ca = await loadCaDir(values.ca);
        const pair = await createServerCert(ca, { ...common, hosts, ips });
        written = await save(values.out ?? values.ca, fileBase(values.name ?? 'server'), pair, force);
        break;
      }
      case 'client': {
        if (values.ca === undefined) throw new UsageError("'certs client' needs --ca <dir>");
        if (values.name === undefined) throw new UsageError("'certs client' needs --name <client name>");
        const ca = await loadCaDir(values.ca);
        const pair = await createClientCert(ca, { ...common, name: values.name });
        written = await save(values.out ?? values.ca, fileBase(values.name), pair, force);
        break;
      }
      default:
        throw new UsageError(`unknown certificate kind '${kind}': expected ca, server or client`);
    }
    for (const p of written) process.stdout.write(`wrote ${p}\n`);
    return 0;
  } catch (err) {
    const usageHint = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    process.stderr.write(`telemq certs: ${(err as Error).message}${usageHint ? `\n\n${usage}` : ''}\n`);
    return 1;
  }
}
