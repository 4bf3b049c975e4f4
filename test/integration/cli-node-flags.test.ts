/**
 * The `telemq` command starts Node through its shebang with flags of its own (see src/cli/main.ts). A flag this Node
 * rejects would make every command fail at once, so the shebang is checked against the running Node.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cliMain } from './broker-cli-process.js';

test('the telemq shebang runs this Node with its flags, and they take effect', () => {
  const first = readFileSync(cliMain, 'utf8').split('\n')[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S (node(?: --[a-z-]+=\d+)*)$/.exec(first);
  assert.ok(match, `unexpected shebang: ${first}`);
  const [, ...flags] = (match[1] as string).split(' ');
  assert.deepEqual(flags, ['--max-semi-space-size=2']);
  // What env -S runs: this Node with those flags. Allocate enough to grow the young generation as far as it may.
  const script = `
    const v8 = require('node:v8');
    let keep = [];
    for (let i = 0; i < 200000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 50000) keep = []; }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(JSON.stringify({ execArgv: process.execArgv, newSpace: ns.space_size }));`;
  const out = JSON.parse(execFileSync('/usr/bin/env', ['-S', `${process.execPath} ${flags.join(' ')}`, '-e', script], { encoding: 'utf8' })) as {
    execArgv: string[];
    newSpace: number;
  };
  assert.deepEqual(out.execArgv.slice(0, flags.length), flags);
  // Two semi-spaces of at most 2 MB each (V8's default would let them grow to 16 MB each).
  assert.ok(out.newSpace <= 4 * 1024 * 1024 + 256 * 1024, `new space ${out.newSpace} bytes`);
});
