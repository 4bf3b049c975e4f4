/**
 * Broker configuration: the typed shape, the defaults, and validation of untrusted input (a YAML file, flags).
 * Unknown keys are errors so a typo never silently falls back to a default. docs/configuration.md lists every key.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/** One listening socket. TLS and WebSocket listeners add their own `type` here. */
export interface TcpListenerConfig {
  type: 'tcp';
  /** Address to bind; '::' for every IPv6 and IPv4 address. */
  host: string;
  /** 0 picks a free port (see Broker.addresses()). */
  port: number;
}
export type ListenerConfig = TcpListenerConfig;

/** Server limits; those with a v5 CONNACK property are announced to v5 clients. */
export interface MqttLimitsConfig {
  /** Highest QoS granted to subscriptions and accepted in PUBLISH (CONNACK Maximum QoS). */
  maximumQoS: 0 | 1 | 2;
  /** Whether retained messages are stored (CONNACK Retain Available). */
  retainAvailable: boolean;
  /** Largest keep alive the server accepts, seconds; 0 = any. Sent as Server Keep Alive when it lowers the client's. */
  maximumKeepAlive: number;
  /** QoS 1/2 PUBLISH packets a client may have unacknowledged towards the broker (CONNACK Receive Maximum). */
  receiveMaximum: number;
  /** Topic aliases a client may use towards the broker; 0 disables them (CONNACK Topic Alias Maximum). */
  topicAliasMaximum: number;
  /** Largest packet accepted from a client, bytes (CONNACK Maximum Packet Size). */
  maximumPacketSize: number;
  wildcardSubscriptionAvailable: boolean;
  sharedSubscriptionAvailable: boolean;
  subscriptionIdentifierAvailable: boolean;
  /** Cap on a session's expiry interval, seconds; 4294967295 = sessions may never expire. */
  maximumSessionExpiryInterval: number;
  /** Longest client identifier accepted, characters (the spec requires at least 23). */
  maximumClientIdLength: number;
  /** Milliseconds a new connection may take to send CONNECT before it is closed. */
  connectTimeout: number;
  /** Messages queued per session (offline, or waiting for the client's Receive Maximum). */
  maximumQueuedMessages: number;
  /** Which message is dropped when the queue is full. */
  queueOverflow: 'dropOldest' | 'dropNewest';
}

export interface SysConfig {
  /** Publish `$SYS/broker/...` topics. */
  enabled: boolean;
  /** Seconds between two publications. */
  interval: number;
}

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Where sessions and messages are kept. A SQLite store adds `{ type: 'sqlite', path }` here. */
export interface PersistenceConfig {
  type: 'memory';
}

export interface BrokerConfig {
  listeners: ListenerConfig[];
  mqtt: MqttLimitsConfig;
  sys: SysConfig;
  log: LogConfig;
  persistence: PersistenceConfig;
}

