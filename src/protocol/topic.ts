/**
 * Topic names, topic filters, shared subscriptions and matching (MQTT 5.0 section 4.7/4.8, 3.1.1 section 4.7).
 * Rule ids are the MQTT 5.0 ones; the 3.1.1 rule is named where its number differs.
 */
import { utf8CheckedLength } from './utf8.js';

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const MAX_STRING_BYTES = 65_535;

/** Non-empty, encodable as well-formed UTF-8 without U+0000, at most 65,535 bytes. */
function isValidTopicString(s: string): boolean {
  // [MQTT-4.7.3-1] at least one character; [MQTT-4.7.3-2] no U+0000; [MQTT-4.7.3-3] at most 65,535 bytes.
  if (s.length === 0) return false;
  const bytes = utf8CheckedLength(s);
  return bytes !== -1 && bytes <= MAX_STRING_BYTES;
}

/**
 * True when `name` may be used as the Topic Name of a PUBLISH: non-empty, no wildcard characters,
 * no U+0000, no lone surrogates, at most 65,535 UTF-8 bytes.
 */
export function isValidTopicName(name: string): boolean {
  if (!isValidTopicString(name)) return false;
  // [MQTT-4.7.0-1] (3.1.1: [MQTT-4.7.1-1]) wildcards are not allowed in a Topic Name.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === PLUS || c === HASH) return false;
  }
  return true;
}

/**
 * True when `filter` is a syntactically valid Topic Filter: non-empty, `#` only as a whole last level,
 * `+` only as a whole level. A `$share/...` filter is checked as a plain filter here; use
 * {@link parseSharedSubscription} for the share syntax.
 */
export function isValidTopicFilter(filter: string): boolean {
  if (!isValidTopicString(filter)) return false;
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === HASH) {
      // [MQTT-4.7.1-1] (3.1.1: [MQTT-4.7.1-2]) '#' alone in its level and the last character.
      if (i !== n - 1) return false;
      if (i > 0 && filter.charCodeAt(i - 1) !== SLASH) return false;
    } else if (c === PLUS) {
      // [MQTT-4.7.1-2] (3.1.1: [MQTT-4.7.1-3]) '+' occupies an entire level.
      if (i > 0 && filter.charCodeAt(i - 1) !== SLASH) return false;
      if (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH) return false;
    }
  }
  return true;
}

/** A parsed `$share/{group}/{filter}` subscription. */
export interface SharedSubscription {
  /** The ShareName. */
  group: string;
  /** The Topic Filter after the ShareName. */
  filter: string;
}

/** Why a filter starting with `$share/` is not a valid shared subscription. */
export interface InvalidSharedSubscription {
  error: 'empty-share-name' | 'invalid-share-name' | 'missing-filter' | 'invalid-filter';
}

const SHARE_PREFIX = '$share/';

/**
 * Parses a shared subscription filter. Returns `undefined` when `filter` does not start with `$share/`
 * (an ordinary filter), a {@link SharedSubscription} when it is a valid share, and an
 * {@link InvalidSharedSubscription} (`{ error }`) otherwise — e.g. `$share/g` (no filter), `$share//a`
 * (empty ShareName), `$share/g+/a` (wildcard in ShareName), `$share/g/a/#/b` (invalid filter).
 * A server answers the invalid cases with reason code 0x8F Topic Filter Invalid. Never throws.
 */
export function parseSharedSubscription(
  filter: string,
): SharedSubscription | InvalidSharedSubscription | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const groupStart = SHARE_PREFIX.length;
  const slash = filter.indexOf('/', groupStart);
  // [MQTT-4.8.2-2] the ShareName must be followed by '/' and then a Topic Filter.
  if (slash === -1) {
    return { error: groupStart === filter.length ? 'empty-share-name' : 'missing-filter' };
  }
  // [MQTT-4.8.2-1] the ShareName is at least one character long.
  if (slash === groupStart) return { error: 'empty-share-name' };
  const group = filter.slice(groupStart, slash);
  // [MQTT-4.8.2-2] the ShareName must not contain '/', '+' or '#'.
  if (group.includes('+') || group.includes('#')) return { error: 'invalid-share-name' };
  const rest = filter.slice(slash + 1);
  if (rest.length === 0) return { error: 'missing-filter' };
  if (!isValidTopicFilter(rest)) return { error: 'invalid-filter' };
  return { group, filter: rest };
}

/** Splits a topic name or filter into its levels (`'a//b'` -> `['a', '', 'b']`). */
export function splitLevels(topic: string): string[] {
  return topic.split('/');
}

/**
 * True when the Topic Filter `filter` matches the Topic Name `topic`. Both are assumed valid, and
 * `filter` is not a `$share/` filter (strip it with {@link parseSharedSubscription} first).
 * A filter starting with a wildcard does not match a topic starting with `$` [MQTT-4.7.2-1];
 * `a/#` matches `a` (the parent level).
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  if (topic.charCodeAt(0) === DOLLAR) {
    // [MQTT-4.7.2-1] wildcards at the first level do not match '$' topics.
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  // fs/ts index the start of the current level; ts > tl means the topic has no levels left.
  let fs = 0;
  let ts = 0;
  for (;;) {
    let fe = filter.indexOf('/', fs);
    if (fe === -1) fe = fl;
    const flen = fe - fs;
    if (flen === 1 && filter.charCodeAt(fs) === HASH) return true;
    if (ts > tl) return false;
    let te = topic.indexOf('/', ts);
    if (te === -1) te = tl;
    if (!(flen === 1 && filter.charCodeAt(fs) === PLUS)) {
      if (flen !== te - ts) return false;
      for (let i = 0; i < flen; i++) {
        if (filter.charCodeAt(fs + i) !== topic.charCodeAt(ts + i)) return false;
      }
    }
    fs = fe + 1;
    ts = te + 1;
    if (fs > fl) return ts > tl;
  }
}
