import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../host/package-root.js';

/** Read from package.json at run time so the two never disagree. */
export const VERSION: string = (() => {
  const root = packageRoot(import.meta.url);
  const pkg: unknown = root === undefined ? undefined : JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string'
    ? pkg.version
    : '0.0.0';
})();
