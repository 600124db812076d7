import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { IoError } from '../errors.js';
import { loadAcpiSource } from '../host/acpi/source.js';
import { buildGrubImage } from '../host/firmware/grub.js';
import { readFirmware } from '../host/firmware/locate.js';
import { readE820Input, readHostE820 } from '../host/mem/read.js';
import { normalizeE820, type E820Entry, type E820Map } from '../hw/mem/e820.js';
import { selectMap } from '../hw/mem/e820-parse.js';
import { planIdentity } from '../hw/mem/identity.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import { unionRanges } from '../hw/mem/range.js';
import { identityRequestFromPlan } from '../plan/memory.js';
import type { Plan } from '../plan/schema.js';
import { formatSize } from '../util/format.js';
import { ordinaryLayout, type RamLayout } from './guest-memory.js';
import { defaultE820, type MachineConfig } from './machine-config.js';

/** What a plan becomes on the monitor: the machine to build, and the facts a report shows. */
export interface ComposedMachine {
  readonly config: MachineConfig;
  /** The guest's E820 as the plan defines it (what GRUB's lsmmap must show, less firmware's own areas). */
  readonly e820: readonly E820Entry[];
  /** For identity layouts: what the guest may map (BARs are checked against it before mapping). */
  readonly protection: ProtectionMap | undefined;
  /** One line per decision, for the user. */
  readonly summary: readonly string[];
}

function readPlanFile(planFile: string, path: string, at: string): Uint8Array {
  const full = isAbsolute(path) ? path : resolve(dirname(planFile), path);
  try {
    return new Uint8Array(readFileSync(full));
  } catch (err) {
    throw new IoError(`cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: planFile, at }, { cause: err });
  }
}

function hostMap(plan: Plan, planFile: string): { map: E820Map; source: string } {
  const given = plan.machine.hostMap;
  if (given !== undefined) {
    const input = isAbsolute(given) ? given : resolve(dirname(planFile), given);
    return { map: normalizeE820(selectMap(readE820Input(input), input).entries).map, source: input };
  }
  const { result, source } = readHostE820();
  return { map: normalizeE820(selectMap(result, source).entries).map, source };
}

/** Turns a validated plan into the monitor's machine. Reads the files the plan names; nothing else. */
export function composeMachine(plan: Plan, planFile: string): ComposedMachine {
  const summary: string[] = [];
  const m = plan.machine;
  let ram: RamLayout;
  let e820: E820Entry[];
  let protection: ProtectionMap | undefined;
  if (plan.memory.layout === 'identity') {
    const host = hostMap(plan, planFile);
    const carved = planIdentity(host.map, identityRequestFromPlan(plan.memory));
    const guest = carved.guests[0]!;
    ram = { ranges: unionRanges([...guest.lowMemory, ...guest.identity]) };
    e820 = [...guest.e820.entries];
    protection = guest.protection;
    summary.push(
      `memory: identity layout from ${host.source}: ${guest.identity.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`).join(', ')}` +
        ` (host kernel needs ${carved.kernelParams.join(' ')})`,
    );
  } else {
    ram = ordinaryLayout(plan.memory.size);
    e820 = defaultE820(ram);
    summary.push(`memory: ${formatSize(plan.memory.size)} ordinary layout`);
  }

  const firmware =
    m.firmware === undefined
      ? { name: readFirmware('seabios').path, image: readFirmware('seabios').bytes }
      : { name: m.firmware, image: readPlanFile(planFile, m.firmware, 'machine.firmware') };
  summary.push(`firmware: ${firmware.name}`);

  let linuxBoot: MachineConfig['linuxBoot'];
  const optionRom = (): Uint8Array => readFirmware('linuxbootDma').bytes;
  const boot = m.boot;
  if (boot.kind === 'grub-report') {
    linuxBoot = { name: 'GRUB report image', kernel: buildGrubImage(), cmdline: '', optionRom: optionRom() };
    summary.push('boot: GRUB report image (lspci -i, lsmmap, lsacpi, then halt)');
  } else if (boot.kind === 'grub') {
    const modules = [...new Set(['serial', 'terminal', 'terminfo', ...boot.modules])];
    linuxBoot = { name: 'GRUB image', kernel: buildGrubImage(boot.config, modules), cmdline: '', optionRom: optionRom() };
    summary.push(`boot: GRUB image with modules ${modules.join(' ')}`);
  } else {
    linuxBoot = {
      name: boot.kernel,
      kernel: readPlanFile(planFile, boot.kernel, 'machine.boot.kernel'),
      initrd: boot.initrd === undefined ? undefined : readPlanFile(planFile, boot.initrd, 'machine.boot.initrd'),
      cmdline: boot.cmdline,
      optionRom: optionRom(),
    };
    summary.push(`boot: Linux kernel ${boot.kernel}${boot.initrd !== undefined ? ` with ${boot.initrd}` : ''}`);
  }
  let acpiTables: Uint8Array[] | undefined;
  if (m.acpiTables !== undefined) {
    const source = loadAcpiSource(isAbsolute(m.acpiTables) ? m.acpiTables : resolve(dirname(planFile), m.acpiTables));
    acpiTables = source.tables.filter((t) => !['RSDP', 'RSDT', 'XSDT'].includes(t.signature)).map((t) => t.data);
    summary.push(`ACPI: ${acpiTables.length} tables from ${m.acpiTables} (${source.tables.map((t) => t.signature).join(' ')})`);
  }
  return { config: { ram, e820, firmware, linuxBoot, ...(acpiTables === undefined ? {} : { acpiTables }) }, e820, protection, summary };
}
