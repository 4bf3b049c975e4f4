/**
 * Raw TCP MQTT client for conformance tests: hand-built bytes out, framed packets in.
 * Deliberately independent of src/protocol so that codec bugs show up as test failures.
 */
import net from 'node:net';

/** One framed packet as read off the wire. */
export interface RawPacket {
  /** Packet type (high nibble of the first byte). */
  type: number;
  /** Low nibble of the first byte. */
  flags: number;
  body: Buffer;
  raw: Buffer;
}

export const T = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

export const TYPE_NAMES = [
  'reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP',
  'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH',
] as const;

export class ClosedError extends Error {
  constructor(readonly unread: RawPacket[]) {
    super('connection closed by peer');
  }
}

export class TimeoutError extends Error {}

/** Reads one complete frame from the front of buf, or returns undefined if incomplete. */
function frame(buf: Buffer): { packet: RawPacket; used: number } | undefined {
  if (buf.length < 2) return undefined;
  let len = 0;
  let mul = 1;
  let i = 1;
  for (;;) {
    const b = buf[i];
    if (b === undefined) return undefined;
    len += (b & 0x7f) * mul;
    mul *= 128;
    i++;
    if ((b & 0x80) === 0) break;
    if (i > 4) throw new Error('server sent a remaining length longer than 4 bytes');
  }
  if (buf.length < i + len) return undefined;
  const first = buf[0] ?? 0;
  const raw = Buffer.from(buf.subarray(0, i + len));
  return { packet: { type: first >> 4, flags: first & 0x0f, body: raw.subarray(i), raw }, used: i + len };
}

export class RawClient {
  readonly socket: net.Socket;
  #buf = Buffer.alloc(0);
  #queue: RawPacket[] = [];
  #waiters: Array<{ resolve: (p: RawPacket) => void; reject: (e: Error) => void }> = [];
  #closed = false;
  #closeWaiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      for (;;) {
        const f = frame(this.#buf);
        if (f === undefined) break;
        this.#buf = this.#buf.subarray(f.used);
        const w = this.#waiters.shift();
        if (w) w.resolve(f.packet);
        else this.#queue.push(f.packet);
      }
    });
    // A reset by the broker counts as a close for our purposes.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w.reject(new ClosedError([]));
      for (const c of this.#closeWaiters.splice(0)) c();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.setNoDelay(true);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a Buffer or a hex string (whitespace ignored). */
  send(bytes: Buffer | string): void {
    const b = typeof bytes === 'string' ? hex(bytes) : bytes;
    if (!this.#closed && !this.socket.destroyed) this.socket.write(b);
  }

  /** Next packet; rejects with ClosedError if the connection closes first, TimeoutError after timeoutMs. */
  next(timeoutMs = 2000): Promise<RawPacket> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new ClosedError([]));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (p: RawPacket) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new TimeoutError(`no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Next packet, asserting its type. */
  async expect(type: number, timeoutMs = 2000): Promise<RawPacket> {
    const p = await this.next(timeoutMs);
    if (p.type !== type) {
      throw new Error(`expected ${TYPE_NAMES[type] ?? type}, got ${TYPE_NAMES[p.type] ?? p.type} ${p.raw.toString('hex')}`);
    }
    return p;
  }

  /** The next packet if one arrives within ms, 'closed' if the connection closes first, undefined if nothing happens. */
  async silentFor(ms: number): Promise<RawPacket | 'closed' | undefined> {
    try {
      return await this.next(ms);
    } catch (e) {
      if (e instanceof TimeoutError) return undefined;
      if (e instanceof ClosedError) return 'closed';
      throw e;
    }
  }

  /**
   * Waits for the peer to close the connection; returns every packet received but not yet read.
   * Rejects with TimeoutError if still open after timeoutMs.
   */
  waitClose(timeoutMs = 2000): Promise<RawPacket[]> {
    const drain = (): RawPacket[] => this.#queue.splice(0);
    if (this.#closed) return Promise.resolve(drain());
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(drain());
      };
      const timer = setTimeout(() => {
        const i = this.#closeWaiters.indexOf(done);
        if (i >= 0) this.#closeWaiters.splice(i, 1);
        reject(new TimeoutError(`connection still open after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#closeWaiters.push(done);
    });
  }

  /** Closes our side without sending DISCONNECT (an abnormal close from the broker's point of view). */
  destroy(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Byte builders: every field spelled out, so each test controls exactly what goes on the wire.

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

export function vbi(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Length-prefixed string; a Buffer is written as-is (for deliberately invalid UTF-8). */
export function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([u16(b.length), b]);
}

/** Fixed header (first byte) + remaining length + body. */
export function packet(first: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([first]), vbi(body.length), body]);
}

