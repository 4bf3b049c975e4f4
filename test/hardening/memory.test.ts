/**
 * A subscriber that never reads while a publisher floods it: the broker's memory must stay bounded. The broker runs
 * in a child process so that its RSS is not mixed with the test's buffers.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RawClient, T, connect, publish, subscribe } from '../helpers/raw-client.js';

type Mem = { rss: number; heapUsed: number; external: number; arrayBuffers: number; dropped: number };

async function childBroker(t: TestContext): Promise<{ port: number; mem: () => Promise<Mem> }> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const child: ChildProcess = fork(fileURLToPath(new URL(`./memory-broker${ext}`, import.meta.url)), [], {
    execArgv: [...process.execArgv.filter((a) => !a.startsWith('--test')), '--expose-gc'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  t.after(async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.send('exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  });
  const [first] = (await once(child, 'message')) as [{ port: number }];
  const mem = async (): Promise<Mem> => {
    child.send('mem');
    const [m] = (await once(child, 'message')) as [{ mem: Mem }];
    return m.mem;
  };
  return { port: first.port, mem };
}

async function client(t: TestContext, port: number, version: 4 | 5, clientId: string): Promise<RawClient> {
  const c = await RawClient.connect(port);
  t.after(() => c.destroy());
  c.send(connect({ version, clientId }));
  await c.expect(T.CONNACK);
  return c;
}

/**
 * Publishes 64 KiB messages on `topic` until `limitBytes` are sent or the broker stops reading (no drain within
 * 1 s: TCP backpressure). Returns the bytes sent.
 */
async function flood(pub: RawClient, topic: string, qos: 0 | 1, limitBytes: number, deadline: number): Promise<number> {
  const payload = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  let id = 0;
  while (sent < limitBytes && Date.now() < deadline) {
    id = (id % 65_535) + 1;
    const bytes = publish({ topic, payload, qos, packetId: id });
    sent += bytes.length;
    if (!pub.socket.write(bytes)) {
      const drained = await Promise.race([once(pub.socket, 'drain').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref())]);
      if (!drained) break;
    }
  }
  return sent;
}

for (const qos of [0, 1] as const) {
  test(`a subscriber that never reads, flooded with QoS ${qos}: broker memory stays bounded; a bystander is still served`, async (t) => {
    const { port, mem } = await childBroker(t);
    const sub = await client(t, port, 4, `stuck-${qos}`);
    sub.send(subscribe({ version: 4 }, { topic: 'flood/#', qos: 1 }));
    await sub.expect(T.SUBACK);
    // Stop reading: the kernel buffers fill, then the broker's.
    sub.socket.pause();
    const bystander = await client(t, port, 5, `bystander-${qos}`);
    bystander.send(subscribe({ version: 5 }, { topic: 'calm/t', qos: 0 }));
    await bystander.expect(T.SUBACK);
    const pub = await client(t, port, 4, `firehose-${qos}`);
    // The publisher reads its PUBACKs (the client helper consumes them) so that only the subscriber is stuck.
    const before = await mem();
    const sent = await flood(pub, 'flood/x', qos, 1024 * 1024 * 1024, Date.now() + 4000);
    const after = await mem();
    const growth = after.rss - before.rss;
    const heap = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    t.diagnostic(`sent ${(sent / 2 ** 20).toFixed(0)} MiB; broker RSS +${(growth / 2 ** 20).toFixed(1)} MiB, heap+buffers +${(heap / 2 ** 20).toFixed(1)} MiB, dropped ${after.dropped}`);
    assert.ok(sent > 64 * 1024 * 1024, `the publisher was not stalled early (${sent} bytes)`);
    assert.ok(heap < 96 * 2 ** 20, `heap and buffers grew by ${heap} bytes`);
    assert.ok(growth < 256 * 2 ** 20, `RSS grew by ${growth} bytes`);
    assert.ok(after.dropped > 0, 'messages for the stuck subscriber were dropped, not buffered');
    // The bystander and new clients are still served.
    pub.send(publish({ topic: 'calm/t', payload: 'still here' }));
    for (;;) {
      const p = await bystander.expect(T.PUBLISH, 5000);
      if (p.body.subarray(p.body.length - 10).toString() === 'still here') break;
    }
    await client(t, port, 4, `late-${qos}`);
  });
}
