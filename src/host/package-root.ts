import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * hvmpt's own checkout or install: the first directory holding a package.json above `from`
 * (a module's import.meta.url). Found by walking up, so it holds from dist/src/… and from the
 * one-file bundle in dist/ alike; undefined when there is none.
 */
export function packageRoot(from: string): string | undefined {
  let dir = dirname(fileURLToPath(from));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
  return dir;
}

/** The `hvmpt` command this package installs (package.json's bin), absolute; for running hvmpt again, e.g. inside a lab host. */
export function hvmptEntry(from: string): string {
  const root = packageRoot(from);
  if (root === undefined) throw new Error(`no package.json above ${from}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
  const bin = pkg.bin?.['hvmpt'];
  if (bin === undefined) throw new Error(`${join(root, 'package.json')} has no bin.hvmpt`);
  return join(root, bin);
}
