import type { Command } from 'commander';
import { registerAcpi } from './acpi.js';
import { registerDoctor } from './doctor.js';
import { registerE820 } from './e820.js';
import { registerPci } from './pci.js';
import { registerRun } from './run.js';

/**
 * Each command group lives in its own module under cli/ and registers itself here;
 * adding a group is one line.
 */
export type CommandGroup = (program: Command) => void;

export const COMMAND_GROUPS: readonly CommandGroup[] = [registerDoctor, registerE820, registerAcpi, registerPci, registerRun];
