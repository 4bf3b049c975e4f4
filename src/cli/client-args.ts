import { readFileSync } from 'node:fs';
import type { ConnectOptions, Properties, QoS } from '../client/index.js';

/**
 * Flag parsing shared by `telemq pub` and `telemq sub`, following mosquitto_pub/mosquitto_sub.
 * Hand-written because `-D command identifier value` takes three (user-property: four) words,
 * which node:util parseArgs cannot express.
 */

export class UsageError extends Error {}

export interface FlagSpec {
  /** Takes a value (true) or is a switch (false). */
  value: boolean;
  /** May be given several times. */
  multiple?: boolean;
}

/** -D commands and the property identifiers each accepts (mosquitto's names). */
const propertyTable: Record<string, { key: keyof Properties; type: 'int' | 'string' | 'binary' | 'pair'; commands: string[] }> = {
  'payload-format-indicator': { key: 'payloadFormatIndicator', type: 'int', commands: ['publish', 'will'] },
  'message-expiry-interval': { key: 'messageExpiryInterval', type: 'int', commands: ['publish', 'will'] },
  'content-type': { key: 'contentType', type: 'string', commands: ['publish', 'will'] },
  'response-topic': { key: 'responseTopic', type: 'string', commands: ['publish', 'will'] },
  'correlation-data': { key: 'correlationData', type: 'binary', commands: ['publish', 'will'] },
  'subscription-identifier': { key: 'subscriptionIdentifiers', type: 'int', commands: ['subscribe'] },
  'session-expiry-interval': { key: 'sessionExpiryInterval', type: 'int', commands: ['connect', 'disconnect'] },
  'receive-maximum': { key: 'receiveMaximum', type: 'int', commands: ['connect'] },
  'topic-alias-maximum': { key: 'topicAliasMaximum', type: 'int', commands: ['connect'] },
  'maximum-packet-size': { key: 'maximumPacketSize', type: 'int', commands: ['connect'] },
  'request-problem-information': { key: 'requestProblemInformation', type: 'int', commands: ['connect'] },
  'request-response-information': { key: 'requestResponseInformation', type: 'int', commands: ['connect'] },
  'will-delay-interval': { key: 'willDelayInterval', type: 'int', commands: ['will'] },
  'reason-string': { key: 'reasonString', type: 'string', commands: ['disconnect'] },
  'user-property': { key: 'userProperties', type: 'pair', commands: ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will'] },
};

export type PropertyCommand = 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'disconnect' | 'will';

export interface ParsedArgs {
  flags: Map<string, string[]>;
  properties: Partial<Record<PropertyCommand, Properties>>;
}

/** Flags common to pub and sub. Long aliases map to the short name. */
export const commonFlags: Record<string, FlagSpec> = {
  '-h': { value: true },
  '-p': { value: true },
  '-L': { value: true },
  '-t': { value: true, multiple: true },
  '-q': { value: true },
  '-i': { value: true },
  '-I': { value: true },
  '-u': { value: true },
  '-P': { value: true },
  '-k': { value: true },
  '-V': { value: true },
  '-c': { value: false },
  '-x': { value: true },
  '-d': { value: false },
  '--quiet': { value: false },
  '--cafile': { value: true },
  '--cert': { value: true },
  '--key': { value: true },
  '--insecure': { value: false },
  '--will-topic': { value: true },
  '--will-payload': { value: true },
  '--will-qos': { value: true },
  '--will-retain': { value: false },
  '--help': { value: false },
  '--json': { value: false },
};

const aliases: Record<string, string> = {
  '--host': '-h',
  '--port': '-p',
  '--url': '-L',
  '--topic': '-t',
  '--qos': '-q',
  '--id': '-i',
  '--id-prefix': '-I',
  '--username': '-u',
  '--pw': '-P',
  '--keepalive': '-k',
  '--protocol-version': '-V',
  '--disable-clean-session': '-c',
  '--session-expiry-interval': '-x',
  '--debug': '-d',
  '--message': '-m',
  '--file': '-f',
  '--stdin-line': '-l',
  '--null-message': '-n',
  '--stdin-file': '-s',
  '--retain': '-r',
  '--verbose': '-v',
  '--count': '-C',
  '--timeout': '-W',
  '--format': '-F',
  '--no-retain': '-R',
  '--property': '-D',
};

export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): ParsedArgs {
  const flags = new Map<string, string[]>();
  const properties: ParsedArgs['properties'] = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] as string;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    arg = aliases[arg] ?? arg;
    if (arg === '-D') {
      const command = argv[++i];
      const name = argv[++i];
      const value = argv[++i];
      if (command === undefined || name === undefined || value === undefined) throw new UsageError('-D needs: command identifier value');
      const entry = propertyTable[name];
      if (entry === undefined) throw new UsageError(`unknown property '${name}'`);
      if (!entry.commands.includes(command)) throw new UsageError(`property '${name}' is not allowed with '${command}' (allowed: ${entry.commands.join(', ')})`);
      const props = (properties[command as PropertyCommand] ??= {});
      if (entry.type === 'pair') {
        const second = argv[++i];
        if (second === undefined) throw new UsageError('-D ... user-property needs a name and a value');
        (props.userProperties ??= []).push([value, second]);
      } else if (entry.type === 'int') {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`property '${name}' needs a non-negative integer, not '${value}'`);
        if (entry.key === 'subscriptionIdentifiers') props.subscriptionIdentifiers = [n];
        else (props as Record<string, number>)[entry.key] = n;
      } else if (entry.type === 'binary') {
        props.correlationData = Buffer.from(value, 'utf8');
      } else {
        (props as Record<string, string>)[entry.key] = value;
      }
      continue;
    }
    const spec = specs[arg];
    if (spec === undefined) throw new UsageError(`unknown option '${arg}'`);
    let value = '';
    if (spec.value) {
      const next = inline ?? argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      value = next;
    }
    const list = flags.get(arg);
    if (list === undefined) flags.set(arg, [value]);
    else if (spec.multiple === true) list.push(value);
    else list[0] = value;
  }
  return { flags, properties };
}

