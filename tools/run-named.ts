import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

/** A benchmark or fuzz target: a module whose `main` takes the remaining arguments. */
export interface NamedModule {
  main(args: readonly string[]): Promise<void>;
}

/**
 * `npm run bench|fuzz -- <name> [args]`: runs <dir>/<name>.js, listing what is available when
 * the name is missing or unknown. Helper files start with `_` and are not listed.
 */
export async function runNamed(entryUrl: string, what: { command: string; noun: string }, argv: readonly string[]): Promise<void> {
  const here = dirname(fileURLToPath(entryUrl));
  const available = readdirSync(here)
    .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
  const [name, ...rest] = argv;
  if (name === undefined || !available.includes(name)) {
    process.stderr.write(
      `usage: npm run ${what.command} -- <name> [args]\n${name === undefined ? '' : `unknown ${what.noun}: ${name}\n`}available: ${available.join(', ') || '(none)'}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const mod = (await import(pathToFileURL(join(here, `${name}.js`)).href)) as NamedModule;
  await mod.main(rest);
}
