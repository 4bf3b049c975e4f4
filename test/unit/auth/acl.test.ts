import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Acl, AclError, type AclSubject } from '../../../src/broker/auth/acl.js';

const alice: AclSubject = { username: 'alice', clientId: 'a1' };
const bob: AclSubject = { username: 'bob', clientId: 'b1' };
const anon: AclSubject = { username: undefined, clientId: 'anon-1' };

test('an empty ACL denies everything (default deny)', () => {
  const acl = Acl.parse('');
  assert.equal(acl.canRead(alice, 'a'), false);
  assert.equal(acl.canWrite(alice, 'a'), false);
  assert.equal(acl.canSubscribe(alice, '#'), false);
});

test('user sections: read, write, readwrite apply only to that user', () => {
  const acl = Acl.parse(`
user alice
topic read r/#
topic write w/#
topic readwrite rw/+
user bob
topic read b
`);
  assert.equal(acl.canRead(alice, 'r/x'), true);
  assert.equal(acl.canWrite(alice, 'r/x'), false);
  assert.equal(acl.canWrite(alice, 'w/x/y'), true);
  assert.equal(acl.canRead(alice, 'w/x'), false);
  assert.equal(acl.canRead(alice, 'rw/1'), true);
  assert.equal(acl.canWrite(alice, 'rw/1'), true);
  assert.equal(acl.canWrite(alice, 'rw/1/2'), false, '+ is one level');
  assert.equal(acl.canRead(alice, 'b'), false);
  assert.equal(acl.canRead(bob, 'b'), true);
  assert.equal(acl.canRead(bob, 'r/x'), false);
  assert.equal(acl.canRead(anon, 'r/x'), false);
});

test('deny wins over grants wherever it appears, and applies to both read and write', () => {
  const acl = Acl.parse(`
user alice
topic deny sensors/secret/#
topic readwrite sensors/#
all
topic readwrite #
`);
  assert.equal(acl.canRead(alice, 'sensors/a'), true);
  assert.equal(acl.canRead(alice, 'sensors/secret'), false, '# matches the parent level');
  assert.equal(acl.canRead(alice, 'sensors/secret/x'), false);
  assert.equal(acl.canWrite(alice, 'sensors/secret/x'), false);
  assert.equal(acl.canWrite(bob, 'sensors/secret/x'), true, 'the deny is alice\'s only');
});

test('client sections, anonymous and all sections', () => {
  const acl = Acl.parse(`
client meter-17
topic write meters/17/#
anonymous
topic read public/#
all
topic read news
`);
  const meter = { username: 'svc', clientId: 'meter-17' };
  assert.equal(acl.canWrite(meter, 'meters/17/kwh'), true);
  assert.equal(acl.canWrite({ username: 'svc', clientId: 'meter-18' }, 'meters/17/kwh'), false);
  assert.equal(acl.canRead(anon, 'public/x'), true);
  assert.equal(acl.canRead(alice, 'public/x'), false, 'anonymous rules do not apply to users');
  assert.equal(acl.canRead(alice, 'news'), true);
  assert.equal(acl.canRead(anon, 'news'), true);
});

test('patterns substitute %u and %c; top-level patterns apply to every client', () => {
  const acl = Acl.parse(`
pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern write logs/%u-%c
`);
  assert.equal(acl.canWrite(alice, 'devices/a1/state'), true);
  assert.equal(acl.canWrite(alice, 'devices/b1/state'), false);
  assert.equal(acl.canRead(alice, 'users/alice/inbox'), true);
  assert.equal(acl.canRead(alice, 'users/bob/inbox'), false);
  assert.equal(acl.canWrite(alice, 'logs/alice-a1'), true);
  assert.equal(acl.canWrite(anon, 'devices/anon-1/x'), true, '%c works for anonymous clients');
  assert.equal(acl.canRead(anon, 'users//inbox'), false, 'no %u for anonymous clients');
});

