/**
 * Certificate helpers behind `telemq certs`: a private CA, server certificates for host names and IP addresses, and
 * client certificates by name, as PEM. Keys are ECDSA P-256 by default (small, fast, accepted everywhere TLS 1.2+ is)
 * or RSA. Lifetimes: CA 10 years, server and client certificates 825 days (the longest some TLS clients accept from a
 * private CA). X.509 encoding is done by @peculiar/x509 over Node's WebCrypto; no openssl process is involved.
 */
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

// No DOM lib in server code: the WebCrypto types come from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

// Node's webcrypto is the WebCrypto the library expects; its d.ts names the DOM type, absent here.
x509.cryptoProvider.set(webcrypto as never);

export type KeyType = 'ec' | 'rsa';

export interface KeyOptions {
  keyType?: KeyType;
  /** RSA modulus length; 2048 by default, 3072 or 4096 allowed. */
  rsaBits?: 2048 | 3072 | 4096;
}

/** A certificate and its private key, both PEM (the key as unencrypted PKCS #8). */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_LEAF_DAYS = 825;
const DAY_MS = 86_400_000;
// Tolerate clocks that are a little behind the machine that issued the certificate.
const BACKDATE_MS = 3_600_000;

type Alg = webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;

function algorithmFor(opts: KeyOptions): Alg {
  if (opts.keyType === 'rsa') {
    return { name: 'RSASSA-PKCS1-v1_5', modulusLength: opts.rsaBits ?? 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  }
  return { name: 'ECDSA', namedCurve: 'P-256' };
}

function signingAlgorithm(alg: { name: string }): Algorithm | EcdsaParams {
  return alg.name === 'ECDSA' ? ({ name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams) : { name: alg.name };
}

async function generateKeys(opts: KeyOptions): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithmFor(opts), true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** A positive 127-bit serial number, as RFC 5280 asks (unique, at most 20 octets, not negative). */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function validity(days: number, notBefore: Date | undefined): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(days) || days < 1 || days > 36_500) throw new RangeError(`days must be 1 to 36500, got ${days}`);
  const start = notBefore?.getTime() ?? Date.now() - BACKDATE_MS;
  return { notBefore: new Date(start), notAfter: new Date(start + BACKDATE_MS + days * DAY_MS) };
}

/** A distinguished name with one CN (and optionally O), built as data so a name with ',' or '=' stays one value. */
function dn(commonName: string, organization?: string): x509.JsonName {
  const name: x509.JsonName = [];
  if (organization !== undefined) name.push({ O: [organization] });
  name.push({ CN: [commonName] });
  return name;
}

export interface CaOptions extends KeyOptions {
  commonName?: string;
  days?: number;
  /** Start of validity; default one hour ago. */
  notBefore?: Date;
}

/** Creates a self-signed CA that may sign leaf certificates only (path length 0). */
export async function createCa(opts: CaOptions = {}): Promise<CertificateAndKey> {
  const keys = await generateKeys(opts);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: dn(opts.commonName ?? 'telemq CA', 'telemq'),
    ...validity(opts.days ?? DEFAULT_CA_DAYS, opts.notBefore),
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey.algorithm),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await keyToPem(keys.privateKey) };
}

/** The CA read back from PEM, ready to sign. */
interface LoadedCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

async function loadCa(ca: CertificateAndKey): Promise<LoadedCa> {
  const cert = new x509.X509Certificate(ca.cert);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca !== true) throw new Error('the CA certificate is not a CA (basicConstraints CA:FALSE or missing)');
  const keyObject = createPrivateKey(ca.key);
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  let alg: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  if (keyObject.asymmetricKeyType === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined;
    if (namedCurve === undefined) throw new Error(`unsupported CA key curve ${String(curve)}`);
    alg = { name: 'ECDSA', namedCurve };
  } else if (keyObject.asymmetricKeyType === 'rsa') {
    alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    throw new Error(`unsupported CA key type ${String(keyObject.asymmetricKeyType)}`);
  }
  const key = await webcrypto.subtle.importKey('pkcs8', der, alg, false, ['sign']);
  // The key must belong to the certificate, or everything it signs would fail to verify.
  if (!new NodeX509(ca.cert).checkPrivateKey(keyObject)) throw new Error('the CA key does not match the CA certificate');
  return { cert, key };
}

interface LeafOptions extends KeyOptions {
  days?: number;
  /** Start of validity; default one hour ago (a date in the past makes expired certificates for tests). */
  notBefore?: Date;
}

async function createLeaf(
  ca: CertificateAndKey,
  commonName: string,
  usage: x509.ExtendedKeyUsage,
  altNames: x509.JsonGeneralName[],
  opts: LeafOptions,
): Promise<CertificateAndKey> {
  const issuer = await loadCa(ca);
  const keys = await generateKeys(opts);
  // RSA key exchange needs keyEncipherment; ECDHE with ECDSA needs only digitalSignature.
  const keyUsage =
    opts.keyType === 'rsa' ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsage, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: dn(commonName),
    issuer: issuer.cert.subjectName,
    ...validity(opts.days ?? DEFAULT_LEAF_DAYS, opts.notBefore),
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: signingAlgorithm(issuer.key.algorithm),
    extensions,
  });
  return { cert: cert.toString('pem') + '\n', key: await keyToPem(keys.privateKey) };
}

export interface ServerCertOptions extends LeafOptions {
  /** DNS names for the subjectAltName; the first is also the CN. */
  hosts?: string[];
  /** IPv4/IPv6 addresses for the subjectAltName. */
  ips?: string[];
}

/** Creates a TLS server certificate (serverAuth) for the given names and addresses, signed by `ca`. */
export async function createServerCert(ca: CertificateAndKey, opts: ServerCertOptions): Promise<CertificateAndKey> {
  const hosts = opts.hosts ?? [];
  const ips = opts.ips ?? [];
  if (hosts.length + ips.length === 0) throw new Error('a server certificate needs at least one host name or IP address');
  for (const h of hosts) {
    // Letters, digits, '-', '.', and a leading '*.' for a wildcard name.
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h) || h.length > 253) {
      throw new Error(`'${h}' is not a valid host name`);
    }
  }
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`'${ip}' is not an IP address`);
  const altNames: x509.JsonGeneralName[] = [
    ...hosts.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  return createLeaf(ca, hosts[0] ?? ips[0]!, x509.ExtendedKeyUsage.serverAuth, altNames, opts);
}

export interface ClientCertOptions extends LeafOptions {
  /** The CN; with `useIdentityAsUsername` it becomes the MQTT username. */
  name: string;
}

/** Creates a TLS client certificate (clientAuth) with CN = `name`, signed by `ca`. */
export async function createClientCert(ca: CertificateAndKey, opts: ClientCertOptions): Promise<CertificateAndKey> {
  if (opts.name.length === 0 || opts.name.length > 64) throw new Error('a client name must be 1 to 64 characters (the CN limit)');
  if (/[\u0000-\u001f\u007f]/.test(opts.name)) throw new Error('a client name must not contain control characters');
  return createLeaf(ca, opts.name, x509.ExtendedKeyUsage.clientAuth, [], opts);
}
