/** `telemq broker`: run the MQTT broker. Flags override the config file; the config file overrides defaults. */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { isMainThread, resourceLimits, Worker } from 'node:worker_threads';
import {
  ConfigError,
  createBroker,
  createLogger,
  defaultSqlitePersistence,
  loadConfigFile,
  resolveConfig,
  type BrokerConfig,
  type DeepPartial,
  type ListenerConfig,
} from '../broker/index.js';

const usage = `Usage: telemq broker [options]

Options:
  -c, --config <file>       YAML config file (see docs/configuration.md)
  -p, --port <n>            plain MQTT on this TCP port (replaces the configured tcp listeners)
  -H, --host <address>      listen on this address (default 127.0.0.1 and ::1; 0.0.0.0 or :: for all)
      --tls-port <n>        add MQTT over TLS (8883) with --cert and --key
      --mtls-port <n>       add MQTT over TLS requiring a client certificate signed by --cafile (8884);
                            the certificate's CN is the username (--identity-from to change)
      --ws-port <n>         add MQTT over WebSocket (path /mqtt)
      --wss-port <n>        add MQTT over secure WebSocket with --cert and --key
      --cert <file>         server certificate chain, PEM
      --key <file>          server private key, PEM
      --cafile <file>       CA that signs client certificates (--mtls-port)
      --identity-from <f>   cn, san-dns, san-email or san-uri (--mtls-port; default cn)
      --password-file <f>   users and password hashes (telemq passwd)
      --acl-file <file>     access control list (docs/security.md)
      --allow-anonymous     admit clients without a username on every listener, not only on loopback ones
      --db <file>           SQLite database (default ./data/telemq.db)
      --durability <mode>   none, batch or sync (default batch; docs/persistence.md)
      --memory              keep everything in memory (nothing survives a restart)
  -l, --log-level <l>       fatal, error, warn, info, debug, trace or silent (default info)
      --max-qos <0|1|2>     highest QoS granted
      --no-sys              do not publish $SYS topics
      --check               validate the configuration and exit
  -h, --help                show this help

SIGHUP reloads the password file, the ACL file and the TLS certificates; connected clients stay connected.
`;

const options = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string', short: 'H' },
  'tls-port': { type: 'string' },
  'mtls-port': { type: 'string' },
  'ws-port': { type: 'string' },
  'wss-port': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  cafile: { type: 'string' },
  'identity-from': { type: 'string' },
  'password-file': { type: 'string' },
  'acl-file': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  db: { type: 'string' },
  durability: { type: 'string' },
  memory: { type: 'boolean' },
  'log-level': { type: 'string', short: 'l' },
  'max-qos': { type: 'string' },
  'no-sys': { type: 'boolean' },
  check: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; strict: true; allowPositionals: false }>>['values'];

function num(name: string, s: string): number {
  if (!/^\d+$/.test(s)) throw new ConfigError([`--${name}: expected a number, got ${JSON.stringify(s)}`]);
  return Number(s);
}

