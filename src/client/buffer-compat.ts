/**
 * The codec relies on Node's Buffer, including its fast latin1/utf8 slice and write methods. A browser
 * has no Buffer: the page must install one (the `buffer` package, as bundlers do) before importing
 * the client. That polyfill lacks the fast methods; this adds them, built on its public API.
 */
interface BufferLike {
  toString(encoding: string, start: number, end: number): string;
  write(s: string, offset: number, length: number, encoding: string): number;
}

export function ensureBufferCompat(): void {
  const B = (globalThis as { Buffer?: { prototype: Record<string, unknown> } }).Buffer;
  if (B === undefined) throw new Error('telemq/client needs a global Buffer; in a browser install the `buffer` package as globalThis.Buffer first');
  const proto = B.prototype;
  for (const encoding of ['utf8', 'latin1'] as const) {
    if (typeof proto[`${encoding}Slice`] !== 'function') {
      proto[`${encoding}Slice`] = function (this: BufferLike, start: number, end: number): string {
        return this.toString(encoding, start, end);
      };
    }
    if (typeof proto[`${encoding}Write`] !== 'function') {
      proto[`${encoding}Write`] = function (this: BufferLike & { length: number }, s: string, offset: number, length?: number): number {
        return this.write(s, offset, length ?? this.length - offset, encoding);
      };
    }
  }
}
