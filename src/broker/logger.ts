/** pino logger for the broker: human-readable on a terminal, JSON lines otherwise. */
import { pino } from 'pino';
import type { Logger } from '../shared/logger.js';
import type { LogConfig } from './config.js';

export function createLogger(level: LogConfig['level'], options: { pretty?: boolean } = {}): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: { name: 'telemq' } });
}
