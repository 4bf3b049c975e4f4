import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const run = promisify(execFile);

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A throw-away CA, a server certificate for localhost/127.0.0.1 and a client certificate (openssl, P-256). */
export async function makeCerts(t: TestContext): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'telemq-certs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const p = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-subj', '/CN=telemq test CA', '-days', '2']);
  await writeFile(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await writeFile(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', 'localhost'], ['client', 'device-1']] as const) {
    await run('openssl', ['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`)]);
  }
  return { dir, ca: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

/** mosquitto listener lines: TLS that requires a client certificate. */
export function tlsListener(port: number, certs: TestCerts, websockets = false): string[] {
  return [
    `listener ${port} 127.0.0.1`,
    ...(websockets ? ['protocol websockets'] : []),
    `cafile ${certs.ca}`,
    `certfile ${certs.serverCert}`,
    `keyfile ${certs.serverKey}`,
    'require_certificate true',
  ];
}
