/**
 * Broker configuration: the typed shape, the defaults, and validation of untrusted input (a YAML file, flags).
 * Unknown keys are errors so a typo never silently falls back to a default. docs/configuration.md lists every key.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { StorageOptions } from './persistence/open.js';
import { tlsFilesProblems } from './transport/tls.js';
import type { SecureListenerConfig, TlsListenerConfig, WsListenerConfig, WssListenerConfig } from './transport/ws.js';

/**
 * One listening socket. `tls`, `ws` and `wss` entries are the shapes `createSecureListener` (transport/ws.ts) takes;
 * every listener may set `allowAnonymous` (default: `auth.allowAnonymous`, i.e. loopback hosts only).
 */
export interface TcpListenerConfig {
  type: 'tcp';
  /** Address to bind; '::' for every IPv6 and IPv4 address. */
  host: string;
  /** 0 picks a free port (see Broker.addresses()). */
  port: number;
  /** Open connections beyond which new ones are closed at once; 0 = no limit. */
  maxConnections?: number;
  /** Admit clients without a username here; default per `auth.allowAnonymous`. */
  allowAnonymous?: boolean;
}
export type { TlsListenerConfig, WsListenerConfig, WssListenerConfig };
export type ListenerConfig = TcpListenerConfig | SecureListenerConfig;

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
  // Limits against abuse (docs/security.md); 0 = no limit where the docs say so.
  /** Connected clients in total; more get CONNACK 0x89 Server busy (v3: 3 Server unavailable). */
  maximumConnections: number;
  /** Payload and topic bytes queued per session; beyond it `queueOverflow` drops as for the message count. */
  maximumQueuedBytes: number;
  /** Subscriptions per session; more get SUBACK 0x97 Quota exceeded (v3: 0x80). */
  maximumSubscriptionsPerClient: number;
  /** Longest topic name or filter, UTF-16 code units. */
  maximumTopicLength: number;
  /** Most levels in a topic name or filter. */
  maximumTopicLevels: number;
  /** PUBLISH packets per second per client (token bucket); 0 = no limit. */
  publishRate: number;
  /** Bucket size: how many PUBLISH packets a client may send at once above the rate. */
  publishBurst: number;
  /** QoS 1/2 messages sent to one client and not yet acknowledged, at most (below its Receive Maximum). */
  maximumInflightMessages: number;
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

/** Where sessions, subscriptions, queued and retained messages are kept (see docs/persistence.md). */
export type PersistenceConfig = StorageOptions;

/** Password file, ACL file and the anonymous policy; see docs/security.md. */
export interface AuthConfig {
  passwordFile?: string;
  aclFile?: string;
  /** Listeners without their own `allowAnonymous`: `loopback` admits anonymous clients on loopback hosts only. */
  allowAnonymous: boolean | 'loopback';
  /** Milliseconds before a refused login is answered. */
  failureDelay: number;
}

export interface BrokerConfig {
  listeners: ListenerConfig[];
  mqtt: MqttLimitsConfig;
  sys: SysConfig;
  log: LogConfig;
  persistence: PersistenceConfig;
  auth: AuthConfig;
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
    maximumConnections: 10_000,
    maximumQueuedBytes: 16_777_216,
    maximumSubscriptionsPerClient: 1000,
    maximumTopicLength: 65_535,
    maximumTopicLevels: 128,
    publishRate: 0,
    publishBurst: 1000,
    maximumInflightMessages: 100,
  },
  sys: { enabled: true, interval: 10 },
  log: { level: 'info' },
  persistence: { type: 'memory' },
  auth: { allowAnonymous: 'loopback', failureDelay: 500 },
} satisfies BrokerConfig);

/** What `telemq broker` stores when nothing is configured (createBroker() defaults to memory). */
export const defaultSqlitePersistence = Object.freeze({
  type: 'sqlite',
  path: './data/telemq.db',
  durability: 'batch',
} as const satisfies PersistenceConfig);

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