export const P = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  AssignedClientIdentifier: 0x12,
  ServerKeepAlive: 0x13,
  AuthenticationMethod: 0x15,
  AuthenticationData: 0x16,
  RequestProblemInformation: 0x17,
  WillDelayInterval: 0x18,
  RequestResponseInformation: 0x19,
  ResponseInformation: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQoS: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardSubscriptionAvailable: 0x28,
  SubscriptionIdentifierAvailable: 0x29,
  SharedSubscriptionAvailable: 0x2a,
} as const;

type WireType = 'byte' | 'u16' | 'u32' | 'vbi' | 'string' | 'binary' | 'pair';
const WIRE: Record<number, WireType> = {
  0x01: 'byte', 0x02: 'u32', 0x03: 'string', 0x08: 'string', 0x09: 'binary', 0x0b: 'vbi', 0x11: 'u32',
  0x12: 'string', 0x13: 'u16', 0x15: 'string', 0x16: 'binary', 0x17: 'byte', 0x18: 'u32', 0x19: 'byte',
  0x1a: 'string', 0x1c: 'string', 0x1f: 'string', 0x21: 'u16', 0x22: 'u16', 0x23: 'u16', 0x24: 'byte',
  0x25: 'byte', 0x26: 'pair', 0x27: 'u32', 0x28: 'byte', 0x29: 'byte', 0x2a: 'byte',
};

export type PropValue = number | string | Buffer | readonly [string, string];
/** A property list in wire order; repeated ids are allowed (to build invalid packets too). */
export type Props = ReadonlyArray<readonly [number, PropValue]>;

export function props(list: Props): Buffer {
  const parts: Buffer[] = [];
  for (const [id, v] of list) {
    parts.push(vbi(id));
    switch (WIRE[id]) {
      case 'byte':
        parts.push(Buffer.from([v as number]));
        break;
      case 'u16':
        parts.push(u16(v as number));
        break;
      case 'u32':
        parts.push(u32(v as number));
        break;
      case 'vbi':
        parts.push(vbi(v as number));
        break;
      case 'string':
        parts.push(str(v as string | Buffer));
        break;
      case 'binary':
        parts.push(str(v as Buffer));
        break;
      case 'pair': {
        const [k, val] = v as readonly [string, string];
        parts.push(str(k), str(val));
        break;
      }
      case undefined:
        throw new Error(`unknown property id ${id}`);
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([vbi(body.length), body]);
}

export type Version = 3 | 4 | 5;

export interface ConnectOptions {
  version?: Version;
  clientId?: string | Buffer;
  clean?: boolean;
  keepAlive?: number;
  will?: { topic: string; payload?: Buffer | string; qos?: number; retain?: boolean; properties?: Props };
  username?: string;
  password?: Buffer | string;
  properties?: Props;
  /** OR-ed into the connect flags (e.g. 0x01 to set the reserved bit). */
  extraFlags?: number;
}

export function connect(o: ConnectOptions = {}): Buffer {
  const version = o.version ?? 4;
  const name = version === 3 ? 'MQIsdp' : 'MQTT';
  let flags = o.extraFlags ?? 0;
  if (o.clean ?? true) flags |= 0x02;
  if (o.will) flags |= 0x04 | ((o.will.qos ?? 0) << 3) | (o.will.retain ? 0x20 : 0);
  if (o.password !== undefined) flags |= 0x40;
  if (o.username !== undefined) flags |= 0x80;
  const parts = [str(name), Buffer.from([version, flags]), u16(o.keepAlive ?? 0)];
  if (version === 5) parts.push(props(o.properties ?? []));
  parts.push(str(o.clientId ?? ''));
  if (o.will) {
    if (version === 5) parts.push(props(o.will.properties ?? []));
    parts.push(str(o.will.topic), str(Buffer.from(o.will.payload ?? '')));
  }
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(Buffer.from(o.password)));
  return packet(0x10, ...parts);
}

export interface PublishOptions {
  version?: Version;
  topic: string | Buffer;
  payload?: Buffer | string;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  packetId?: number;
  properties?: Props;
}

export function publish(o: PublishOptions): Buffer {
  const qos = o.qos ?? 0;
  const first = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 0x01 : 0);
  const parts = [str(o.topic)];
  if (qos > 0) parts.push(u16(o.packetId ?? 1));
  if ((o.version ?? 4) === 5) parts.push(props(o.properties ?? []));
  parts.push(Buffer.from(o.payload ?? ''));
  return packet(first, ...parts);
}

