import { connect, topicMatches, type Message, type MqttClient, type QoS } from '../client/index.js';
import { reasonName } from '../client/errors.js';
import { clientSetup, commonFlags, commonHelp, describeError, flag, has, parseArgs, qosFlag, UsageError, type FlagSpec } from './client-args.js';

const flags: Record<string, FlagSpec> = {
  ...commonFlags,
  '-T': { value: true, multiple: true },
  '-U': { value: true, multiple: true },
  '-v': { value: false },
  '-C': { value: true },
  '-W': { value: true },
  '-R': { value: false },
  '-E': { value: false },
  '-N': { value: false },
  '-F': { value: true },
  '--retained-only': { value: false },
};

const help = `Usage: telemq sub -t FILTER [-t FILTER ...] [options]

Subscribe and print the messages received.
  -t, --topic FILTER     topic filter to subscribe to (repeatable)
  -T FILTER              do not print messages matching FILTER (repeatable)
  -U FILTER              unsubscribe from FILTER (repeatable; with -c and -i to edit a kept session)
  -q, --qos 0|1|2        requested QoS (default 0)
  -v, --verbose          print "topic payload"
  -F FORMAT              print with a format: %t topic, %p payload, %q QoS, %r retain, %l length,
                         %x/%X payload hex, %I ISO time, %U Unix time, %C content type, %R response topic,
                         %D correlation data, %P user properties, %% percent; \\n \\t \\\\ escapes
  -N                     no newline after each message
  -C, --count N          exit after N messages
  -W, --timeout SEC      exit after SEC seconds (exit status 27, as mosquitto_sub)
  -R, --no-retain        skip retained (stale) messages
  --retained-only        print retained messages only; exit at the first live one
  -E                     exit once the subscriptions are acknowledged
${commonHelp}`;

function escapes(format: string): string {
  return format.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c === '0' ? '\0' : c));
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

export function formatMessage(format: string, m: Message, now: Date): string {
  return format.replace(/%(.)/g, (whole, c: string) => {
    const p = m.properties;
    switch (c) {
      case '%':
        return '%';
      case 't':
        return m.topic;
      case 'p':
        return m.payload.toString('utf8');
      case 'q':
        return String(m.qos);
      case 'r':
        return m.retain ? '1' : '0';
      case 'l':
        return String(m.payload.length);
      case 'x':
        return m.payload.toString('hex');
      case 'X':
        return m.payload.toString('hex').toUpperCase();
      case 'I':
        return now.toISOString();
      case 'U':
        return (now.getTime() / 1000).toFixed(3);
      case 'C':
        return p?.contentType ?? '';
      case 'R':
        return p?.responseTopic ?? '';
      case 'D':
        return p?.correlationData?.toString('utf8') ?? '';
      case 'E':
        return p?.messageExpiryInterval === undefined ? '' : String(p.messageExpiryInterval);
      case 'P':
        return (p?.userProperties ?? []).map(([k, v]) => `${k}:${v}`).join(' ');
      default:
        return whole;
    }
  });
}

