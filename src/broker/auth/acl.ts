/**
 * The ACL file: who may read (receive) and write (publish) which topics. docs/security.md is the reference for the
 * format and the semantics; in short:
 *
 *   pattern read devices/%c/config        # top-level pattern: applies to every client
 *   user alice                            # rules below apply to the client authenticated as alice
 *   topic readwrite sensors/#
 *   topic deny sensors/secret/#
 *   client meter-17                       # rules below apply to the client whose identifier is meter-17
 *   topic write meters/17/#
 *   anonymous                             # rules below apply to clients without a username
 *   topic read public/#
 *   all                                   # rules below apply to every client
 *   topic read announcements/#
 *
 * Decision: deny by default; a `deny` rule that matches wins over every grant, wherever it is in the file; otherwise a
 * matching grant with the right access allows. Order does not matter. `%u`/`%c` values that contain `/`, `+`, `#`,
 * start with `$` or are empty never widen a rule: grants that mention them give nothing, denies deny everything.
 */
import { readFile } from 'node:fs/promises';
import { isValidTopicFilter, isValidTopicName } from '../../protocol/topic.js';

export type Access = 'read' | 'write' | 'readwrite' | 'deny';

/** One level of a rule filter. Substituted values are always literal, never wildcards. */
type Level =
  | { kind: 'literal'; text: string }
  | { kind: 'plus' }
  | { kind: 'hash' }
  | { kind: 'var'; parts: readonly (string | '%u' | '%c')[] };

interface Rule {
  access: Access;
  levels: readonly Level[];
  /** Source line, for messages. */
  line: number;
}

type Scope = { kind: 'all' } | { kind: 'anonymous' } | { kind: 'user'; name: string } | { kind: 'client'; id: string };

interface Section {
  scope: Scope;
  rules: Rule[];
}

/** Who is asking. `username` undefined means an anonymous client. */
export interface AclSubject {
  username: string | undefined;
  clientId: string;
}

const ACCESS = new Set<string>(['read', 'write', 'readwrite', 'deny']);

/** Thrown for an ACL file with errors; `problems` has one `file:line: why` each. Nothing is half-applied. */
export class AclError extends Error {
  readonly code = 'TELEMQ_ERR_ACL';
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`invalid ACL:\n  ${problems.join('\n  ')}`);
    this.name = 'AclError';
    this.problems = problems;
  }
}

function compile(filter: string, isPattern: boolean): Level[] {
  return filter.split('/').map((text): Level => {
    if (text === '+') return { kind: 'plus' };
    if (text === '#') return { kind: 'hash' };
    if (isPattern && /%[uc]/.test(text)) {
      return { kind: 'var', parts: text.split(/(%[uc])/).filter((p) => p !== '') as (string | '%u' | '%c')[] };
    }
    return { kind: 'literal', text };
  });
}