interface ObjectField {
  kind: 'object';
  fields: Record<string, Field>;
  /** Keys that may be absent with no default (they then stay absent); other keys without a default are required. */
  optional?: readonly string[];
  /** Defaults of this object's own keys (used by variants, whose defaults differ per `type`). */
  defaults?: Record<string, unknown>;
}

type Field =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'string'; nonEmpty?: boolean; pattern?: RegExp; hint?: string }
  | { kind: 'enum'; values: readonly (string | number | boolean)[] }
  | ObjectField
  /** A mapping whose `type` key chooses its schema. */
  | { kind: 'variant'; variants: Record<string, ObjectField> }
  | { kind: 'array'; of: Field; minItems: number };

const int = (min: number, max: number): Field => ({ kind: 'int', min, max });
const bool: Field = { kind: 'bool' };
const nonEmpty: Field = { kind: 'string', nonEmpty: true };
const enumOf = (...values: Array<string | number | boolean>): Field => ({ kind: 'enum', values });

const commonListener = { host: nonEmpty, port: int(0, 65_535), maxConnections: int(0, 1_000_000), allowAnonymous: bool };
const tlsFiles = {
  certFile: nonEmpty,
  keyFile: nonEmpty,
  caFile: nonEmpty,
  requireClientCertificate: bool,
  identityFrom: enumOf('cn', 'san-dns', 'san-email', 'san-uri'),
  minVersion: enumOf('TLSv1.2', 'TLSv1.3'),
};
const tlsOptional = ['caFile', 'requireClientCertificate', 'identityFrom', 'minVersion'];
const wsOptions = {
  paths: { kind: 'array', of: { kind: 'string', pattern: /^\/\S*$/, hint: 'a path starting with /' }, minItems: 1 },
  allowedOrigins: { kind: 'array', of: nonEmpty, minItems: 0 },
  // One WebSocket message; MQTT packets may span messages, so this need not exceed maximumPacketSize.
  maxPayload: int(1024, 268_435_460),
} satisfies Record<string, Field>;
const listenerOptional = ['maxConnections', 'allowAnonymous'];

const listenerSchema: Field = {
  kind: 'variant',
  variants: {
    tcp: { kind: 'object', fields: { type: enumOf('tcp'), ...commonListener }, optional: listenerOptional },
    tls: {
      kind: 'object',
      fields: { type: enumOf('tls'), ...commonListener, ...tlsFiles, handshakeTimeout: int(100, 600_000) },
      optional: [...listenerOptional, ...tlsOptional, 'handshakeTimeout'],
    },
    ws: {
      kind: 'object',
      fields: { type: enumOf('ws'), ...commonListener, ...wsOptions },
      optional: [...listenerOptional, 'paths', 'allowedOrigins', 'maxPayload'],
    },
    wss: {
      kind: 'object',
      fields: { type: enumOf('wss'), ...commonListener, ...wsOptions, ...tlsFiles },
      optional: [...listenerOptional, 'paths', 'allowedOrigins', 'maxPayload', ...tlsOptional],
    },
  },
};

const persistenceSchema: Field = {
  kind: 'variant',
  variants: {
    memory: { kind: 'object', fields: { type: enumOf('memory') } },
    sqlite: {
      kind: 'object',
      fields: {
        type: enumOf('sqlite'),
        path: nonEmpty,
        durability: enumOf('none', 'batch', 'sync'),
        batchIntervalMs: int(0, 60_000),
        ackWaitMs: int(0, 1_000),
        cleanupIntervalMs: int(1000, 86_400_000),
      },
      optional: ['batchIntervalMs', 'ackWaitMs', 'cleanupIntervalMs'],
      defaults: { path: defaultSqlitePersistence.path, durability: defaultSqlitePersistence.durability },
    },
  },
};

