/** Public surface of the broker (`telemq/broker`). */
export { Broker, createBroker, type BrokerOptions, type ReloadResult, type ServerMessage } from './broker.js';
export {
  ConfigError,
  defaultConfig,
  defaultSqlitePersistence,
  loadConfigFile,
  resolveConfig,
  type AuthConfig,
  type BrokerConfig,
  type DeepPartial,
  type ListenerConfig,
  type LogConfig,
  type MqttLimitsConfig,
  type PersistenceConfig,
  type SysConfig,
  type TcpListenerConfig,
  type TlsListenerConfig,
  type WsListenerConfig,
  type WssListenerConfig,
} from './config.js';
export type { BrokerStats } from './core.js';
export type {
  AuthResult,
  AuthStep,
  AuthStepResult,
  Authenticator,
  Authorizer,
  ConnectRequest,
  EnhancedAuthenticator,
  PublishRequest,
  ReadRequest,
  SubscribeRequest,
} from './auth/auth.js';
export { allowAllAuthenticator, allowAllAuthorizer } from './auth/auth.js';
export type {
  MaybePromise,
  MessageStore,
  PersistedSession,
  SessionRecord,
  SessionStore,
  Store,
  StoredDelivery,
  StoredMessage,
  StoredOutgoing,
  StoredSubscription,
  StoreOp,
} from './persistence/store.js';
export { MemoryStore } from './persistence/memory-store.js';
export type { RetainedMessage, RetainedStore } from './router/index.js';
export { MemoryRetainedStore } from './router/index.js';
export type { ConnectionMeta, Listener } from './transport/listener.js';
export { TcpListener } from './transport/tcp.js';
export { createLogger } from './logger.js';
