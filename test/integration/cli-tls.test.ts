import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, startMosquitto } from '../helpers/mosquitto.js';
import { makeCerts, tlsListener } from '../interop/client-certs.js';

const fromSource = import.meta.url.endsWith('.ts');
const mainFile = fileURLToPath(new URL(fromSource ? '../../src/cli/main.ts' : '../../src/cli/main.js', import.meta.url));
const nodeArgs = fromSource ? ['--import', 'tsx', mainFile] : [mainFile];

function telemq(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeArgs, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

test('telemq pub over TLS: --cafile/--cert/--key connect; an untrusted broker gets an actionable error', async (t) => {
  const certs = await makeCerts(t);
  const port = await freePort();
  await startMosquitto(t, { extraConfig: tlsListener(port, certs) });
  const common = ['pub', '-h', 'localhost', '-p', String(port), '-t', 'tls', '-m', 'x', '-q', '1'];
  const ok = await telemq([...common, '--cafile', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey]);
  assert.equal(ok.code, 0, ok.stderr);
  const untrusted = await telemq([...common, '--cert', certs.clientCert, '--key', certs.clientKey]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /^Error: TLS: the broker's certificate is not trusted \([A-Z_]+\); pass its CA with --cafile\n$/);
  const halfPair = await telemq([...common, '--cafile', certs.ca, '--cert', certs.clientCert]);
  assert.match(halfPair.stderr, /--cert and --key go together/);
});
