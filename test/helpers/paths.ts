import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hvmptEntry } from '../../src/host/package-root.js';

/** The repository root, found from the compiled test's location (dist/test/...). */
export const REPO_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

/** ../shared/fixtures beside the checkout; tests read fixtures in place, never copies. */
export const FIXTURES: string = resolve(REPO_ROOT, '..', 'shared', 'fixtures');

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

/** The `hvmpt` command as package.json installs it (the one-file bundle), for tests that run it as a user would. */
export const CLI: string = hvmptEntry(import.meta.url);
