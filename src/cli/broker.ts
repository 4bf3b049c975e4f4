/** `telemq broker`: run the MQTT broker. Flags override the config file; the config file overrides defaults. */
import { parseArgs } from 'node:util';
import {
  ConfigError,
  createBroker,
  createLogger,
  loadConfigFile,
  resolveConfig,
  type BrokerConfig,
  type DeepPartial,
} from '../broker/index.js';

const usage = `Usage: telemq broker [options]

Options:
  -c, --config <file>     YAML config file (see docs/configuration.md)
  -p, --port <n>          listen on this TCP port (replaces the configured listeners)
  -H, --host <address>    listen on this address (default 127.0.0.1 and ::1; 0.0.0.0 or :: for all)
  -l, --log-level <l>     fatal, error, warn, info, debug, trace or silent (default info)
      --max-qos <0|1|2>   highest QoS granted
      --no-sys            do not publish $SYS topics
      --check             validate the configuration and exit
  -h, --help              show this help
`;

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        'log-level': { type: 'string', short: 'l' },
        'max-qos': { type: 'string' },
        'no-sys': { type: 'boolean' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
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
    const merged: Record<string, unknown> = { ...file };
    const num = (name: string, s: string): number => {
      if (!/^\d+$/.test(s)) throw new ConfigError([`--${name}: expected a number, got ${JSON.stringify(s)}`]);
      return Number(s);
    };
    if (v.port !== undefined || v.host !== undefined) {
      const port = v.port === undefined ? 1883 : num('port', v.port);
      const hosts = v.host === undefined ? ['127.0.0.1', '::1'] : [v.host];
      merged.listeners = hosts.map((host) => ({ type: 'tcp', host, port }));
    }
    if (v['log-level'] !== undefined) merged.log = { ...(file.log ?? {}), level: v['log-level'] };
    if (v['max-qos'] !== undefined) merged.mqtt = { ...(file.mqtt ?? {}), maximumQoS: num('max-qos', v['max-qos']) };
    if (v['no-sys'] === true) merged.sys = { ...(file.sys ?? {}), enabled: false };
    config = resolveConfig(merged);
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
  const logger = createLogger(config.log.level);
  const broker = createBroker(config, { logger });
  try {
    await broker.start();
  } catch (err) {
    logger.error({ err }, 'broker failed to start');
    process.stderr.write(`telemq broker: ${(err as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      broker.close().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
