import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

export interface MosquittoOptions {
  /** Also open a WebSocket listener. */
  websockets?: boolean;
  /** Refuse anonymous clients (CONNACK not authorized). */
  denyAnonymous?: boolean;
  /** Lines appended to the generated configuration. */
  extraConfig?: string[];
}

export interface Mosquitto {
  port: number;
  url: string;
  wsPort: number | undefined;
  wsUrl: string | undefined;
  dir: string;
  readonly pid: number | undefined;
  /** Kills the broker (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports with the same persistence directory. */
  start(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (mosquitto cannot report the port it got for 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Starts Debian's mosquitto on ephemeral ports with persistence in a temp dir; stopped in t.after.
 * Persistence saves after every change, so a SIGKILL loses nothing acknowledged.
 */
export async function startMosquitto(t: TestContext, options: MosquittoOptions = {}): Promise<Mosquitto> {
  if (MOSQUITTO === undefined) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  const dir = await mkdtemp(join(tmpdir(), 'telemq-mosquitto-'));
  const port = await freePort();
  const wsPort = options.websockets === true ? await freePort() : undefined;
  const lines = [
    'user root',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'persistence true',
    `persistence_location ${dir}/`,
    'autosave_interval 1',
    'autosave_on_changes true',
    'max_inflight_messages 0',
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${options.denyAnonymous === true ? 'false' : 'true'}`,
  ];
  if (wsPort !== undefined) lines.push(`listener ${wsPort} 127.0.0.1`, 'protocol websockets');
  lines.push(...(options.extraConfig ?? []));
  const configFile = join(dir, 'mosquitto.conf');
  await writeFile(configFile, lines.join('\n') + '\n');

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    const proc = spawn(MOSQUITTO, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    let log = '';
    const listeners = wsPort === undefined ? 1 : 2;
    await new Promise<void>((resolve, reject) => {
      let opened = 0;
      const onData = (chunk: Buffer): void => {
        log += chunk.toString();
        opened = (log.match(/Opening (?:ipv4 |ipv6 |websockets )?listen socket on port/g) ?? []).length;
        if (/mosquitto version .* running/.test(log) && opened >= listeners) {
          proc.stderr?.off('data', onData);
          proc.stderr?.resume();
          resolve();
        }
      };
      proc.stderr?.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`mosquitto exited (${String(code)}):\n${log}`)));
      proc.once('error', reject);
    });
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited;
  };

  await start();
  t.after(async () => {
    await kill();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    wsPort,
    wsUrl: wsPort === undefined ? undefined : `ws://127.0.0.1:${wsPort}`,
    dir,
    get pid() {
      return child?.pid;
    },
    kill,
    start,
  };
}
