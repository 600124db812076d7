import type { Command } from 'commander';
import { checkEnvironment } from '../host/environment.js';
import { writeJson, writeOut } from './output.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('report what this machine offers hvmpt (KVM, IOMMU, firmware, checking tools); changes nothing')
    .option('--json', 'print the findings as JSON')
    .action(async (opts: { json?: boolean }) => {
      const checks = checkEnvironment();
      if (opts.json) return writeJson({ checks });
      const width = Math.max(...checks.map((c) => c.name.length));
      await writeOut(
        checks
          .map((c) => `${c.ok ? 'ok     ' : 'missing'}  ${c.name.padEnd(width)}  ${c.detail}  [${c.neededFor}]`)
          .join('\n') + '\n',
      );
    });
}
