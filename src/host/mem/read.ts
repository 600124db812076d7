/**
 * Reading E820 maps from this machine or from files, read-only. /sys/firmware/memmap is the
 * firmware's map as the kernel received it (before memmap= edits); /proc/iomem is the kernel's
 * current view, whose addresses only root can see.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IoError } from '../../errors.js';
import { parseE820Text, parseSysfsMemmap, type ParseResult, type SysfsMemmapRecord } from '../../hw/mem/e820-parse.js';
import { readInputText, STDIN } from '../../plan/input.js';

export const SYSFS_MEMMAP = '/sys/firmware/memmap';
export const PROC_IOMEM = '/proc/iomem';

function readOptional(path: string): string | undefined {
  try {
    return readInputText(path, 'e820').trim();
  } catch (err) {
    if (err instanceof IoError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads a /sys/firmware/memmap-style directory (one numbered folder per entry, each with start, end, type). */
export function readSysfsMemmap(dir: string = SYSFS_MEMMAP): ParseResult {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^\d+$/.test(n));
  } catch (err) {
    throw new IoError(`cannot list: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: dir }, { cause: err });
  }
  const records: SysfsMemmapRecord[] = names.map((name) => ({
    name,
    start: readOptional(join(dir, name, 'start')),
    end: readOptional(join(dir, name, 'end')),
    type: readOptional(join(dir, name, 'type')),
  }));
  return { maps: [parseSysfsMemmap(records, dir)], notes: [] };
}

/**
 * Reads an E820 input as the CLI names it: `-` for standard input, a directory for a memmap
 * tree, anything else a file in one of the text formats e820-parse understands.
 */
export function readE820Input(input: string): ParseResult {
  if (input === STDIN) return parseE820Text(readInputText(STDIN, 'e820'), '<stdin>');
  let isDir: boolean;
  try {
    isDir = statSync(input).isDirectory();
  } catch (err) {
    throw new IoError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input }, { cause: err });
  }
  if (isDir) return readSysfsMemmap(input);
  return parseE820Text(readInputText(input, 'e820'), input);
}

/**
 * This machine's map as firmware gave it: /sys/firmware/memmap when the kernel has it (it is
 * the map before memmap= edits), else the top level of /proc/iomem (the kernel's current view,
 * readable only by root). `source` says which was read.
 */
export function readHostE820(): { readonly result: ParseResult; readonly source: string } {
  if (existsSync(SYSFS_MEMMAP) && readdirSync(SYSFS_MEMMAP).length > 0) return { result: readSysfsMemmap(), source: SYSFS_MEMMAP };
  return { result: readE820Input(PROC_IOMEM), source: PROC_IOMEM };
}