export interface SubscriptionRequest {
  topic: string | Buffer;
  qos?: number;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: number;
}

export function subscribe(
  o: { version?: Version; packetId?: number; properties?: Props },
  ...subs: SubscriptionRequest[]
): Buffer {
  const parts = [u16(o.packetId ?? 1)];
  if ((o.version ?? 4) === 5) parts.push(props(o.properties ?? []));
  for (const s of subs) {
    const opts =
      (s.qos ?? 0) | (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4);
    parts.push(str(s.topic), Buffer.from([opts]));
  }
  return packet(0x82, ...parts);
}

export function unsubscribe(o: { version?: Version; packetId?: number; properties?: Props }, ...topics: string[]): Buffer {
  const parts = [u16(o.packetId ?? 1)];
  if ((o.version ?? 4) === 5) parts.push(props(o.properties ?? []));
  for (const t of topics) parts.push(str(t));
  return packet(0xa2, ...parts);
}

/** PUBACK / PUBREC / PUBREL / PUBCOMP. v3 form when reasonCode is undefined. */
export function ack(type: number, packetId: number, reasonCode?: number, properties?: Props): Buffer {
  const first = (type << 4) | (type === T.PUBREL ? 0x02 : 0);
  const parts: Buffer[] = [u16(packetId)];
  if (reasonCode !== undefined) parts.push(Buffer.from([reasonCode]));
  if (properties !== undefined) parts.push(props(properties));
  return packet(first, ...parts);
}

export const pingreq = (): Buffer => hex('c000');

/** v5 AUTH with a reason code and properties. */
export function auth(reasonCode: number, properties: Props): Buffer {
  return packet(0xf0, Buffer.from([reasonCode]), props(properties));
}

/** DISCONNECT; v3 form (no body) when reasonCode is undefined. */
export function disconnect(reasonCode?: number, properties?: Props): Buffer {
  if (reasonCode === undefined) return hex('e000');
  const parts: Buffer[] = [Buffer.from([reasonCode])];
  if (properties !== undefined) parts.push(props(properties));
  return packet(0xe0, ...parts);
}

// ---------------------------------------------------------------------------------------------------------------
// Parsers for the packets a server sends.

export interface PropEntry {
  id: number;
  value: number | string | Buffer | [string, string];
}