test('hostile usernames and client ids never widen a pattern grant', () => {
  const acl = Acl.parse(`
pattern readwrite users/%u/#
pattern read devices/%c
`);
  for (const username of ['#', '+', 'a/b', 'alice/#', '$SYS', '']) {
    const who = { username, clientId: 'x' };
    assert.equal(acl.canRead(who, 'users/alice/x'), false, username);
    assert.equal(acl.canRead(who, 'users/a/b/x'), false, username);
    assert.equal(acl.canSubscribe(who, 'users/#'), false, username);
    assert.equal(acl.canSubscribe(who, `users/${username}/#`), false, username);
  }
  for (const clientId of ['#', '+', 'a/b', '']) {
    const who = { username: 'u', clientId };
    assert.equal(acl.canRead(who, 'devices/x'), false, clientId);
    assert.equal(acl.canSubscribe(who, 'devices/+'), false, clientId);
  }
  // A user called '$SYS' must not read $SYS through 'pattern read %u/#'.
  const sys = Acl.parse('pattern read %u/#');
  assert.equal(sys.canRead({ username: '$SYS', clientId: 'c' }, '$SYS/broker/uptime'), false);
  assert.equal(sys.canRead({ username: 'ok', clientId: 'c' }, 'ok/x'), true);
});

test('a deny pattern with a hostile value denies everything for that client', () => {
  const acl = Acl.parse(`
pattern deny private/%c/#
all
topic readwrite #
`);
  assert.equal(acl.canWrite({ username: 'u', clientId: 'ok' }, 'x'), true);
  assert.equal(acl.canWrite({ username: 'u', clientId: 'ok' }, 'private/ok/y'), false);
  assert.equal(acl.canWrite({ username: 'u', clientId: 'a/b' }, 'x'), false);
  assert.equal(acl.canRead({ username: 'u', clientId: '#' }, 'x'), false);
});

test('section names are compared exactly: a user literally called "#" gets only its own section', () => {
  const acl = Acl.parse(`
user #
topic read hash-only
user alice smith
topic read spaced
`);
  assert.equal(acl.canRead({ username: '#', clientId: 'c' }, 'hash-only'), true);
  assert.equal(acl.canRead(alice, 'hash-only'), false);
  assert.equal(acl.canRead({ username: 'alice smith', clientId: 'c' }, 'spaced'), true);
  assert.equal(acl.canRead({ username: 'alice', clientId: 'c' }, 'spaced'), false);
});

test('$SYS is readable only with an explicit $SYS rule: # and + do not reach it [MQTT-4.7.2-1]', () => {
  const acl = Acl.parse(`
user alice
topic read #
topic read +/uptime
user admin
topic read $SYS/#
`);
  assert.equal(acl.canRead(alice, 'a/b'), true);
  assert.equal(acl.canRead(alice, '$SYS/broker/uptime'), false);
  assert.equal(acl.canRead(alice, '$SYS/uptime'), false);
  assert.equal(acl.canSubscribe(alice, '$SYS/#'), false);
  assert.equal(acl.canSubscribe(alice, '#'), true);
  const admin = { username: 'admin', clientId: 'c' };
  assert.equal(acl.canRead(admin, '$SYS/broker/uptime'), true);
  assert.equal(acl.canSubscribe(admin, '$SYS/#'), true);
  assert.equal(acl.canSubscribe(admin, '$SYS/broker/+'), true);
});

test('canSubscribe: allowed only when one read grant covers every topic the filter can match', () => {
  const acl = Acl.parse(`
user alice
topic read sensors/#
topic read a/x
topic read a/y
topic write w/#
topic read one/+/temp
`);
  assert.equal(acl.canSubscribe(alice, 'sensors/#'), true);
  assert.equal(acl.canSubscribe(alice, 'sensors'), true, 'sensors/# matches the parent');
  assert.equal(acl.canSubscribe(alice, 'sensors/+/x'), true);
  assert.equal(acl.canSubscribe(alice, '#'), false);
  assert.equal(acl.canSubscribe(alice, '+/#'), false);
  assert.equal(acl.canSubscribe(alice, 'a/x'), true);
  assert.equal(acl.canSubscribe(alice, 'a/+'), false, 'a union of grants is not considered');
  assert.equal(acl.canSubscribe(alice, 'w/#'), false, 'write does not allow subscribing');
  assert.equal(acl.canSubscribe(alice, 'one/+/temp'), true);
  assert.equal(acl.canSubscribe(alice, 'one/5/temp'), true);
  assert.equal(acl.canSubscribe(alice, 'one/#'), false);
  assert.equal(acl.canSubscribe(alice, 'one/+/+'), false);
  assert.equal(acl.canSubscribe(alice, 'sensors/#/x'), false, 'invalid filter');
});