/** The file's settings with the flags applied over them; validated by the caller. */
export function mergeFlags(file: DeepPartial<BrokerConfig>, v: Values): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...file };
  const hosts = v.host === undefined ? ['127.0.0.1', '::1'] : [v.host];
  let listeners: ListenerConfig[] = (file.listeners ?? resolveConfig({}).listeners) as ListenerConfig[];
  if (v.port !== undefined || v.host !== undefined) {
    const port = v.port === undefined ? 1883 : num('port', v.port);
    listeners = [...listeners.filter((l) => l.type !== 'tcp'), ...hosts.map((host): ListenerConfig => ({ type: 'tcp', host, port }))];
  }
  const tlsNeeded = v['tls-port'] !== undefined || v['mtls-port'] !== undefined || v['wss-port'] !== undefined;
  const problems: string[] = [];
  if (tlsNeeded && (v.cert === undefined || v.key === undefined)) problems.push('--tls-port, --mtls-port and --wss-port need --cert and --key');
  if (!tlsNeeded && (v.cert !== undefined || v.key !== undefined)) problems.push('--cert and --key go with --tls-port, --mtls-port or --wss-port');
  if (v['mtls-port'] !== undefined && v.cafile === undefined) problems.push('--mtls-port needs --cafile');
  if (v['mtls-port'] === undefined && (v.cafile !== undefined || v['identity-from'] !== undefined)) {
    problems.push('--cafile and --identity-from go with --mtls-port');
  }
  if (v.memory === true && (v.db !== undefined || v.durability !== undefined)) problems.push('--memory excludes --db and --durability');
  if (problems.length > 0) throw new ConfigError(problems);
  const files = { certFile: v.cert ?? '', keyFile: v.key ?? '' };
  const add = (port: string | undefined, flag: string, make: (host: string, port: number) => ListenerConfig): void => {
    if (port !== undefined) listeners = [...listeners, ...hosts.map((host) => make(host, num(flag, port)))];
  };
  add(v['tls-port'], 'tls-port', (host, port) => ({ type: 'tls', host, port, ...files }));
  add(v['mtls-port'], 'mtls-port', (host, port) => ({
    type: 'tls',
    host,
    port,
    ...files,
    caFile: v.cafile ?? '',
    requireClientCertificate: true,
    // Validated with the rest of the config.
    identityFrom: (v['identity-from'] ?? 'cn') as 'cn',
  }));
  add(v['ws-port'], 'ws-port', (host, port) => ({ type: 'ws', host, port }));
  add(v['wss-port'], 'wss-port', (host, port) => ({ type: 'wss', host, port, ...files }));
  if (listeners !== file.listeners) merged.listeners = listeners;

  const auth: Record<string, unknown> = { ...(file.auth ?? {}) };
  if (v['password-file'] !== undefined) auth.passwordFile = v['password-file'];
  if (v['acl-file'] !== undefined) auth.aclFile = v['acl-file'];
  if (v['allow-anonymous'] === true) auth.allowAnonymous = true;
  if (Object.keys(auth).length > 0) merged.auth = auth;

  // `telemq broker` keeps its data in ./data unless told otherwise (createBroker() defaults to memory).
  if (v.memory === true) merged.persistence = { type: 'memory' };
  else if (v.db !== undefined || v.durability !== undefined) {
    const base = file.persistence?.type === 'sqlite' ? file.persistence : defaultSqlitePersistence;
    merged.persistence = { ...base, ...(v.db === undefined ? {} : { path: v.db }), ...(v.durability === undefined ? {} : { durability: v.durability }) };
  } else if (file.persistence === undefined) merged.persistence = { ...defaultSqlitePersistence };

  if (v['log-level'] !== undefined) merged.log = { ...(file.log ?? {}), level: v['log-level'] };
  if (v['max-qos'] !== undefined) merged.mqtt = { ...(file.mqtt ?? {}), maximumQoS: num('max-qos', v['max-qos']) };
  if (v['no-sys'] === true) merged.sys = { ...(file.sys ?? {}), enabled: false };
  return merged;
}

/**
 * Where the broker runs: signals to react to, where error text goes, whether logs are for a terminal. The main
 * thread uses the process's own; the broker thread gets them from the main thread (broker-thread.ts).
 */
export interface BrokerHost {
  signals: Pick<EventEmitter, 'on' | 'off'>;
  stderr(text: string): void;
  pretty: boolean;
}

const processHost: BrokerHost = {
  signals: process,
  stderr: (text) => process.stderr.write(text),
  get pretty() {
    return process.stdout.isTTY === true;
  },
};

const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const;

/**
 * Young generation of the broker thread (MB), from TELEMQ_YOUNG_GENERATION_MB; 0 = run in the main thread with
 * Node's own heap settings. A broker holds thousands of long-lived connections, and V8's young generation, grown by
 * the burst that opened them to 2 x 16 MB, is never given back: capped at 6 MB (2 MB semi-spaces) an idle
 * connection costs about 4 KB of RSS instead of 6.4 KB. V8 sets this only when a heap is created, and a worker's
 * heap is the one Node lets a program size (docs/performance.md).
 */
function youngGenerationMb(): number {
  const raw = process.env.TELEMQ_YOUNG_GENERATION_MB;
  // A user who sized the heap with Node's own flag gets exactly that.
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (raw === undefined) return /--(max-semi-space-size|max_semi_space_size)/.test(flags) ? 0 : 6;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : 6;
}

