import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts. Each benchmark prints one
 * `name: value` line per figure, its peer's figure and the ratio measured in the same run.
 */
interface BenchModule {
  main(args: readonly string[]): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || !available.includes(name)) {
  process.stderr.write(
    `usage: npm run bench -- <name> [args]\n${name === undefined ? '' : `unknown benchmark: ${name}\n`}available: ${available.join(', ') || '(none)'}\n`,
  );
  process.exitCode = 2;
} else {
  const mod = (await import(`./${name}.js`)) as BenchModule;
  await mod.main(rest);
}
