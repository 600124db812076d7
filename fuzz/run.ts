import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm run fuzz -- <name> [args]` runs fuzz/<name>.ts: mutations of real fixtures fed to a
 * parser, which must end in a value or one of its typed errors, never a crash or a hang.
 */
interface FuzzModule {
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
    `usage: npm run fuzz -- <name> [args]\n${name === undefined ? '' : `unknown fuzz target: ${name}\n`}available: ${available.join(', ') || '(none)'}\n`,
  );
  process.exitCode = 2;
} else {
  const mod = (await import(`./${name}.js`)) as FuzzModule;
  await mod.main(rest);
}
