/**
 * MQTT 5.0 properties (section 2.2.2.2): ONE table that drives decoding, encoding and validation.
 */
import { MAX_VARIABLE_BYTE_INTEGER, PacketType } from './constants.js';
import type { PacketTypeName, Properties } from './packets.js';

/** Wire data types of property values (section 1.5). */
export const PropertyType = {
  Byte: 1,
  TwoByteInteger: 2,
  FourByteInteger: 3,
  VariableByteInteger: 4,
  Utf8String: 5,
  BinaryData: 6,
  Utf8StringPair: 7,
} as const;
export type PropertyType = (typeof PropertyType)[keyof typeof PropertyType];

/** Where a property may appear: a packet type, or 'will' for the Will Properties of CONNECT. */
export type PropertyContext = PacketTypeName | 'will';

/** How an out-of-range value is reported: 0x82 Protocol Error, or 0x94 Topic Alias invalid. */
export type PropertyRangeError = 'protocol' | 'topicAlias';

export interface PropertyDefinition {
  readonly id: number;
  /** Field of {@link Properties}. */
  readonly name: keyof Properties;
  readonly type: PropertyType;
  readonly allowedIn: readonly PropertyContext[];
  /** May appear more than once (User Property; Subscription Identifier in PUBLISH only). */
  readonly repeatable: boolean;
  /** Inclusive value range the spec allows, for numeric types. */
  readonly min?: number;
  readonly max?: number;
  readonly rangeError?: PropertyRangeError;
  /** Normative rule broken by an out-of-range value, when the spec numbers one. */
  readonly rangeRule?: string;
  /** Bit set of {@link contextMask} values, derived from allowedIn. */
  readonly mask: number;
}

/** The bit of each property context, for {@link PropertyDefinition.mask} tests. */
export const CONTEXT_MASK: Readonly<Record<PropertyContext, number>> = {
  connect: 1 << PacketType.CONNECT,
  connack: 1 << PacketType.CONNACK,
  publish: 1 << PacketType.PUBLISH,
  puback: 1 << PacketType.PUBACK,
  pubrec: 1 << PacketType.PUBREC,
  pubrel: 1 << PacketType.PUBREL,
  pubcomp: 1 << PacketType.PUBCOMP,
  subscribe: 1 << PacketType.SUBSCRIBE,
  suback: 1 << PacketType.SUBACK,
  unsubscribe: 1 << PacketType.UNSUBSCRIBE,
  unsuback: 1 << PacketType.UNSUBACK,
  pingreq: 1 << PacketType.PINGREQ,
  pingresp: 1 << PacketType.PINGRESP,
  disconnect: 1 << PacketType.DISCONNECT,
  auth: 1 << PacketType.AUTH,
  will: 1 << 16,
};

/** The bit of one property context, for {@link PropertyDefinition.mask} tests. */
export function contextMask(context: PropertyContext): number {
  return CONTEXT_MASK[context];
}

const U16 = 0xffff;
const U32 = 0xffff_ffff;
const ACKS: readonly PropertyContext[] = ['puback', 'pubrec', 'pubrel', 'pubcomp'];

type Row = Omit<PropertyDefinition, 'mask'>;
const { Byte, TwoByteInteger, FourByteInteger, VariableByteInteger, Utf8String, BinaryData, Utf8StringPair } =
  PropertyType;

