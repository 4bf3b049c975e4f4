/**
 * `telemq broker` runs the broker in a worker thread whose young generation is capped (TELEMQ_YOUNG_GENERATION_MB,
 * default 6), so that thousands of idle connections do not leave V8's young generation at 2 x 16 MB; signals,
 * error text and the exit code pass through the main thread.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { connectOnce, startCli } from './broker-cli-process.js';

const args = ['--host', '127.0.0.1', '--port', '0', '--no-sys', '--memory'];
const threadLine = (e: { msg?: string }): boolean => e.msg === 'broker thread started';

test('by default the broker runs in a thread with a 6 MB young generation; SIGHUP and SIGTERM reach it', async (t) => {
  const cli = startCli(t, args);
  const [url] = await cli.listening(1);
  assert.equal(cli.logs.find(threadLine)?.youngGenerationMb, 6);
  const client = await connectOnce(t, url as string, { protocolVersion: 5 });
  cli.child.kill('SIGHUP');
  await cli.waitLog((e) => e.msg === 'SIGHUP: reloaded');
  const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
  assert.equal(await cli.stop(), 0);
  assert.equal(await disconnect, 0x8b);
});

test('TELEMQ_YOUNG_GENERATION_MB sizes the thread; 0, or Node\'s own --max-semi-space-size, keeps the main thread', async (t) => {
  const sized = startCli(t, args, undefined, { TELEMQ_YOUNG_GENERATION_MB: '12' });
  await sized.listening(1);
  assert.equal(sized.logs.find(threadLine)?.youngGenerationMb, 12);
  assert.equal(await sized.stop(), 0);
  for (const env of [{ TELEMQ_YOUNG_GENERATION_MB: '0' }, { NODE_OPTIONS: '--max-semi-space-size=4' }]) {
    const main = startCli(t, args, undefined, env);
    const [url] = await main.listening(1);
    await connectOnce(t, url as string);
    assert.equal(main.logs.some(threadLine), false, JSON.stringify(env));
    assert.equal(await main.stop(), 0);
  }
});

test('a broker thread that cannot start reports why on stderr and exits 1', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const cli = startCli(t, ['--host', '127.0.0.1', '--port', String(port), '--no-sys', '--memory']);
  assert.equal(await cli.exited, 1);
  assert.match(cli.stderr(), /telemq broker: listen EADDRINUSE/);
  assert.ok(cli.logs.some(threadLine), 'it was the thread that failed');
});