export function flag(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0];
}

export function has(args: ParsedArgs, name: string): boolean {
  return args.flags.has(name);
}

function integer(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = flag(args, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  return n;
}

export function qosFlag(args: ParsedArgs, name = '-q'): QoS {
  return (integer(args, name, 0, 2) ?? 0) as QoS;
}

export function protocolVersion(args: ParsedArgs): 3 | 4 | 5 {
  const raw = flag(args, '-V');
  if (raw === undefined) return 4;
  switch (raw) {
    case 'mqttv31':
    case '31':
      return 3;
    case 'mqttv311':
    case '311':
      return 4;
    case 'mqttv5':
    case '5':
      return 5;
    default:
      throw new UsageError(`-V must be mqttv31, mqttv311 or mqttv5 (or 31, 311, 5), not '${raw}'`);
  }
}

export interface ClientSetup {
  url: string;
  /** From the path of an mqtt(s):// -L URL, as mosquitto does. */
  topicFromUrl: string | undefined;
  options: ConnectOptions;
}

/** Builds the URL and ConnectOptions from the common flags. */
export function clientSetup(args: ParsedArgs, defaultIdPrefix: string): ClientSetup {
  const version = protocolVersion(args);
  const tls = has(args, '--cafile') || has(args, '--cert') || has(args, '--insecure');
  let url: string;
  let topicFromUrl: string | undefined;
  const urlFlag = flag(args, '-L');
  let username = flag(args, '-u');
  let password = flag(args, '-P');
  if (urlFlag !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(urlFlag);
    } catch {
      throw new UsageError(`-L: '${urlFlag}' is not a URL (mqtt://host:port/topic)`);
    }
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(parsed.protocol)) throw new UsageError('-L: use mqtt://, mqtts://, ws:// or wss://');
    if (parsed.username !== '') username ??= decodeURIComponent(parsed.username);
    if (parsed.password !== '') password ??= decodeURIComponent(parsed.password);
    if (parsed.protocol === 'mqtt:' || parsed.protocol === 'mqtts:') {
      const topic = decodeURIComponent(parsed.pathname.slice(1));
      if (topic !== '') topicFromUrl = topic;
      url = `${parsed.protocol}//${parsed.host}`;
    } else {
      url = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
    }
  } else {
    const host = flag(args, '-h') ?? 'localhost';
    const port = integer(args, '-p', 1, 65_535) ?? (tls ? 8883 : 1883);
    url = `${tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  const keepAlive = integer(args, '-k', 0, 65_535) ?? 60;
  const sessionExpiry = integer(args, '-x', 0, 0xffffffff);
  const idPrefix = flag(args, '-I');
  const clientId = flag(args, '-i') ?? (idPrefix === undefined ? undefined : `${idPrefix}${process.pid}`);
  const cleanStart = !has(args, '-c');
  if (!cleanStart && clientId === undefined) throw new UsageError('-c (keep the session) needs a client id: -i <id>');
  const options: ConnectOptions = {
    protocolVersion: version,
    keepAlive,
    cleanStart,
    clientId: clientId ?? `${defaultIdPrefix}${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    reconnect: false,
    connectTimeout: 10_000,
  };
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (sessionExpiry !== undefined) {
    if (version !== 5) throw new UsageError('-x (session expiry) needs -V mqttv5');
    options.sessionExpiryInterval = sessionExpiry;
  }
  const connectProps = args.properties.connect;
  if (connectProps !== undefined) {
    if (version !== 5) throw new UsageError('-D needs -V mqttv5');
    options.properties = connectProps;
  }
  const willTopic = flag(args, '--will-topic');
  if (willTopic !== undefined) {
    options.will = {
      topic: willTopic,
      payload: flag(args, '--will-payload') ?? '',
      qos: qosFlag(args, '--will-qos'),
      retain: has(args, '--will-retain'),
      ...(args.properties.will === undefined ? {} : { properties: args.properties.will }),
    };
  }
  if (url.startsWith('mqtts:') || url.startsWith('wss:')) {
    const cafile = flag(args, '--cafile');
    const cert = flag(args, '--cert');
    const key = flag(args, '--key');
    if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together');
    options.tls = {
      rejectUnauthorized: !has(args, '--insecure'),
      ...(cafile === undefined ? {} : { ca: readFileSync(cafile) }),
      ...(cert === undefined ? {} : { cert: readFileSync(cert) }),
      ...(key === undefined ? {} : { key: readFileSync(key) }),
    };
  }
  for (const command of ['publish', 'subscribe', 'unsubscribe', 'disconnect'] as const) {
    if (args.properties[command] !== undefined && version !== 5) throw new UsageError('-D needs -V mqttv5');
  }
  return { url, topicFromUrl, options };
}