/** A substituted value that could change the shape of a filter or reach `$` topics. */
function isHostile(value: string): boolean {
  return value === '' || value.startsWith('$') || /[/+#\u0000]/.test(value);
}

type Resolved = { ok: true; levels: readonly Exclude<Level, { kind: 'var' }>[] } | { ok: false };

/** Substitutes %u/%c; `ok: false` when a value is missing or hostile. */
function resolveLevels(levels: readonly Level[], who: AclSubject): Resolved {
  const out: Exclude<Level, { kind: 'var' }>[] = [];
  for (const l of levels) {
    if (l.kind !== 'var') {
      out.push(l);
      continue;
    }
    let text = '';
    for (const p of l.parts) {
      if (p === '%u' || p === '%c') {
        const v = p === '%u' ? who.username : who.clientId;
        if (v === undefined || isHostile(v)) return { ok: false };
        text += v;
      } else {
        text += p;
      }
    }
    out.push({ kind: 'literal', text });
  }
  return { ok: true, levels: out };
}

type Plain = readonly Exclude<Level, { kind: 'var' }>[];

/** Does the rule filter match the topic name? Same rules as subscription matching, incl. [MQTT-4.7.2-1]. */
function matchesTopic(rule: Plain, topic: readonly string[]): boolean {
  for (let i = 0; i < rule.length; i++) {
    const r = rule[i]!;
    // [MQTT-4.7.2-1] a wildcard as the first level does not match a topic starting with '$'.
    if (i === 0 && r.kind !== 'literal' && topic[0]!.startsWith('$')) return false;
    if (r.kind === 'hash') return true; // '#' also matches the parent level [MQTT-4.7.1-1].
    if (i >= topic.length) return false;
    if (r.kind === 'literal' && r.text !== topic[i]) return false;
  }
  return rule.length === topic.length;
}

/** Does the rule filter match every topic the subscription filter can match? */
function covers(rule: Plain, filter: readonly string[]): boolean {
  for (let i = 0; i < rule.length; i++) {
    const r = rule[i]!;
    const f = filter[i];
    // A '$' literal first level in the filter is not matched by a wildcard in the rule [MQTT-4.7.2-1].
    if (i === 0 && r.kind !== 'literal' && f !== '+' && f !== '#' && f!.startsWith('$')) return false;
    if (r.kind === 'hash') return true;
    if (f === undefined || f === '#') return false;
    if (r.kind === 'plus') continue;
    if (f === '+' || f !== r.text) return false;
  }
  return rule.length === filter.length;
}

/** Can some topic be matched by both the rule and the subscription filter? */
function intersects(rule: Plain, filter: readonly string[]): boolean {
  const n = Math.max(rule.length, filter.length);
  for (let i = 0; i < n; i++) {
    const r = rule[i];
    const f = filter[i];
    const rWild = r !== undefined && r.kind !== 'literal';
    const fWild = f === '+' || f === '#';
    if (i === 0) {
      // A wildcard on one side and a '$' literal on the other never meet [MQTT-4.7.2-1].
      if (rWild && f !== undefined && !fWild && f.startsWith('$')) return false;
      if (fWild && r !== undefined && r.kind === 'literal' && r.text.startsWith('$')) return false;
    }
    if (r?.kind === 'hash' || f === '#') return true;
    if (r === undefined || f === undefined) return false;
    if (r.kind === 'plus' || f === '+') continue;
    if (r.text !== f) return false;
  }
  return true;
}

function grants(access: Access, op: 'read' | 'write'): boolean {
  return access === 'readwrite' || access === op;
}

/** A parsed ACL. Immutable: reload by parsing again and swapping the instance. */
export class Acl {
  readonly #sections: readonly Section[];

  private constructor(sections: Section[]) {
    this.#sections = sections;
  }

  /** Parses ACL text; throws {@link AclError} listing every bad line. */
  static parse(text: string, source = 'ACL'): Acl {
    const problems: string[] = [];
    const top: Section = { scope: { kind: 'all' }, rules: [] };
    const sections: Section[] = [top];
    let current: Section | undefined;
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      const at = `${source}:${i + 1}`;
      if (line === '' || line.startsWith('#')) return;
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!;
      const keyword = m[1]!;
      const rest = m[2] ?? '';
      switch (keyword) {
        case 'user':
        case 'client': {
          // Names run to the end of the line: usernames may contain spaces.
          if (rest === '') {
            problems.push(`${at}: '${keyword}' needs a name`);
            return;
          }
          current = { scope: keyword === 'user' ? { kind: 'user', name: rest } : { kind: 'client', id: rest }, rules: [] };
          sections.push(current);
          return;
        }
        case 'anonymous':
        case 'all':
          if (rest !== '') {
            problems.push(`${at}: '${keyword}' takes no argument`);
            return;
          }
          current = { scope: { kind: keyword }, rules: [] };
          sections.push(current);
          return;
        case 'topic':
        case 'pattern': {
          const r = /^(read|write|readwrite|deny)\s+(\S+)$/.exec(rest);
          if (r === null) {
            const word = rest.split(/\s+/)[0] ?? '';
            problems.push(
              ACCESS.has(word)
                ? `${at}: expected '${keyword} ${word} <filter>' with a filter without spaces`
                : `${at}: expected '${keyword} read|write|readwrite|deny <filter>'`,
            );
            return;
          }
          const access = r[1] as Access;
          const filter = r[2]!;
          if (!isValidTopicFilter(filter)) {
            problems.push(`${at}: '${filter}' is not a valid topic filter`);
            return;
          }
          if (keyword === 'topic' && current === undefined) {
            // Mosquitto reads such lines as rules for anonymous clients; guessing either way is unsafe.
            problems.push(`${at}: 'topic' before any section: put it under 'anonymous', 'all', 'user <name>' or 'client <id>'`);
            return;
          }
          (current ?? top).rules.push({ access, levels: compile(filter, keyword === 'pattern'), line: i + 1 });
          return;
        }
        default:
          problems.push(`${at}: unknown keyword '${keyword}'`);
      }
    });
    if (problems.length > 0) throw new AclError(problems);
    return new Acl(sections);
  }

  static async load(path: string): Promise<Acl> {
    return Acl.parse(await readFile(path, 'utf8'), path);
  }

  /** Rules that apply to `who`, with %u/%c substituted; a hostile value yields `undefined` for that rule. */
  *#rulesFor(who: AclSubject): Generator<{ access: Access; levels: Plain | undefined }> {
    for (const s of this.#sections) {
      const applies =
        s.scope.kind === 'all' ||
        (s.scope.kind === 'anonymous' && who.username === undefined) ||
        (s.scope.kind === 'user' && who.username === s.scope.name) ||
        (s.scope.kind === 'client' && who.clientId === s.scope.id);
      if (!applies) continue;
      for (const rule of s.rules) {
        // An anonymous client has no %u: a rule about "the user's own topics" does not exist for it.
        if (who.username === undefined && rule.levels.some((l) => l.kind === 'var' && l.parts.includes('%u'))) continue;
        const res = resolveLevels(rule.levels, who);
        yield { access: rule.access, levels: res.ok ? res.levels : undefined };
      }
    }
  }

  #check(who: AclSubject, op: 'read' | 'write', topic: string): boolean {
    if (!isValidTopicName(topic)) return false;
    const levels = topic.split('/');
    let granted = false;
    for (const { access, levels: rule } of this.#rulesFor(who)) {
      if (access === 'deny') {
        // A deny whose placeholder could not be filled safely denies everything.
        if (rule === undefined || matchesTopic(rule, levels)) return false;
      } else if (!granted && rule !== undefined && grants(access, op) && matchesTopic(rule, levels)) {
        granted = true;
      }
    }
    return granted;
  }

  /** May `who` receive a message on `topic` (delivery, retained messages)? */
  canRead(who: AclSubject, topic: string): boolean {
    return this.#check(who, 'read', topic);
  }

  /** May `who` publish to `topic` (PUBLISH, and the will topic at CONNECT)? */
  canWrite(who: AclSubject, topic: string): boolean {
    return this.#check(who, 'write', topic);
  }

  /**
   * May `who` subscribe to `filter`? Only when one read grant covers every topic the filter can match and no deny
   * rule matches any topic it can match, so a granted subscription never needs per-message filtering to stay within
   * the rules. Pass the filter without a `$share/<group>/` prefix.
   */
  canSubscribe(who: AclSubject, filter: string): boolean {
    if (!isValidTopicFilter(filter)) return false;
    const levels = filter.split('/');
    let granted = false;
    for (const { access, levels: rule } of this.#rulesFor(who)) {
      if (access === 'deny') {
        if (rule === undefined || intersects(rule, levels)) return false;
      } else if (!granted && rule !== undefined && grants(access, 'read') && covers(rule, levels)) {
        granted = true;
      }
    }
    return granted;
  }
}
