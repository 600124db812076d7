import { runNamed } from '../tools/run-named.js';

/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts. Each benchmark prints one
 * `name: value` line per figure, its peer's figure and the ratio measured in the same run.
 */
await runNamed(import.meta.url, { command: 'bench', noun: 'benchmark' }, process.argv.slice(2));
