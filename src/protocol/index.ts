/** Public surface of telemq's MQTT codec: packet types, constants, errors, topic helpers. */
export * from './constants.js';
export type * from './packets.js';
export * from './errors.js';
export * from './topic.js';
