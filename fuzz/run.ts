import { runNamed } from '../tools/run-named.js';

/**
 * `npm run fuzz -- <name> [args]` runs fuzz/<name>.ts: mutations of real fixtures fed to a
 * parser, which must end in a value or one of its typed errors, never a crash or a hang.
 */
await runNamed(import.meta.url, { command: 'fuzz', noun: 'fuzz target' }, process.argv.slice(2));