export function jsonLine(m: Message, now: Date): string {
  const utf8 = isUtf8(m.payload);
  return JSON.stringify({
    tst: now.toISOString(),
    topic: m.topic,
    qos: m.qos,
    retain: m.retain,
    payloadlen: m.payload.length,
    ...(utf8 ? { payload: m.payload.toString('utf8') } : { payload_base64: m.payload.toString('base64') }),
    ...(m.properties === undefined
      ? {}
      : {
          properties: {
            ...m.properties,
            ...(m.properties.correlationData === undefined ? {} : { correlationData: m.properties.correlationData.toString('base64') }),
          },
        }),
  });
}

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv, flags);
  } catch (err) {
    process.stderr.write(`telemq sub: ${(err as Error).message}\nRun 'telemq sub --help' for the options.\n`);
    return 1;
  }
  if (has(args, '--help')) {
    process.stdout.write(help + '\n');
    return 0;
  }
  const quiet = has(args, '--quiet');
  const fail = (message: string): number => {
    if (!quiet) process.stderr.write(message + '\n');
    return 1;
  };
  let setup;
  let qos: QoS;
  let count: number | undefined;
  let timeout: number | undefined;
  try {
    setup = clientSetup(args, 'telemq-sub-');
    qos = qosFlag(args);
    const c = flag(args, '-C');
    if (c !== undefined) {
      count = Number(c);
      if (!Number.isInteger(count) || count < 1) throw new UsageError(`-C needs a positive integer, not '${c}'`);
    }
    const w = flag(args, '-W');
    if (w !== undefined) {
      timeout = Number(w);
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`-W needs a positive number of seconds, not '${w}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(`telemq sub: ${err.message}\nRun 'telemq sub --help' for the options.`);
    return fail(`telemq sub: ${(err as Error).message}`);
  }
  const filters = [...(args.flags.get('-t') ?? [])];
  if (filters.length === 0 && setup.topicFromUrl !== undefined) filters.push(setup.topicFromUrl);
  const unsubscribes = args.flags.get('-U') ?? [];
  if (filters.length === 0 && unsubscribes.length === 0) return fail("telemq sub: no topic: give -t FILTER\nRun 'telemq sub --help' for the options.");
  const excluded = args.flags.get('-T') ?? [];
  const format = flag(args, '-F');
  const json = has(args, '--json');
  const verbose = has(args, '-v');
  const newline = has(args, '-N') ? '' : '\n';
  const skipRetained = has(args, '-R');
  const retainedOnly = has(args, '--retained-only');
  const debug = has(args, '-d');

  let client: MqttClient;
  try {
    // A subscriber keeps going through broker restarts, as mosquitto_sub does.
    client = await connect(setup.url, { ...setup.options, reconnect: { initialDelay: 500, maxDelay: 10_000 } });
  } catch (err) {
    return fail(describeError(err, setup.url));
  }
  if (debug) {
    process.stderr.write(`Connected to ${setup.url} as ${client.clientId}\n`);
    client.on('offline', (e) => process.stderr.write(`Connection lost${e === undefined ? '' : `: ${e.message}`}; reconnecting\n`));
    client.on('connect', () => process.stderr.write('Reconnected\n'));
  }
  client.on('error', (e) => {
    if (!quiet) process.stderr.write(`Error: ${e.message}\n`);
  });

  let exitCode = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (unsubscribes.length > 0) await client.unsubscribe(unsubscribes, args.properties.unsubscribe);
    if (filters.length > 0) {
      const codes = await client.subscribe(
        filters.map((topicFilter) => ({ topicFilter, qos })),
        args.properties.subscribe === undefined ? {} : { properties: args.properties.subscribe },
      );
      let refused = 0;
      codes.forEach((code, i) => {
        if (code >= 0x80) {
          refused++;
          if (!quiet) process.stderr.write(`Error: subscription to ${filters[i] ?? '?'} refused: ${client.protocolVersion === 5 ? reasonName(code) : 'failure'} (0x${code.toString(16)})\n`);
        } else if (debug) {
          process.stderr.write(`Subscribed to ${filters[i] ?? '?'} (granted QoS ${code})\n`);
        }
      });
      if (refused === filters.length) {
        exitCode = 1;
        return exitCode;
      }
    }
    if (has(args, '-E') || filters.length === 0) return exitCode;
    if (timeout !== undefined) {
      timer = setTimeout(() => {
        exitCode = 27;
        stop.abort();
      }, timeout * 1000);
    }
    const messages = client.messages();
    stop.signal.addEventListener('abort', () => void messages.return?.());
    let printed = 0;
    for await (const m of messages) {
      if (skipRetained && m.retain) continue;
      if (retainedOnly && !m.retain) break;
      if (excluded.some((f) => topicMatches(f, m.topic))) continue;
      const now = new Date();
      let line: string;
      if (format !== undefined) line = formatMessage(escapes(format), m, now);
      else if (json) line = jsonLine(m, now);
      else if (verbose) line = `${m.topic} ${m.payload.toString('utf8')}`;
      else line = m.payload.toString('utf8');
      process.stdout.write(line + newline);
      printed++;
      if (count !== undefined && printed >= count) break;
    }
    return exitCode;
  } catch (err) {
    return fail(`Error: ${(err as Error).message}`);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.end(args.properties.disconnect === undefined ? {} : { properties: args.properties.disconnect });
  }
}