/** Turns a connection failure into one line a person can act on. */
export function describeError(err: unknown, url: string): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED':
      return `Error: Connection refused: nothing listens at ${url} (is the broker running? check -h/-p)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Error: unknown host in ${url}`;
    case 'ETIMEDOUT':
    case 'MQTT_ERR_CONNECT_TIMEOUT':
      return `Error: no answer from ${url} (timed out)`;
    case 'ECONNRESET':
      return `Error: the broker at ${url} closed the connection`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return `Error: TLS: the broker's certificate is not trusted (${e.code}); pass its CA with --cafile`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `Error: TLS: the certificate does not name this host (${e.message ?? ''})`;
    default:
      return `Error: ${e.message ?? String(err)}`;
  }
}

export const commonHelp = `Connection:
  -h, --host HOST        broker host (default localhost)
  -p, --port PORT        broker port (default 1883, 8883 with TLS)
  -L, --url URL          mqtt[s]://[user[:password]@]host[:port]/topic or ws[s]://host:port/path
  -V VERSION             mqttv31 | mqttv311 (default) | mqttv5 (also 31, 311, 5)
  -i, --id ID            client id (default: generated)
  -I, --id-prefix P      client id P followed by the process id
  -u, --username USER    -P, --pw PASSWORD
  -k, --keepalive SEC    keep alive interval (default 60)
  -c                     keep the session (clean start 0); needs -i
  -x SEC                 session expiry interval (v5)
  -D CMD PROP VALUE      v5 property, e.g. -D publish user-property key value, -D connect receive-maximum 10
  --will-topic T --will-payload P --will-qos Q --will-retain
TLS:
  --cafile FILE          CA certificate(s) to trust (turns TLS on)
  --cert FILE --key FILE client certificate and key
  --insecure             do not check the server certificate's name or chain (testing only)
Output:
  --json                 machine-readable output
  -d, --debug            log connection events to stderr
  --quiet                no error messages
  --help                 this help`;