class Reader {
  pos = 0;
  constructor(readonly b: Buffer) {}
  get left(): number {
    return this.b.length - this.pos;
  }
  byte(): number {
    const v = this.b.readUInt8(this.pos);
    this.pos += 1;
    return v;
  }
  u16(): number {
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  vbi(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      v += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return v;
    }
    throw new Error('variable byte integer longer than 4 bytes');
  }
  bin(): Buffer {
    const n = this.u16();
    if (n > this.left) throw new Error('length prefix runs past the packet');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  str(): string {
    return this.bin().toString('utf8');
  }
  rest(): Buffer {
    const v = this.b.subarray(this.pos);
    this.pos = this.b.length;
    return v;
  }
  props(): PropEntry[] {
    const len = this.vbi();
    const end = this.pos + len;
    if (end > this.b.length) throw new Error('property length runs past the packet');
    const out: PropEntry[] = [];
    while (this.pos < end) {
      const id = this.vbi();
      switch (WIRE[id]) {
        case 'byte':
          out.push({ id, value: this.byte() });
          break;
        case 'u16':
          out.push({ id, value: this.u16() });
          break;
        case 'u32':
          out.push({ id, value: this.u32() });
          break;
        case 'vbi':
          out.push({ id, value: this.vbi() });
          break;
        case 'string':
          out.push({ id, value: this.str() });
          break;
        case 'binary':
          out.push({ id, value: Buffer.from(this.bin()) });
          break;
        case 'pair':
          out.push({ id, value: [this.str(), this.str()] });
          break;
        case undefined:
          throw new Error(`server sent unknown property id 0x${id.toString(16)}`);
      }
    }
    if (this.pos !== end) throw new Error('property length mismatch');
    return out;
  }
}

export function prop(list: readonly PropEntry[], id: number): PropEntry['value'] | undefined {
  return list.find((p) => p.id === id)?.value;
}

export function propAll(list: readonly PropEntry[], id: number): Array<PropEntry['value']> {
  return list.filter((p) => p.id === id).map((p) => p.value);
}

export interface Connack {
  sessionPresent: boolean;
  /** v3 return code or v5 reason code. */
  code: number;
  flagsByte: number;
  properties: PropEntry[];
}

export function parseConnack(p: RawPacket, version: Version): Connack {
  if (p.type !== T.CONNACK) throw new Error(`not a CONNACK: ${p.raw.toString('hex')}`);
  const r = new Reader(p.body);
  const flagsByte = r.byte();
  const code = r.byte();
  const properties = version === 5 && r.left > 0 ? r.props() : [];
  return { sessionPresent: (flagsByte & 1) === 1, code, flagsByte, properties };
}

export interface Publish {
  topic: string;
  topicBytes: Buffer;
  qos: number;
  dup: boolean;
  retain: boolean;
  packetId?: number;
  payload: Buffer;
  properties: PropEntry[];
}

export function parsePublish(p: RawPacket, version: Version): Publish {
  if (p.type !== T.PUBLISH) throw new Error(`not a PUBLISH: ${p.raw.toString('hex')}`);
  const r = new Reader(p.body);
  const qos = (p.flags >> 1) & 3;
  const topicBytes = Buffer.from(r.bin());
  const packetId = qos > 0 ? r.u16() : undefined;
  const properties = version === 5 ? r.props() : [];
  const payload = Buffer.from(r.rest());
  const out: Publish = {
    topic: topicBytes.toString('utf8'),
    topicBytes,
    qos,
    dup: (p.flags & 0x08) !== 0,
    retain: (p.flags & 0x01) !== 0,
    payload,
    properties,
  };
  if (packetId !== undefined) out.packetId = packetId;
  return out;
}

export interface Suback {
  packetId: number;
  codes: number[];
  properties: PropEntry[];
}

/** SUBACK and UNSUBACK (v3 UNSUBACK has no codes). */
export function parseSuback(p: RawPacket, version: Version): Suback {
  if (p.type !== T.SUBACK && p.type !== T.UNSUBACK) throw new Error(`not a SUBACK/UNSUBACK: ${p.raw.toString('hex')}`);
  const r = new Reader(p.body);
  const packetId = r.u16();
  const properties = version === 5 ? r.props() : [];
  return { packetId, codes: [...r.rest()], properties };
}

export interface Ack {
  packetId: number;
  /** 0 when the reason code is omitted (v5 short form) or in v3. */
  reasonCode: number;
  properties: PropEntry[];
}

export function parseAck(p: RawPacket): Ack {
  const r = new Reader(p.body);
  const packetId = r.u16();
  const reasonCode = r.left > 0 ? r.byte() : 0;
  const properties = r.left > 0 ? r.props() : [];
  return { packetId, reasonCode, properties };
}

export interface Disconnect {
  reasonCode: number;
  properties: PropEntry[];
}

export function parseDisconnect(p: RawPacket): Disconnect {
  if (p.type !== T.DISCONNECT) throw new Error(`not a DISCONNECT: ${p.raw.toString('hex')}`);
  return parseReasonAndProperties(p);
}

/** AUTH has the same shape as DISCONNECT: an optional reason code, then optional properties. */
export function parseAuth(p: RawPacket): Disconnect {
  if (p.type !== T.AUTH) throw new Error(`not an AUTH: ${p.raw.toString('hex')}`);
  return parseReasonAndProperties(p);
}

function parseReasonAndProperties(p: RawPacket): Disconnect {
  const r = new Reader(p.body);
  const reasonCode = r.left > 0 ? r.byte() : 0;
  const properties = r.left > 0 ? r.props() : [];
  return { reasonCode, properties };
}

// ---------------------------------------------------------------------------------------------------------------
// Conveniences.

/** Opens a socket, sends CONNECT, returns the client and its CONNACK (whatever the code). */
export async function rawConnect(port: number, o: ConnectOptions = {}): Promise<{ client: RawClient; connack: Connack }> {
  const client = await RawClient.connect(port);
  client.send(connect(o));
  const connack = parseConnack(await client.expect(T.CONNACK), o.version ?? 4);
  return { client, connack };
}

/** Like rawConnect but throws unless the CONNACK accepts the connection. */
export async function rawSession(port: number, o: ConnectOptions = {}): Promise<RawClient> {
  const { client, connack } = await rawConnect(port, o);
  if (connack.code !== 0) {
    client.destroy();
    throw new Error(`CONNECT refused with code 0x${connack.code.toString(16)}`);
  }
  return client;
}

/** Subscribes and waits for the SUBACK; returns its codes. */
export async function rawSubscribe(
  c: RawClient,
  version: Version,
  packetId: number,
  ...subs: SubscriptionRequest[]
): Promise<number[]> {
  c.send(subscribe({ version, packetId }, ...subs));
  const suback = parseSuback(await c.expect(T.SUBACK), version);
  if (suback.packetId !== packetId) throw new Error(`SUBACK for packet id ${suback.packetId}, expected ${packetId}`);
  return suback.codes;
}
