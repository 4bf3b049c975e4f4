import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// Runs from build/test/arch (compiled) or test/arch (tsx): the repository root is three levels up from build, two from test.
const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(`${join('build', 'test')}`) ? resolve(here, '../../..') : resolve(here, '../..');
const srcDir = join(root, 'src');

/** Which top-level folders under src/ each folder may import from. */
const allowed: Record<string, readonly string[]> = {
  shared: ['shared'],
  protocol: ['protocol', 'shared'],
  broker: ['broker', 'protocol', 'shared'],
  client: ['client', 'protocol', 'shared'],
  cli: ['cli', 'client', 'broker', 'protocol', 'shared'],
  'console-server': ['console-server', 'broker', 'protocol', 'shared'],
};

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

const importPattern = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

test('the dependency rule: protocol <- broker <- cli/console-server, protocol <- client <- cli', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(srcDir)) {
    const layer = relative(srcDir, file).split(/[\\/]/)[0] ?? '';
    const may = allowed[layer];
    assert.ok(may, `unknown source folder src/${layer}`);
    for (const match of readFileSync(file, 'utf8').matchAll(importPattern)) {
      const spec = match[1] ?? match[2] ?? '';
      if (!spec.startsWith('.')) {
        if (layer === 'protocol' && !spec.startsWith('node:buffer')) {
          // The codec is pure: no sockets, files, timers or third-party packages.
          violations.push(`${relative(root, file)} imports ${spec}`);
        }
        continue;
      }
      const target = relative(srcDir, resolve(dirname(file), spec)).split(/[\\/]/)[0] ?? '';
      if (!may.includes(target)) violations.push(`${relative(root, file)} (${layer}) imports ${target}: ${spec}`);
    }
  }
  assert.deepEqual(violations, []);
});
