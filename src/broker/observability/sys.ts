/**
 * `$SYS/broker/...` topics, published retained at QoS 0 every `sys.interval` seconds (the mosquitto names, so
 * existing dashboards work). Clients cannot publish to `$` topics, so these values come only from the broker.
 */
import { version } from '../../shared/version.js';
import type { BrokerCore } from '../core.js';
import type { StoredMessage } from '../persistence/store.js';

export function publishSys(core: BrokerCore, now: number): void {
  const s = core.stats;
  const values: Array<[string, string | number]> = [
    ['version', `telemq ${version}`],
    ['uptime', `${Math.floor((now - s.startedAt) / 1000)} seconds`],
    ['clients/connected', s.clientsConnected],
    ['clients/total', core.sessions.size],
    ['clients/disconnected', core.sessions.size - s.clientsConnected],
    ['clients/connections total', s.clientsTotal],
    ['messages/received', s.messagesReceived],
    ['messages/sent', s.messagesSent],
    ['messages/dropped', s.messagesDropped],
    ['bytes/received', s.bytesReceived],
    ['bytes/sent', s.bytesSent],
    ['subscriptions/count', core.subscriptionCount],
    ['retained messages/count', core.retained.count],
    // Not mosquitto topics: what abuse the broker is turning away (docs/security.md).
    ['connections/protocol errors', s.protocolErrors],
    ['connections/closed before connect', s.closedBeforeConnect],
  ];
  const hits = core.limitsHit.hits;
  for (const kind in hits) values.push([`limits/${kind}`, hits[kind as keyof typeof hits]]);
  for (const [name, value] of values) {
    const message: StoredMessage = {
      topic: `$SYS/broker/${name}`,
      payload: Buffer.from(String(value)),
      qos: 0,
      retain: true,
      origin: '',
    };
    core.publish(message, now);
  }
  core.discardPending();
}
