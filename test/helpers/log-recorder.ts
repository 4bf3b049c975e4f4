/** A Logger that keeps what it is given, for tests that check log lines. */
import { silentLogger, type Logger } from '../../src/shared/logger.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface LogLine {
  level: Level;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** Records the lines of `levels` (all four by default); child loggers record into the same list. */
export function recordingLogger(levels: readonly Level[] = ['debug', 'info', 'warn', 'error']): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger: Logger = { ...silentLogger, child: () => logger };
  for (const level of levels) {
    logger[level] = (obj, msg) => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  }
  return { logger, lines };
}
