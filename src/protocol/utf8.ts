/**
 * UTF-8 helpers shared by topic validation, the decoder and the encoder.
 * MQTT character data must be well-formed UTF-8 without U+0000 and without surrogate code points
 * [MQTT-1.5.4-1] [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-1] [MQTT-1.5.3-2]); a JS string can hold lone surrogates,
 * which have no UTF-8 form.
 */

/** Returns the UTF-8 byte length of `s`, or -1 when it holds a lone surrogate or U+0000. */
export function utf8CheckedLength(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) return -1;
      continue;
    }
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (c >= 0xdc00) return -1;
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) return -1;
      // A pair is 2 UTF-16 units and 4 UTF-8 bytes.
      bytes += 2;
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * Validates UTF-8 bytes per [MQTT-1.5.4-1] (well-formed, no surrogates, no overlongs)
 * and [MQTT-1.5.4-2] (no U+0000). Returns true when valid.
 */
export function isWellFormedMqttUtf8(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      if (b === 0) return false;
      i++;
      continue;
    }
    if (b < 0xc2) return false; // continuation byte or overlong 2-byte lead
    if (b < 0xe0) {
      if (i + 1 >= end || (buf[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2;
      continue;
    }
    if (b < 0xf0) {
      if (i + 2 >= end) return false;
      const b1 = buf[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2]! & 0xc0) !== 0x80) return false;
      if (b === 0xe0 && b1 < 0xa0) return false; // overlong
      if (b === 0xed && b1 >= 0xa0) return false; // U+D800..U+DFFF
      i += 3;
      continue;
    }
    if (b < 0xf5) {
      if (i + 3 >= end) return false;
      const b1 = buf[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2]! & 0xc0) !== 0x80 || (buf[i + 3]! & 0xc0) !== 0x80) return false;
      if (b === 0xf0 && b1 < 0x90) return false; // overlong
      if (b === 0xf4 && b1 >= 0x90) return false; // above U+10FFFF
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}

/**
 * Node's Buffer has undocumented but long-stable slice/write methods that skip the encoding dispatch of
 * toString()/write(); typed here once for the codec's hot paths.
 */
export interface FastBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length?: number): number;
  latin1Write(s: string, offset: number, length?: number): number;
}
