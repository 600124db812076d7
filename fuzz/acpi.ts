import { option } from './_acpi-campaign.js';
import { main as tablesMain } from './acpi-tables.js';
import { main as amlMain } from './aml.js';
import { main as worldMain } from './acpi-world.js';

/**
 * `npm run fuzz -- acpi [--cases N] [--seed S]`: the whole ACPI campaign, one target after the
 * other, N mutations each (100 000 by default): the table readers and codec (acpi-tables), the
 * AML parser, encoder, namespace and resource codec (aml), and the world view (acpi-world:
 * loading, AML summaries, rules, the generator). Exits 1 when any target finds a crash or a hang.
 * About 25 minutes with the defaults on this 2-core machine (the world view takes most); each target runs alone with its
 * own name.
 */
export async function main(args: readonly string[]): Promise<void> {
  const cases = option(args, '--cases') ?? '100000';
  const seed = option(args, '--seed') ?? '1';
  let failed = false;
  const targets: ReadonlyArray<readonly [string, () => Promise<void>]> = [
    ['acpi-tables', () => tablesMain(['--cases', cases, '--seed', seed])],
    ['aml', () => amlMain(['--iterations', cases, '--seed', seed])],
    ['acpi-world', () => worldMain(['--cases', cases, '--seed', seed])],
  ];
  for (const [name, run] of targets) {
    process.stdout.write(`\n== ${name} ==\n`);
    process.exitCode = 0;
    await run();
    if (process.exitCode !== 0) failed = true;
  }
  process.stdout.write(`\nacpi campaign: ${targets.length} targets, ${cases} mutations each: ${failed ? 'FINDINGS (see above)' : 'no crash, no hang'}\n`);
  process.exitCode = failed ? 1 : 0;
}