/** Every field optional, recursively; arrays are replaced whole. */
export type DeepPartial<T> = T extends readonly (infer _U)[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export const defaultConfig: Readonly<BrokerConfig> = Object.freeze({
  listeners: [
    { type: 'tcp', host: '127.0.0.1', port: 1883 },
    { type: 'tcp', host: '::1', port: 1883 },
  ],
  mqtt: {
    maximumQoS: 2,
    retainAvailable: true,
    maximumKeepAlive: 0,
    receiveMaximum: 1024,
    topicAliasMaximum: 64,
    maximumPacketSize: 1_048_576,
    wildcardSubscriptionAvailable: true,
    sharedSubscriptionAvailable: true,
    subscriptionIdentifierAvailable: true,
    maximumSessionExpiryInterval: 4_294_967_295,
    maximumClientIdLength: 256,
    connectTimeout: 10_000,
    maximumQueuedMessages: 1000,
    queueOverflow: 'dropOldest',
  },
  sys: { enabled: true, interval: 10 },
  log: { level: 'info' },
  persistence: { type: 'memory' },
} satisfies BrokerConfig);

/** Thrown for a configuration that does not validate; `problems` has one line per bad key. */
export class ConfigError extends Error {
  readonly code = 'TELEMQ_ERR_CONFIG';
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Field =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'string'; nonEmpty?: boolean }
  | { kind: 'enum'; values: readonly (string | number)[] }
  | { kind: 'object'; fields: Record<string, Field> }
  | { kind: 'array'; of: Field; minItems: number };

const int = (min: number, max: number): Field => ({ kind: 'int', min, max });
const bool: Field = { kind: 'bool' };

const listenerSchema: Field = {
  kind: 'object',
  fields: { type: { kind: 'enum', values: ['tcp'] }, host: { kind: 'string', nonEmpty: true }, port: int(0, 65_535) },
};

const schema: Field = {
  kind: 'object',
  fields: {
    listeners: { kind: 'array', of: listenerSchema, minItems: 0 },
    mqtt: {
      kind: 'object',
      fields: {
        maximumQoS: { kind: 'enum', values: [0, 1, 2] },
        retainAvailable: bool,
        maximumKeepAlive: int(0, 65_535),
        receiveMaximum: int(1, 65_535),
        topicAliasMaximum: int(0, 65_535),
        // The fixed header plus the largest Variable Byte Integer.
        maximumPacketSize: int(128, 268_435_460),
        wildcardSubscriptionAvailable: bool,
        sharedSubscriptionAvailable: bool,
        subscriptionIdentifierAvailable: bool,
        maximumSessionExpiryInterval: int(0, 4_294_967_295),
        // [MQTT-3.1.3-5] the server must accept identifiers of 1 to 23 characters.
        maximumClientIdLength: int(23, 65_535),
        connectTimeout: int(100, 3_600_000),
        maximumQueuedMessages: int(0, 10_000_000),
        queueOverflow: { kind: 'enum', values: ['dropOldest', 'dropNewest'] },
      },
    },
    sys: { kind: 'object', fields: { enabled: bool, interval: int(1, 86_400) } },
    log: {
      kind: 'object',
      fields: { level: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } },
    },
    persistence: { kind: 'object', fields: { type: { kind: 'enum', values: ['memory'] } } },
  },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates `input` against `field`, filling absent keys from `dflt`; problems are appended, never thrown. */
function check(field: Field, input: unknown, dflt: unknown, path: string, problems: string[]): unknown {
  if (input === undefined) return structuredClone(dflt);
  switch (field.kind) {
    case 'int':
      if (typeof input !== 'number' || !Number.isInteger(input) || input < field.min || input > field.max) {
        problems.push(`${path}: expected an integer from ${field.min} to ${field.max}, got ${JSON.stringify(input)}`);
        return dflt;
      }
      return input;
    case 'bool':
      if (typeof input !== 'boolean') {
        problems.push(`${path}: expected true or false, got ${JSON.stringify(input)}`);
        return dflt;
      }
      return input;
    case 'string':
      if (typeof input !== 'string' || (field.nonEmpty === true && input.length === 0)) {
        problems.push(`${path}: expected a${field.nonEmpty === true ? ' non-empty' : ''} string`);
        return dflt;
      }
      return input;
    case 'enum':
      if (!field.values.includes(input as string | number)) {
        problems.push(`${path}: expected one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`);
        return dflt;
      }
      return input;
    case 'array': {
      if (!Array.isArray(input) || input.length < field.minItems) {
        problems.push(`${path}: expected a list`);
        return dflt;
      }
      // Array items have no default of their own: every key of an item must be given.
      return input.map((item, i) => checkRequired(field.of, item, `${path}[${i}]`, problems));
    }
    case 'object': {
      if (!isPlainObject(input)) {
        problems.push(`${path || 'config'}: expected a mapping`);
        return dflt;
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(input)) {
        if (!(key in field.fields)) problems.push(`${path ? path + '.' : ''}${key}: unknown key`);
      }
      const d = isPlainObject(dflt) ? dflt : {};
      for (const [key, sub] of Object.entries(field.fields)) {
        out[key] = check(sub, input[key], d[key], path ? `${path}.${key}` : key, problems);
      }
      return out;
    }
  }
}

function checkRequired(field: Field, input: unknown, path: string, problems: string[]): unknown {
  if (field.kind === 'object' && isPlainObject(input)) {
    for (const key of Object.keys(field.fields)) {
      if (input[key] === undefined) problems.push(`${path}.${key}: required`);
    }
  }
  return check(field, input, undefined, path, problems);
}

/**
 * Merges `input` over the defaults and validates the result. Throws {@link ConfigError} listing every problem
 * (unknown keys included) at once.
 */
export function resolveConfig(input: unknown = {}): BrokerConfig {
  const problems: string[] = [];
  const out = check(schema, input ?? {}, defaultConfig, '', problems) as BrokerConfig;
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Reads and validates a YAML (or JSON, a subset of YAML) config file. */
export async function loadConfigFile(path: string): Promise<DeepPartial<BrokerConfig>> {
  const text = await readFile(path, 'utf8');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
  if (doc === null || doc === undefined) return {};
  if (!isPlainObject(doc)) throw new ConfigError([`${path}: expected a mapping at the top level`]);
  // Validate now so errors name the file; the caller merges flags over it and validates again.
  const problems: string[] = [];
  check(schema, doc, defaultConfig, '', problems);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${path}: ${p}`));
  return doc as DeepPartial<BrokerConfig>;
}
