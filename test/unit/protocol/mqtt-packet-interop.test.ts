/**
 * Cross-check with mqtt-packet (the parser/generator under MQTT.js and Aedes), field names mapped:
 * what we encode mqtt-packet parses to the same packet, and what mqtt-packet generates we decode to it.
 *
 * mqtt-packet quirks met here (noted where they force a special case):
 * - MQTT 5 "byte" properties (Payload Format Indicator, Request * Information, Retain/Wildcard/Shared
 *   Subscription Available...) are booleans; Maximum QoS stays a number.
 * - User Properties are an object; repeated names become an array (so only grouped names round-trip in order).
 * - Subscription Identifier is a number when single, an array when repeated; "Subscription Identifier
 *   Available" is spelt subscriptionIdentifiersAvailable.
 * - v5 UNSUBACK reason codes are in `granted`, like SUBACK's.
 * - its generator refuses a password without a user name even in MQTT 5, where the spec allows it
 *   ([MQTT-3.1.2-22] is a 3.1.1 rule), so that direction gets a user name added.
 * - AUTH with Remaining Length 0 (the spec's Success short form) is not parsed by mqtt-packet, and it
 *   always generates the long form, so that one case is only checked in the generate -> decode direction.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as mqttPacket from 'mqtt-packet';
import { Decoder, encode, PROPERTY_DEFINITIONS, PropertyType, type Packet, type Properties, type ProtocolVersion } from '../../../src/protocol/index.js';
import { samplePackets } from './fixtures.js';

type Obj = Record<string, unknown>;

const BOOLEAN_BYTES = new Set(
  PROPERTY_DEFINITIONS.filter((d) => d.type === PropertyType.Byte && d.name !== 'maximumQoS').map((d) => d.name as string),
);

function propsToTheirs(props: Properties | undefined): Obj | undefined {
  if (props === undefined) return undefined;
  const out: Obj = {};
  for (const [key, value] of Object.entries(props) as Array<[string, unknown]>) {
    if (key === 'userProperties') {
      const up: Record<string, string | string[]> = {};
      for (const [k, v] of value as Array<[string, string]>) {
        const prev = up[k];
        up[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      out['userProperties'] = up;
    } else if (key === 'subscriptionIdentifiers') {
      const ids = value as number[];
      out['subscriptionIdentifier'] = ids.length === 1 ? ids[0] : ids;
    } else if (key === 'subscriptionIdentifierAvailable') {
      out['subscriptionIdentifiersAvailable'] = value === 1;
    } else if (BOOLEAN_BYTES.has(key)) {
      out[key] = value === 1;
    } else {
      out[key] = value;
    }
  }
  return out;
}

function propsFromTheirs(props: unknown): Properties | undefined {
  if (props === undefined || props === null) return undefined;
  const out: Obj = {};
  for (const [key, value] of Object.entries(props as Obj)) {
    if (key === 'userProperties') {
      const pairs: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(value as Obj)) {
        for (const item of Array.isArray(v) ? v : [v]) pairs.push([k, String(item)]);
      }
      out['userProperties'] = pairs;
    } else if (key === 'subscriptionIdentifier') {
      out['subscriptionIdentifiers'] = Array.isArray(value) ? value : [value];
    } else if (key === 'subscriptionIdentifiersAvailable') {
      out['subscriptionIdentifierAvailable'] = value === true ? 1 : 0;
    } else if (typeof value === 'boolean') {
      out[key] = value ? 1 : 0;
    } else {
      out[key] = value;
    }
  }
  return Object.keys(out).length === 0 ? undefined : (out as Properties);
}

function withProps<T extends Obj>(o: T, props: Obj | Properties | undefined): T {
  if (props !== undefined) (o as Obj)['properties'] = props;
  return o;
}

function toTheirs(p: Packet, v: ProtocolVersion): Obj {
  switch (p.type) {
    case 'connect': {
      const o: Obj = { cmd: 'connect', protocolId: p.protocolName, protocolVersion: v, clean: p.cleanStart, keepalive: p.keepAlive, clientId: p.clientId };
      if (p.username !== undefined) o['username'] = p.username;
      if (p.password !== undefined) o['password'] = p.password;
      if (p.will !== undefined) o['will'] = withProps({ topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain }, propsToTheirs(p.will.properties));
      return withProps(o, propsToTheirs(p.properties));
    }
    case 'connack':
      return withProps(v === 5 ? { cmd: 'connack', sessionPresent: p.sessionPresent, reasonCode: p.reasonCode } : { cmd: 'connack', sessionPresent: p.sessionPresent, returnCode: p.reasonCode }, propsToTheirs(p.properties));
    case 'publish': {
      const o: Obj = { cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
      if (p.packetId !== undefined) o['messageId'] = p.packetId;
      return withProps(o, propsToTheirs(p.properties));
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return withProps({ cmd: p.type, messageId: p.packetId, reasonCode: p.reasonCode ?? 0 }, propsToTheirs(p.properties));
    case 'subscribe':
      return withProps(
        { cmd: 'subscribe', messageId: p.packetId, subscriptions: p.subscriptions.map((s) => (v === 5 ? { topic: s.topicFilter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling } : { topic: s.topicFilter, qos: s.qos })) },
        propsToTheirs(p.properties),
      );
    case 'suback':
      return withProps({ cmd: 'suback', messageId: p.packetId, granted: p.reasonCodes }, propsToTheirs(p.properties));
    case 'unsubscribe':
      return withProps({ cmd: 'unsubscribe', messageId: p.packetId, unsubscriptions: p.topicFilters }, propsToTheirs(p.properties));
    case 'unsuback':
      return withProps(v === 5 ? { cmd: 'unsuback', messageId: p.packetId, granted: p.reasonCodes } : { cmd: 'unsuback', messageId: p.packetId }, propsToTheirs(p.properties));
    case 'pingreq':
    case 'pingresp':
      return { cmd: p.type };
    case 'disconnect':
    case 'auth':
      return withProps({ cmd: p.type, reasonCode: p.reasonCode ?? 0 }, propsToTheirs(p.properties));
  }
}

function fromTheirs(t: Obj, v: ProtocolVersion): Packet {
  const props = propsFromTheirs(t['properties']);
  const id = t['messageId'] as number;
  const cmd = t['cmd'] as Packet['type'];
  const attach = <T extends Packet>(p: T): T => (props === undefined ? p : { ...p, properties: props });
  switch (cmd) {
    case 'connect': {
      const p: Obj = { type: 'connect', protocolName: t['protocolId'], protocolVersion: t['protocolVersion'], cleanStart: t['clean'], keepAlive: t['keepalive'], clientId: t['clientId'] };
      const w = t['will'] as Obj | undefined;
      if (w) {
        const will: Obj = { topic: w['topic'], payload: w['payload'], qos: w['qos'], retain: w['retain'] };
        const wp = propsFromTheirs(w['properties']);
        if (wp !== undefined) will['properties'] = wp;
        p['will'] = will;
      }
      if (t['username'] !== undefined) p['username'] = t['username'];
      if (t['password'] !== undefined) p['password'] = t['password'];
      return attach(p as unknown as Packet);
    }
    case 'connack':
      return attach({ type: 'connack', sessionPresent: t['sessionPresent'] as boolean, reasonCode: (v === 5 ? t['reasonCode'] : t['returnCode']) as number });
    case 'publish': {
      const p: Obj = { type: 'publish', topic: t['topic'], payload: t['payload'], qos: t['qos'], retain: t['retain'], dup: t['dup'] };
      if ((t['qos'] as number) > 0) p['packetId'] = id;
      return attach(p as unknown as Packet);
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return attach(v === 5 ? { type: cmd, packetId: id, reasonCode: (t['reasonCode'] as number | undefined) ?? 0 } : { type: cmd, packetId: id });
    case 'subscribe':
      return attach({
        type: 'subscribe', packetId: id,
        subscriptions: (t['subscriptions'] as Obj[]).map((s) => ({ topicFilter: s['topic'] as string, qos: s['qos'] as 0, noLocal: v === 5 && s['nl'] === true, retainAsPublished: v === 5 && s['rap'] === true, retainHandling: (v === 5 ? s['rh'] : 0) as 0 })),
      });
    case 'suback':
      return attach({ type: 'suback', packetId: id, reasonCodes: t['granted'] as number[] });
    case 'unsubscribe':
      return attach({ type: 'unsubscribe', packetId: id, topicFilters: t['unsubscriptions'] as string[] });
    case 'unsuback':
      return attach({ type: 'unsuback', packetId: id, reasonCodes: v === 5 ? (t['granted'] as number[]) : [] });
    case 'pingreq':
    case 'pingresp':
      return { type: cmd };
    case 'disconnect':
      return attach(v === 5 ? { type: 'disconnect', reasonCode: (t['reasonCode'] as number | undefined) ?? 0 } : { type: 'disconnect' });
    case 'auth':
      return attach({ type: 'auth', reasonCode: t['reasonCode'] as number });
  }
}

function theirParse(bytes: Buffer, v: ProtocolVersion): Obj[] {
  const parser = mqttPacket.parser({ protocolVersion: v });
  const out: Obj[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p: unknown) => out.push(p as Obj));
  parser.on('error', (e: Error) => errors.push(e));
  parser.parse(bytes);
  if (errors.length > 0) throw errors[0]!;
  return out;
}

for (const v of [3, 4, 5] as const) {
  for (const [name, packet] of samplePackets(v)) {
    const authShort = packet.type === 'auth' && packet.properties === undefined && packet.reasonCode === 0;
    if (!authShort) {
      test(`interop v${v}: mqtt-packet parses our ${name}`, () => {
        const parsed = theirParse(encode(packet, v), v);
        assert.equal(parsed.length, 1);
        assert.deepEqual(fromTheirs(parsed[0]!, v), packet);
      });
    }
    test(`interop v${v}: we decode mqtt-packet's ${name}`, () => {
      const input: Packet =
        packet.type === 'connect' && packet.password !== undefined && packet.username === undefined ? { ...packet, username: 'user' } : packet;
      const bytes = mqttPacket.generate(toTheirs(input, v) as unknown as mqttPacket.Packet, { protocolVersion: v });
      const d = new Decoder({ protocolVersion: v });
      d.push(bytes);
      assert.deepEqual(d.read(), input);
      assert.equal(d.read(), undefined);
    });
  }
}
