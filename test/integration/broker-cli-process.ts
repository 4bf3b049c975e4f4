/**
 * `telemq broker` as a child process for the broker-cli*.test.ts files: JSON log lines collected, bound listeners
 * read from the `listening` lines, log events awaited, killed by PID in t.after. Not a test file itself.
 */
import type { TestContext } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

// Compiled (build/test/integration/*.js) or run by tsx (test/integration/*.ts): the CLI sits in the same tree.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const cliMain = fileURLToPath(new URL(`../../src/cli/main${ext}`, import.meta.url));

/**
 * The parent's execArgv (`--import tsx` under tsx, nothing when compiled), with a bare `tsx` resolved here: the
 * child may run in a temp folder where `tsx` would not resolve.
 */
const execArgv = process.execArgv.map((arg) => {
  if (arg === 'tsx') return import.meta.resolve('tsx');
  if (arg === '--import=tsx') return `--import=${import.meta.resolve('tsx')}`;
  return arg;
});

export type LogEntry = Record<string, unknown> & { msg?: string };

export interface CliBroker {
  child: ChildProcess;
  logs: LogEntry[];
  stderr: () => string;
  /** Resolves with the bound listener URLs (`mqtts://127.0.0.1:40123`, ...) once `count` are listening. */
  listening(count: number): Promise<string[]>;
  /** The next log entry (from now on, or already logged after `since`) that satisfies `match`. */
  waitLog(match: (e: LogEntry) => boolean, since?: number): Promise<LogEntry>;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

export function startCli(t: TestContext, args: string[], cwd?: string, env?: NodeJS.ProcessEnv): CliBroker {
  const child = spawn(process.execPath, [...execArgv, cliMain, 'broker', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
    ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const logs: LogEntry[] = [];
  const waiters: Array<{ match: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const entry = JSON.parse(line) as LogEntry;
    logs.push(entry);
    for (const w of [...waiters]) {
      if (w.match(entry)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  });
  const waitLog = (match: (e: LogEntry) => boolean, since = logs.length): Promise<LogEntry> => {
    const seen = logs.slice(since).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ match, resolve });
      void exited.then((code) => reject(new Error(`broker exited with ${code}: ${err}`)));
    });
  };
  return {
    child,
    logs,
    exited,
    stderr: () => err,
    async listening(count) {
      const urls = (): string[] => logs.filter((e) => e.msg === 'listening').map((e) => String(e.listener));
      while (urls().length < count) await waitLog((e) => e.msg === 'listening');
      return urls();
    },
    waitLog,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Connects once (no reconnect); resolves with the client or rejects with the error or close that came first. */
export function connectOnce(t: TestContext, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts });
  t.after(() => client.endAsync(true));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** The port of a listener URL such as `mqtts://127.0.0.1:40123`. */
export function portOf(url: string): number {
  const m = /:(\d+)$/.exec(url);
  if (m === null) throw new Error(`no port in ${url}`);
  return Number(m[1]);
}