const schema: ObjectField = {
  kind: 'object',
  fields: {
    listeners: { kind: 'array', of: listenerSchema, minItems: 0 },
    mqtt: {
      kind: 'object',
      fields: {
        maximumQoS: enumOf(0, 1, 2),
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
        queueOverflow: enumOf('dropOldest', 'dropNewest'),
        maximumConnections: int(0, 10_000_000),
        maximumQueuedBytes: int(0, 1_099_511_627_776),
        maximumSubscriptionsPerClient: int(0, 10_000_000),
        maximumTopicLength: int(1, 65_535),
        maximumTopicLevels: int(1, 65_535),
        publishRate: int(0, 10_000_000),
        publishBurst: int(1, 10_000_000),
        maximumInflightMessages: int(1, 65_535),
      },
    },
    sys: { kind: 'object', fields: { enabled: bool, interval: int(1, 86_400) } },
    log: { kind: 'object', fields: { level: enumOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') } },
    persistence: persistenceSchema,
    auth: {
      kind: 'object',
      fields: {
        passwordFile: nonEmpty,
        aclFile: nonEmpty,
        allowAnonymous: enumOf(true, false, 'loopback'),
        failureDelay: int(0, 60_000),
      },
      optional: ['passwordFile', 'aclFile'],
    },
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
      if (field.pattern !== undefined && !field.pattern.test(input)) {
        problems.push(`${path}: expected ${field.hint ?? `a string matching ${String(field.pattern)}`}, got ${JSON.stringify(input)}`);
        return dflt;
      }
      return input;
    case 'enum':
      if (!field.values.includes(input as string | number | boolean)) {
        problems.push(`${path}: expected one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`);
        return dflt;
      }
      return input;
    case 'array': {
      if (!Array.isArray(input) || input.length < field.minItems) {
        problems.push(`${path}: expected a list${field.minItems > 0 ? ` of at least ${field.minItems}` : ''}`);
        return dflt;
      }
      // Array items have no default of their own.
      return input.map((item: unknown, i) => check(field.of, item, undefined, `${path}[${i}]`, problems));
    }
    case 'variant': {
      if (!isPlainObject(input)) {
        problems.push(`${path}: expected a mapping`);
        return dflt;
      }
      const type = input.type;
      const variant = typeof type === 'string' && Object.hasOwn(field.variants, type) ? field.variants[type] : undefined;
      if (variant === undefined) {
        const names = Object.keys(field.variants).map((v) => JSON.stringify(v)).join(', ');
        problems.push(`${path}.type: ${type === undefined ? 'required' : 'expected one of'} ${type === undefined ? `(one of ${names})` : names}`);
        return dflt;
      }
      // Another type's defaults do not apply: a variant starts from its own.
      return check(variant, input, variant.defaults ?? {}, path, problems);
    }
    case 'object': {
      if (!isPlainObject(input)) {
        problems.push(`${path || 'config'}: expected a mapping`);
        return dflt;
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(input)) {
        if (!Object.hasOwn(field.fields, key)) problems.push(`${path ? path + '.' : ''}${key}: unknown key`);
      }
      const d = isPlainObject(dflt) ? dflt : {};
      for (const [key, sub] of Object.entries(field.fields)) {
        const keyPath = path ? `${path}.${key}` : key;
        if (input[key] === undefined && d[key] === undefined) {
          if (field.optional?.includes(key) !== true) problems.push(`${keyPath}: required`);
          continue;
        }
        out[key] = check(sub, input[key], d[key], keyPath, problems);
      }
      return out;
    }
  }
}

/** Rules that span several keys; appended to `problems`. */
function crossChecks(config: BrokerConfig, problems: string[]): void {
  config.listeners.forEach((l, i) => {
    if (l.type === 'tls' || l.type === 'wss') {
      for (const p of tlsFilesProblems(l)) problems.push(`listeners[${i}]: ${p}`);
    }
  });
}

function validate(input: unknown): { config: BrokerConfig; problems: string[] } {
  const problems: string[] = [];
  const config = check(schema, input ?? {}, defaultConfig, '', problems) as BrokerConfig;
  if (problems.length === 0) crossChecks(config, problems);
  return { config, problems };
}

/**
 * Merges `input` over the defaults and validates the result. Throws {@link ConfigError} listing every problem
 * (unknown keys included) at once.
 */
export function resolveConfig(input: unknown = {}): BrokerConfig {
  const { config, problems } = validate(input);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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
  const { problems } = validate(doc);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${path}: ${p}`));
  return doc as DeepPartial<BrokerConfig>;
}
