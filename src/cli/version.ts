import { readFileSync } from 'node:fs';

/** Read from package.json at run time so the two never disagree. */
export const VERSION: string = (() => {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string'
    ? pkg.version
    : '0.0.0';
})();
