/** Sample packets of every type for each protocol version, in the exact shape the decoder returns. */
import type { Packet, ProtocolVersion } from '../../../src/protocol/index.js';

const buf = (s: string): Buffer => Buffer.from(s);

export function samplePackets(v: ProtocolVersion): Array<[string, Packet]> {
  const v5 = v === 5;
  const name = v === 3 ? 'MQIsdp' : 'MQTT';
  const out: Array<[string, Packet]> = [
    ['CONNECT minimal', { type: 'connect', protocolName: name, protocolVersion: v, cleanStart: true, keepAlive: 60, clientId: 'client-1' }],
    [
      'CONNECT with will, username, password',
      {
        type: 'connect', protocolName: name, protocolVersion: v, cleanStart: false, keepAlive: 0, clientId: 'ü-client',
        will: { topic: 'status/client-1', payload: buf('offline'), qos: 2, retain: true },
        username: 'user', password: buf('pa\u0000ss'),
      },
    ],
    ['CONNACK accepted', { type: 'connack', sessionPresent: v !== 3, reasonCode: 0 }],
    ['CONNACK refused', { type: 'connack', sessionPresent: false, reasonCode: v5 ? 0x87 : 5 }],
    ['PUBLISH QoS 0', { type: 'publish', topic: 'a/b', payload: buf('hello'), qos: 0, retain: false, dup: false }],
    ['PUBLISH QoS 1 retain', { type: 'publish', topic: 'sensors/€/temp', payload: Buffer.alloc(300, 7), qos: 1, retain: true, dup: false, packetId: 1 }],
    ['PUBLISH QoS 2 dup empty payload', { type: 'publish', topic: '/', payload: Buffer.alloc(0), qos: 2, retain: false, dup: true, packetId: 65535 }],
    ['PUBACK', v5 ? { type: 'puback', packetId: 10, reasonCode: 0 } : { type: 'puback', packetId: 10 }],
    ['PUBREC', v5 ? { type: 'pubrec', packetId: 11, reasonCode: 0 } : { type: 'pubrec', packetId: 11 }],
    ['PUBREL', v5 ? { type: 'pubrel', packetId: 12, reasonCode: 0 } : { type: 'pubrel', packetId: 12 }],
    ['PUBCOMP', v5 ? { type: 'pubcomp', packetId: 13, reasonCode: 0 } : { type: 'pubcomp', packetId: 13 }],
    [
      'SUBSCRIBE',
      {
        type: 'subscribe', packetId: 2,
        subscriptions: [
          { topicFilter: 'a/+/c', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
          { topicFilter: '#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      },
    ],
    ['SUBACK', { type: 'suback', packetId: 2, reasonCodes: [0, 2, 0x80] }],
    ['UNSUBSCRIBE', { type: 'unsubscribe', packetId: 3, topicFilters: ['a/+/c', '#'] }],
    ['UNSUBACK', { type: 'unsuback', packetId: 3, reasonCodes: v5 ? [0, 0x11] : [] }],
    ['PINGREQ', { type: 'pingreq' }],
    ['PINGRESP', { type: 'pingresp' }],
    ['DISCONNECT', v5 ? { type: 'disconnect', reasonCode: 0 } : { type: 'disconnect' }],
  ];
  if (!v5) return out;
  const userProperties: Array<[string, string]> = [['k', 'v'], ['k', 'v2'], ['ünï', '\uFEFFbom']];
  out.push(
    [
      'CONNECT v5 with all CONNECT and will properties',
      {
        type: 'connect', protocolName: 'MQTT', protocolVersion: 5, cleanStart: true, keepAlive: 30, clientId: '',
        properties: {
          sessionExpiryInterval: 0xffffffff, receiveMaximum: 100, maximumPacketSize: 65536, topicAliasMaximum: 10,
          requestResponseInformation: 1, requestProblemInformation: 0, userProperties,
          authenticationMethod: 'SCRAM-SHA-1', authenticationData: buf('client-first'),
        },
        will: {
          topic: 'w', payload: buf('bye'), qos: 1, retain: false,
          properties: {
            willDelayInterval: 5, payloadFormatIndicator: 1, messageExpiryInterval: 10, contentType: 'text/plain',
            responseTopic: 'reply/here', correlationData: buf('corr'), userProperties: [['a', 'b']],
          },
        },
        password: buf('only-password'),
      },
    ],
    [
      'CONNACK v5 with all CONNACK properties',
      {
        type: 'connack', sessionPresent: true, reasonCode: 0,
        properties: {
          sessionExpiryInterval: 10, receiveMaximum: 20, maximumQoS: 1, retainAvailable: 0, maximumPacketSize: 1000,
          assignedClientIdentifier: 'auto-1', topicAliasMaximum: 5, reasonString: 'ok', userProperties,
          wildcardSubscriptionAvailable: 1, subscriptionIdentifierAvailable: 0, sharedSubscriptionAvailable: 1,
          serverKeepAlive: 120, responseInformation: 'resp/', serverReference: 'other:1883',
          authenticationMethod: 'SCRAM-SHA-1', authenticationData: buf('server-final'),
        },
      },
    ],
    [
      'PUBLISH v5 with all PUBLISH properties',
      {
        type: 'publish', topic: 'x/y', payload: buf('{"v":1}'), qos: 1, retain: false, dup: false, packetId: 7,
        properties: {
          payloadFormatIndicator: 1, messageExpiryInterval: 60, topicAlias: 3, responseTopic: 'r/t',
          correlationData: buf('id-1'), userProperties, subscriptionIdentifiers: [1, 268_435_455], contentType: 'application/json',
        },
      },
    ],
    ['PUBLISH v5 empty topic with alias', { type: 'publish', topic: '', payload: buf('x'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } }],
    ['PUBACK v5 reason only', { type: 'puback', packetId: 9, reasonCode: 0x10 }],
    ['PUBREC v5 with properties', { type: 'pubrec', packetId: 9, reasonCode: 0x80, properties: { reasonString: 'nope', userProperties: [['a', 'b']] } }],
    ['PUBREL v5 not found', { type: 'pubrel', packetId: 9, reasonCode: 0x92 }],
    ['PUBCOMP v5 success with properties', { type: 'pubcomp', packetId: 9, reasonCode: 0, properties: { reasonString: 'done' } }],
    [
      'SUBSCRIBE v5 options and identifier',
      {
        type: 'subscribe', packetId: 4, properties: { subscriptionIdentifiers: [42], userProperties: [['a', 'b']] },
        subscriptions: [
          { topicFilter: '$share/g/a/#', qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 2 },
          { topicFilter: 'b', qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 1 },
        ],
      },
    ],
    ['SUBACK v5 reasons', { type: 'suback', packetId: 4, reasonCodes: [1, 0x8f, 0xa2], properties: { reasonString: 'partial' } }],
    ['UNSUBSCRIBE v5 properties', { type: 'unsubscribe', packetId: 5, topicFilters: ['a'], properties: { userProperties: [['a', 'b']] } }],
    ['UNSUBACK v5 properties', { type: 'unsuback', packetId: 5, reasonCodes: [0x8f], properties: { reasonString: 'bad' } }],
    ['DISCONNECT v5 reason only', { type: 'disconnect', reasonCode: 0x8e }],
    ['DISCONNECT v5 properties', { type: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: 'bye', serverReference: 's2' } }],
    ['AUTH v5 success short', { type: 'auth', reasonCode: 0 }],
    ['AUTH v5 continue', { type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: buf('data'), reasonString: 'go on' } }],
  );
  return out;
}

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}
