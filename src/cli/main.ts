import { Command, CommanderError } from 'commander';
import { HvmptError, UsageError } from '../errors.js';
import { loadCommandGroups, type CommandGroup } from './commands.js';
import { quietStdoutErrors, takeExitStatus } from './output.js';
import { VERSION } from './version.js';

/**
 * Builds the command tree from the groups given (loadCommandGroups). Kept separate from
 * running it so tests can inspect `--help` output and parse arguments without spawning a
 * process.
 */
export function buildProgram(groups: readonly CommandGroup[]): Command {
  const program = new Command('hvmpt')
    .description(
      'HVM PCI pass-through: compose a guest platform (PCI bus, memory map, ACPI, interrupts) ' +
        'around real devices, on machines with or without an IOMMU, and run it on hvmpt\'s KVM monitor.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  for (const register of groups) register(program);
  return program;
}

/** Exit statuses: 0 ok, 1 diagnosed error (bad input), 2 usage, 70 internal bug. */
export async function main(argv: readonly string[]): Promise<number> {
  quietStdoutErrors();
  const program = buildProgram(await loadCommandGroups(argv));
  program.exitOverride();
  for (const sub of allCommands(program)) sub.exitOverride();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return takeExitStatus();
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version surface here as "errors" with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof HvmptError) {
      process.stderr.write(`hvmpt: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    process.stderr.write(`hvmpt: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 70;
  }
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}
