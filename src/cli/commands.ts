import type { Command } from 'commander';

/**
 * Each command group lives in its own module under cli/ and registers itself here; adding a
 * group is one entry. A group is loaded only when its command runs (or for the whole help):
 * `hvmpt analyze` need not load the monitor, the plan schema or the YAML parser to start.
 */
export type CommandGroup = (program: Command) => void;

export interface CommandGroupEntry {
  /** The top-level command names the group registers. */
  readonly commands: readonly string[];
  readonly load: () => Promise<CommandGroup>;
}

export const COMMAND_GROUPS: readonly CommandGroupEntry[] = [
  { commands: ['doctor'], load: async () => (await import('./doctor.js')).registerDoctor },
  { commands: ['e820'], load: async () => (await import('./e820.js')).registerE820 },
  { commands: ['acpi'], load: async () => (await import('./acpi.js')).registerAcpi },
  { commands: ['pci'], load: async () => (await import('./pci.js')).registerPci },
  { commands: ['run'], load: async () => (await import('./run.js')).registerRun },
  { commands: ['ctl'], load: async () => (await import('./ctl.js')).registerCtl },
  { commands: ['lab'], load: async () => (await import('./lab.js')).registerLab },
  { commands: ['bind', 'unbind'], load: async () => (await import('./bind.js')).registerBind },
  { commands: ['collect', 'snapshot', 'analyze'], load: async () => (await import('./facts.js')).registerFacts },
  { commands: ['plan'], load: async () => (await import('./plan-from.js')).registerPlanFrom },
  { commands: ['export'], load: async () => (await import('./export.js')).registerExport },
  { commands: ['report'], load: async () => (await import('./report.js')).registerReport },
  { commands: ['serve-device'], load: async () => (await import('./serve-device.js')).registerServeDevice },
];

/** The groups a command line needs: the one its first word names, or all of them (help, version, a typo). */
export async function loadCommandGroups(argv: readonly string[]): Promise<CommandGroup[]> {
  const first = argv[0];
  const hit = COMMAND_GROUPS.find((g) => first !== undefined && g.commands.includes(first));
  return Promise.all((hit === undefined ? COMMAND_GROUPS : [hit]).map((g) => g.load()));
}