/** Serves `config` in a worker thread sized by `youngMb` (broker-thread.ts); signals are forwarded to it. */
function runInThread(config: BrokerConfig, youngMb: number): Promise<number> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const worker = new Worker(new URL(`./broker-thread${ext}`, import.meta.url), {
    // The configuration is plain data, checked once here: the thread does not read the config file again.
    workerData: { config, pretty: process.stdout.isTTY === true },
    resourceLimits: { maxYoungGenerationSizeMb: youngMb },
  });
  const forward = SIGNALS.map((signal) => [signal, () => worker.postMessage({ signal })] as const);
  for (const [signal, fn] of forward) process.on(signal, fn);
  return new Promise<number>((resolve) => {
    let code: number | undefined;
    worker.on('message', (m: { stderr?: string; exitCode?: number }) => {
      if (typeof m.stderr === 'string') process.stderr.write(m.stderr);
      if (typeof m.exitCode === 'number') {
        code = m.exitCode;
        // Nothing should keep the thread alive after the broker closed; if something does, do not hang on it.
        setTimeout(() => void worker.terminate(), 3000).unref();
      }
    });
    worker.on('error', (err) => {
      // An uncaught error ends the thread as it would end the process: keep the stack for the bug report.
      process.stderr.write(`telemq broker: ${err.stack ?? err.message}\n`);
      code ??= 1;
    });
    worker.on('exit', (exit) => {
      for (const [signal, fn] of forward) process.off(signal, fn);
      resolve(code ?? (exit === 0 ? 0 : 1));
    });
  });
}

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    process.stderr.write(`telemq broker: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const v = args.values;
  if (v.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  let config: BrokerConfig;
  try {
    const file: DeepPartial<BrokerConfig> = v.config === undefined ? {} : await loadConfigFile(v.config);
    config = resolveConfig(mergeFlags(file, v));
  } catch (err) {
    if (err instanceof ConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`telemq broker: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
  if (v.check === true) {
    process.stdout.write('configuration is valid\n');
    return 0;
  }
  const young = youngGenerationMb();
  return young > 0 ? runInThread(config, young) : serve(config, processHost);
}

/** Runs the broker on `config` until SIGTERM/SIGINT (from `host`); resolves with the exit code. */
export function serve(config: BrokerConfig, host: BrokerHost): Promise<number> {
  const { stderr } = host;
  const logger = createLogger(config.log.level, { pretty: host.pretty });
  if (!isMainThread) logger.info({ youngGenerationMb: resourceLimits.maxYoungGenerationSizeMb }, 'broker thread started');
  let broker;
  try {
    broker = createBroker(config, { logger });
  } catch (err) {
    stderr(`telemq broker: ${(err as Error).message}\n`);
    return Promise.resolve(1);
  }
  const running = broker;
  return new Promise<number>((resolve) => {
    let stopping = false;
    // Handlers go in before start(): a signal without a handler would kill the process with its default action.
    const started = running.start().then(
      () => true,
      (err: unknown) => {
        // A missing password file, a corrupt or locked database, a port in use: the message says which.
        logger.error({ err }, 'broker failed to start');
        stderr(`telemq broker: ${(err as Error).message}\n`);
        return false;
      },
    );
    let reloading: Promise<unknown> = started;
    const reload = (): void => {
      // One reload at a time, after the start; a SIGHUP during a reload runs after it.
      reloading = reloading
        .then(async () => {
          if (stopping) return;
          const results = await running.reload();
          const failed = results.filter((r) => !r.ok);
          const summary = { reloaded: results.filter((r) => r.ok).map((r) => r.target), failed: failed.map((r) => `${r.target}: ${r.error ?? ''}`) };
          if (failed.length > 0) logger.warn(summary, 'SIGHUP: reload incomplete, the failed parts keep their previous version');
          else logger.info(summary, 'SIGHUP: reloaded');
        })
        .catch((err: unknown) => logger.error({ err }, 'SIGHUP: reload failed'));
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    const signals = host.signals;
    const detach = (): void => {
      signals.off('SIGHUP', reload);
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
    };
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void started.then(async (ok) => {
        if (!ok) return;
        try {
          await running.close();
          detach();
          resolve(0);
        } catch (err) {
          logger.error({ err }, 'shutdown failed');
          detach();
          resolve(1);
        }
      });
    };
    signals.on('SIGHUP', reload);
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
    void started.then((ok) => {
      if (ok) return;
      detach();
      resolve(1);
    });
  });
}
