import { Command, CommanderError } from 'commander';
import { HvmptError } from '../errors.js';
import { COMMAND_GROUPS } from './commands.js';
import { VERSION } from './version.js';

/**
 * Builds the command tree. Kept separate from running it so tests can inspect
 * `--help` output and parse arguments without spawning a process.
 */
export function buildProgram(): Command {
  const program = new Command('hvmpt')
    .description(
      'HVM PCI pass-through: compose a guest platform (PCI bus, memory map, ACPI, interrupts) ' +
        'around real devices, on machines with or without an IOMMU, and run it on hvmpt\'s KVM monitor.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  for (const register of COMMAND_GROUPS) register(program);
  return program;
}

/** Exit statuses: 0 ok, 1 diagnosed error (bad input), 2 usage, 70 internal bug. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  for (const sub of allCommands(program)) sub.exitOverride();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version surface here as "errors" with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof HvmptError) {
      process.stderr.write(`hvmpt: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`hvmpt: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 70;
  }
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}
