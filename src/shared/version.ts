import { existsSync, readFileSync } from 'node:fs';

// The compiled file sits at dist/shared/ or build/src/shared/: walk up to the package's own package.json.
function findPackageJson(): URL {
  for (const rel of ['../../package.json', '../../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) return url;
  }
  throw new Error('telemq: package.json not found beside the compiled code');
}

const pkg = JSON.parse(readFileSync(findPackageJson(), 'utf8')) as { version: string };
export const version: string = pkg.version;