test('canSubscribe: a deny rule that meets any topic of the filter rejects the subscription', () => {
  const acl = Acl.parse(`
user alice
topic read sensors/#
topic deny sensors/secret
topic deny +/private/#
`);
  assert.equal(acl.canSubscribe(alice, 'sensors/#'), false);
  assert.equal(acl.canSubscribe(alice, 'sensors/+'), false);
  assert.equal(acl.canSubscribe(alice, 'sensors/public'), true);
  assert.equal(acl.canSubscribe(alice, 'sensors/public/#'), true);
  assert.equal(acl.canSubscribe(alice, 'sensors/+/x'), false, 'sensors/private/x is denied');
  assert.equal(acl.canSubscribe(alice, 'sensors/public/+'), true);
  assert.equal(acl.canSubscribe(alice, 'sensors/private'), false, 'deny +/private/# matches the parent');
  assert.equal(acl.canRead(alice, 'sensors/other'), true);
});

test('topics are checked as topic names: wildcards or invalid strings are never allowed', () => {
  const acl = Acl.parse('all\ntopic readwrite #');
  assert.equal(acl.canWrite(alice, 'a/+'), false);
  assert.equal(acl.canWrite(alice, 'a/#'), false);
  assert.equal(acl.canWrite(alice, ''), false);
  assert.equal(acl.canWrite(alice, 'a\u0000'), false);
  assert.equal(acl.canWrite(alice, 'a//b'), true);
});

test('parse errors name every bad line and nothing is applied', () => {
  assert.throws(
    () =>
      Acl.parse(
        ['topic read a', 'user', 'user alice', 'topic readd a', 'topic read a/#/b', 'topic read a b', 'frobnicate', 'all x', 'pattern deny ok/%u'].join('\n'),
        'acl',
      ),
    (err: unknown) => {
      assert.ok(err instanceof AclError);
      assert.deepEqual(err.problems, [
        "acl:1: 'topic' before any section: put it under 'anonymous', 'all', 'user <name>' or 'client <id>'",
        "acl:2: 'user' needs a name",
        "acl:4: expected 'topic read|write|readwrite|deny <filter>'",
        "acl:5: 'a/#/b' is not a valid topic filter",
        "acl:6: expected 'topic read <filter>' with a filter without spaces",
        "acl:7: unknown keyword 'frobnicate'",
        "acl:8: 'all' takes no argument",
      ]);
      return true;
    },
  );
});

test('comments, blank lines and CRLF are accepted', () => {
  const acl = Acl.parse('# header\r\n\r\nuser alice\r\n  # indented comment\r\n  topic read x\r\n');
  assert.equal(acl.canRead(alice, 'x'), true);
});

test('property: a granted subscription only matches topics the subject may read', async () => {
  const fc = (await import('fast-check')).default;
  const { topicMatches } = await import('../../../src/protocol/topic.js');
  const word = fc.constantFrom('a', 'b', '$SYS', 'alice');
  const topicArb = fc.array(word, { minLength: 1, maxLength: 3 }).map((l) => l.join('/'));
  const filterLevel = fc.constantFrom('a', 'b', '$SYS', '+', '%u');
  const filterArb = fc
    .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'));
  const ruleArb = fc.tuple(fc.constantFrom('read', 'readwrite', 'deny', 'write'), filterArb, fc.boolean());
  const topics: string[] = [];
  const levels = ['a', 'b', '$SYS', 'alice'];
  for (const x of levels) {
    topics.push(x);
    for (const y of levels) {
      topics.push(`${x}/${y}`);
      for (const z of levels) topics.push(`${x}/${y}/${z}`);
    }
  }
  let granted = 0;
  fc.assert(
    fc.property(fc.array(ruleArb, { maxLength: 5 }), filterArb, (rules, sub) => {
      const text = 'user alice\n' + rules.map(([a, f, pat]) => `${pat ? 'pattern' : 'topic'} ${a} ${f}`).join('\n');
      const acl = Acl.parse(text);
      const filter = sub.replaceAll('%u', 'alice');
      if (!acl.canSubscribe(alice, filter)) return;
      granted++;
      for (const t of topics) {
        if (topicMatches(filter, t)) assert.ok(acl.canRead(alice, t), `${text}\nsub ${filter} leaks ${t}`);
      }
    }),
    { numRuns: 500 },
  );
  assert.ok(granted > 20, `only ${granted} subscriptions were granted: the property tested little`);
});
