import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';

const CHROMIUM = '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
// Compiled: build/test/browser -> build/src. Under tsx: test/browser -> ../../build/src (run `npm run build:test` first).
const root = here.includes(join('build', 'test')) ? join(here, '../../..') : join(here, '../..');
const compiledSrc = join(root, 'build', 'src');
const nodeModules = join(root, 'node_modules');

/**
 * The `buffer` package (what bundlers put in a browser build) wrapped as one ES module that installs
 * globalThis.Buffer. It and its two dependencies are CommonJS, so a tiny require() links them.
 */
async function bufferShim(): Promise<string> {
  const sources: Record<string, string> = {};
  for (const name of ['base64-js', 'ieee754', 'buffer']) sources[name] = await readFile(join(nodeModules, name, 'index.js'), 'utf8');
  const factories = Object.entries(sources)
    .map(([name, src]) => `${JSON.stringify(name)}: function (module, exports, require) {\n${src}\n}`)
    .join(',\n');
  return `const factories = {${factories}};
const cache = {};
function require(name) {
  if (cache[name]) return cache[name].exports;
  const module = { exports: {} };
  cache[name] = module;
  factories[name](module, module.exports, require);
  return module.exports;
}
globalThis.Buffer = require('buffer').Buffer;
export {};
`;
}

const page = `<!doctype html><meta charset="utf-8"><title>telemq client</title>
<script type="module">
  import '/buffer-shim.js';
  // The client is imported only after Buffer exists: the codec allocates at module load.
  window.telemq = await import('/src/client/index.js');
  window.ready = true;
</script>`;

test('browser build: the client publishes and receives over WebSocket in headless Chromium', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is absent (apt-get install chromium); the browser test needs it`);
    return;
  }
  if (!existsSync(join(compiledSrc, 'client', 'index.js'))) {
    t.skip(`no compiled client in ${compiledSrc}: run 'npm run build:test' first`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const broker = await startMosquitto(t, { websockets: true });
  assert.ok(broker.wsUrl);
  const shim = await bufferShim();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    if (url.pathname === '/buffer-shim.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(shim);
      return;
    }
    // Only the compiled sources: anything importing outside build/src (a Node built-in, a package) fails to load.
    const file = normalize(join(compiledSrc, url.pathname.replace(/^\/src\//, '/')));
    if (!url.pathname.startsWith('/src/') || !file.startsWith(compiledSrc) || !file.endsWith('.js')) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.after(() => browser.close());
  const tab = await browser.newPage();
  const failedRequests: string[] = [];
  tab.on('requestfailed', (r) => failedRequests.push(r.url()));
  tab.on('response', (r) => {
    if (r.status() >= 400) failedRequests.push(`${r.status()} ${r.url()}`);
  });
  const pageErrors: string[] = [];
  tab.on('pageerror', (e) => pageErrors.push(e.message));
  await tab.goto(`http://127.0.0.1:${address.port}/`);
  await tab.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 5000 });
  assert.deepEqual(failedRequests, [], 'every module of the client loads in the browser');
  assert.deepEqual(pageErrors, []);

  // A Node client on the TCP listener talks to the browser client on the WebSocket listener.
  const node = await connect(broker.url, { reconnect: false });
  t.after(() => node.end());
  await node.subscribe('browser/out', { qos: 1 });
  const fromBrowser = new Promise<string>((resolve) => node.once('message', (m) => resolve(m.payload.toString())));

  const running = tab.evaluate(async (wsUrl) => {
    type Client = {
      subscribe(f: string, o: { qos: number }): Promise<number[]>;
      publish(t: string, p: string, o: { qos: number }): Promise<{ reasonCode: number }>;
      messages(f?: string): AsyncIterableIterator<{ topic: string; payload: Uint8Array; qos: number }>;
      end(): Promise<void>;
      protocolVersion: number;
    };
    const telemq = (globalThis as unknown as { telemq: { connect(url: string, o: object): Promise<Client> } }).telemq;
    const client = await telemq.connect(wsUrl, { reconnect: false });
    const granted = await client.subscribe('browser/in', { qos: 2 });
    const iterator = client.messages('browser/in');
    const published = await client.publish('browser/out', 'from chromium', { qos: 1 });
    const first = await iterator.next();
    const message = first.value as { topic: string; payload: Uint8Array; qos: number };
    const text = new TextDecoder().decode(message.payload);
    await client.end();
    return { granted, reasonCode: published.reasonCode, topic: message.topic, text, qos: message.qos, version: client.protocolVersion };
  }, broker.wsUrl);
  // The browser waits for browser/in: the Node side sends it once the browser's message arrived.
  assert.equal(await fromBrowser, 'from chromium');
  await node.publish('browser/in', 'from node', { qos: 2 });
  const result = await running;
  assert.deepEqual(result, { granted: [2], reasonCode: 0, topic: 'browser/in', text: 'from node', qos: 2, version: 5 });
});
