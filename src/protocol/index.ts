/** Public surface of telemq's MQTT codec: packet types, constants, errors, properties, topic helpers, codec. */
export * from './constants.js';
export type * from './packets.js';
export * from './errors.js';
export * from './topic.js';
export * from './properties.js';
export { Decoder, type DecoderOptions } from './decoder.js';
export { encode, encodedLength } from './encoder.js';
export { utf8CheckedLength, isWellFormedMqttUtf8 } from './utf8.js';
