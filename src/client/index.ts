/**
 * telemq/client: a promise-first MQTT 3.1/3.1.1/5.0 client for Node and browsers.
 * Node-only pieces (TCP/TLS, the `ws` package, the file store) load on demand, so this entry point
 * imports no Node built-in.
 */
export { connect, MqttClient, type ClientEvents } from './client.js';
export { AuthHandlerError, ConnectionRefusedError, ConnectionClosedError, ReasonCodeError, ServerDisconnectError, ClientUsageError, reasonName } from './errors.js';
export { MemoryStore, type OutgoingStore, type StoredMessage } from './store.js';
/** Opens a {@link FileStore} in `directory` (Node only; loaded on demand so browsers never see node:fs). */
export async function openFileStore(directory: string): Promise<import('./file-store.js').FileStore> {
  const { FileStore } = await import('./file-store.js');
  return FileStore.open(directory);
}
export type { FileStore } from './file-store.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export type { TlsOptions } from './transport.js';
export type {
  AuthHandler,
  ConnectOptions,
  DeliveredEvent,
  Message,
  PublishOptions,
  PublishResult,
  SubscribeOptions,
  SubscriptionRequest,
  WillOptions,
} from './types.js';
export { MqttError, PacketTooLargeError, TopicNameInvalidError } from '../protocol/errors.js';
export { topicMatches, isValidTopicFilter, isValidTopicName } from '../protocol/topic.js';
export type { Properties } from '../protocol/packets.js';
export type { QoS } from '../protocol/constants.js';
