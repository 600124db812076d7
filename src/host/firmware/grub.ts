import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { firmwarePath, readFirmware } from './locate.js';

/** grub-mkimage failed or is missing. */
export class GrubBuildError extends HvmptError {}

/** Printed by the report config before and after its listings, so readers can find them. */
export const GRUB_BEGIN_MARK = 'hvmpt-grub-begin';
/** Printed before the SMBIOS lines: system manufacturer, product, serial and UUID (type 1). */
export const GRUB_SMBIOS_MARK = 'hvmpt-grub-smbios';
export const GRUB_END_MARK = 'hvmpt-grub-end';

/**
 * The embedded config of the acceptance image: everything to COM1, the listings the
 * end-to-end test compares with the plan (PCI with BARs, the E820 map, the ACPI tables, the
 * SMBIOS system strings), then power off through ACPI (GRUB's halt parses the DSDT's \_S5
 * and writes PM1a_CNT).
 */
export const REPORT_CONFIG = [
  'serial --unit=0 --speed=115200',
  'terminal_input serial',
  'terminal_output serial',
  `echo ${GRUB_BEGIN_MARK}`,
  'lspci -i',
  'lsmmap',
  'lsacpi',
  `echo ${GRUB_SMBIOS_MARK}`,
  'smbios --type 1 --get-string 4',
  'smbios --type 1 --get-string 5',
  'smbios --type 1 --get-string 7',
  'smbios --type 1 --get-uuid 8',
  // The processor: core count and thread count (SMBIOS 2.5+ type 4 bytes 0x23 and 0x25).
  'smbios --type 4 --get-byte 0x23',
  'smbios --type 4 --get-byte 0x25',
  `echo ${GRUB_END_MARK}`,
  'halt',
].join('\n');

const REPORT_MODULES = ['serial', 'terminal', 'terminfo', 'echo', 'lspci', 'lsmmap', 'lsacpi', 'smbios', 'halt'] as const;

/**
 * Builds a GRUB i386-pc core image with `config` embedded and puts lnxboot.img in front, so it
 * carries a Linux boot-protocol header and loads like a kernel through fw_cfg (QEMU -kernel or
 * hvmpt's linuxboot path). Needs grub-mkimage (grub-common) and the i386-pc modules (grub-pc-bin).
 */
export function buildGrubImage(config: string = REPORT_CONFIG, modules: readonly string[] = REPORT_MODULES): Uint8Array {
  // One grub-mkimage run per image a process needs: a run that boots again, or a fuzzer
  // composing thousands of plans, asks for the same one each time.
  const key = `${modules.join(' ')}\n${config}`;
  let image = BUILT.get(key);
  if (image === undefined) {
    image = cachedGrubImage(key, config, modules);
    BUILT.set(key, image);
  }
  return image.slice();
}

/**
 * Where built images are kept between processes: $HVMPT_GRUB_CACHE, or hvmpt/grub under
 * $XDG_CACHE_HOME (~/.cache). A lab host sees this machine's cache read-only, so an image the
 * run outside built before starting the lab is not built again under TCG.
 */
function grubCacheDir(): string {
  const explicit = process.env['HVMPT_GRUB_CACHE'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'hvmpt', 'grub');
}

/**
 * The cache key: the image's inputs (`inputs`, its modules and config) and the GRUB it is built
 * from (kernel.img, moddep.lst and lnxboot, by size and time), so an upgraded grub-pc-bin builds
 * afresh.
 */
function cacheKey(inputs: string): string | undefined {
  const h = createHash('sha256').update(`${inputs}\n`);
  try {
    const moduleDir = firmwarePath('grubModules');
    for (const f of [join(moduleDir, 'kernel.img'), join(moduleDir, 'moddep.lst'), firmwarePath('lnxboot')]) {
      const st = statSync(f);
      h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
    }
  } catch {
    // A missing GRUB is makeGrubImage's to report, with the package to install.
    return undefined;
  }
  return h.digest('hex');
}

/**
 * mkdir -p one level at a time: node's recursive mkdir loops without end where a parent refuses
 * creation oddly (seen under /proc), and a lab host's read-only view of this machine must fail
 * at once.
 */
function makeDirs(dir: string): void {
  const parent = dirname(dir);
  if (parent !== dir && !existsSync(parent)) makeDirs(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function cachedGrubImage(inputs: string, config: string, modules: readonly string[]): Uint8Array {
  const key = cacheKey(inputs);
  const dir = grubCacheDir();
  const file = key === undefined ? undefined : join(dir, `${key}.img`);
  if (file !== undefined) {
    try {
      const bytes = readFileSync(file);
      // lnxboot's header says 'HdrS' at 0x202: a cut or foreign file is built again.
      if (bytes.length > 0x206 && bytes.toString('latin1', 0x202, 0x206) === 'HdrS') return new Uint8Array(bytes);
    } catch {
      // Not built yet.
    }
  }
  const image = makeGrubImage(config, modules);
  if (file !== undefined) {
    // Best effort: a read-only cache (a lab host's view of this machine) just builds each time.
    try {
      makeDirs(dir);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, image);
      renameSync(tmp, file);
    } catch {
      // Kept in this process only.
    }
  }
  return image;
}

const BUILT = new Map<string, Uint8Array>();

function makeGrubImage(config: string, modules: readonly string[]): Uint8Array {
  const moduleDir = firmwarePath('grubModules');
  const lnxboot = readFirmware('lnxboot').bytes;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-grub-'));
  try {
    const cfg = join(dir, 'embed.cfg');
    const core = join(dir, 'core.img');
    writeFileSync(cfg, config + '\n');
    const r = spawnSync('grub-mkimage', ['-O', 'i386-pc', '-d', moduleDir, '-p', '(memdisk)/boot/grub', '-c', cfg, '-o', core, ...modules], { encoding: 'utf8' });
    if (r.error !== undefined) throw new GrubBuildError(`cannot run: ${r.error.message} (Debian package grub-common)`, { input: 'grub-mkimage' });
    if (r.status !== 0) throw new GrubBuildError(`exited ${r.status}: ${r.stderr.trim()}`, { input: 'grub-mkimage' });
    const coreBytes = readFileSync(core);
    const image = new Uint8Array(lnxboot.length + coreBytes.length);
    image.set(lnxboot, 0);
    image.set(coreBytes, lnxboot.length);
    return image;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