const ROWS: readonly Row[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: Byte, allowedIn: ['publish', 'will'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x02, name: 'messageExpiryInterval', type: FourByteInteger, allowedIn: ['publish', 'will'], repeatable: false },
  { id: 0x03, name: 'contentType', type: Utf8String, allowedIn: ['publish', 'will'], repeatable: false },
  { id: 0x08, name: 'responseTopic', type: Utf8String, allowedIn: ['publish', 'will'], repeatable: false },
  { id: 0x09, name: 'correlationData', type: BinaryData, allowedIn: ['publish', 'will'], repeatable: false },
  // Repeatable in PUBLISH (section 3.3.2.3.8, [MQTT-3.3.4-4]); at most once in SUBSCRIBE (section 3.8.2.1.2), checked by the decoder.
  { id: 0x0b, name: 'subscriptionIdentifiers', type: VariableByteInteger, allowedIn: ['publish', 'subscribe'], repeatable: true, min: 1, max: MAX_VARIABLE_BYTE_INTEGER, rangeError: 'protocol' },
  { id: 0x11, name: 'sessionExpiryInterval', type: FourByteInteger, allowedIn: ['connect', 'connack', 'disconnect'], repeatable: false },
  { id: 0x12, name: 'assignedClientIdentifier', type: Utf8String, allowedIn: ['connack'], repeatable: false },
  { id: 0x13, name: 'serverKeepAlive', type: TwoByteInteger, allowedIn: ['connack'], repeatable: false },
  { id: 0x15, name: 'authenticationMethod', type: Utf8String, allowedIn: ['connect', 'connack', 'auth'], repeatable: false },
  { id: 0x16, name: 'authenticationData', type: BinaryData, allowedIn: ['connect', 'connack', 'auth'], repeatable: false },
  { id: 0x17, name: 'requestProblemInformation', type: Byte, allowedIn: ['connect'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x18, name: 'willDelayInterval', type: FourByteInteger, allowedIn: ['will'], repeatable: false },
  { id: 0x19, name: 'requestResponseInformation', type: Byte, allowedIn: ['connect'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x1a, name: 'responseInformation', type: Utf8String, allowedIn: ['connack'], repeatable: false },
  { id: 0x1c, name: 'serverReference', type: Utf8String, allowedIn: ['connack', 'disconnect'], repeatable: false },
  { id: 0x1f, name: 'reasonString', type: Utf8String, allowedIn: ['connack', ...ACKS, 'suback', 'unsuback', 'disconnect', 'auth'], repeatable: false },
  { id: 0x21, name: 'receiveMaximum', type: TwoByteInteger, allowedIn: ['connect', 'connack'], repeatable: false, min: 1, max: U16, rangeError: 'protocol' },
  { id: 0x22, name: 'topicAliasMaximum', type: TwoByteInteger, allowedIn: ['connect', 'connack'], repeatable: false },
  // Topic Alias 0 is reported with 0x94 (section 3.3.4: "A Topic Alias value of 0 ... uses DISCONNECT with Reason Code of 0x94").
  { id: 0x23, name: 'topicAlias', type: TwoByteInteger, allowedIn: ['publish'], repeatable: false, min: 1, max: U16, rangeError: 'topicAlias', rangeRule: 'MQTT-3.3.2-8' },
  { id: 0x24, name: 'maximumQoS', type: Byte, allowedIn: ['connack'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x25, name: 'retainAvailable', type: Byte, allowedIn: ['connack'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x26, name: 'userProperties', type: Utf8StringPair, allowedIn: ['connect', 'connack', 'publish', 'will', ...ACKS, 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'disconnect', 'auth'], repeatable: true },
  { id: 0x27, name: 'maximumPacketSize', type: FourByteInteger, allowedIn: ['connect', 'connack'], repeatable: false, min: 1, max: U32, rangeError: 'protocol' },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: Byte, allowedIn: ['connack'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x29, name: 'subscriptionIdentifierAvailable', type: Byte, allowedIn: ['connack'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: Byte, allowedIn: ['connack'], repeatable: false, min: 0, max: 1, rangeError: 'protocol' },
];

/** Every MQTT 5.0 property, in identifier order. */
export const PROPERTY_DEFINITIONS: readonly PropertyDefinition[] = ROWS.map((row) => ({
  ...row,
  mask: row.allowedIn.reduce((m, c) => m | CONTEXT_MASK[c], 0),
}));

const byId: Array<PropertyDefinition | undefined> = new Array<PropertyDefinition | undefined>(128).fill(undefined);
const byName = new Map<string, PropertyDefinition>();
for (const def of PROPERTY_DEFINITIONS) {
  byId[def.id] = def;
  byName.set(def.name, def);
}

/** Definition for a property identifier, or undefined for an unknown identifier. */
export function propertyById(id: number): PropertyDefinition | undefined {
  return byId[id];
}

/** Definition for a {@link Properties} field name, or undefined. */
export function propertyByName(name: string): PropertyDefinition | undefined {
  return byName.get(name);
}
