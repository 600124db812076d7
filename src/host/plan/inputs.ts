/**
 * The edge of composition: reads what a plan needs from this machine and the files it names,
 * so src/platform can compose without I/O.
 */
import { readFileSync } from 'node:fs';
import { buildGrubImage } from '../firmware/grub.js';
import { readFirmware } from '../firmware/locate.js';
import { ensureDebianKernel, GuestSetupError } from '../guest/kernel.js';
import { initrdPathConflict } from '../guest/initramfs.js';
import { buildProbeInitrd, PROBE_CMDLINE } from '../guest/probe.js';
import { readHostE820 } from '../mem/read.js';
import { loadPlan, type Plan } from '../../plan/schema.js';
import { composeMachine, type ComposedMachine } from '../../platform/compose.js';
import type { PlanFiles } from '../../plan/files.js';
import type { BootImage, PassthroughInput, PlatformInputs } from '../../platform/inputs.js';
import type { PluginInput } from '../../platform/plugins.js';
import { HvmptError } from '../../errors.js';
import { PlanError, type PlanProblem } from '../../plan/load.js';
import { requireHostFunction, type HostFacts } from '../pci/host-facts.js';
import { findHostFunction, readHostFunction, SYSFS_ROOT } from '../pci/live.js';
import { resolvePlanFiles } from './files.js';

function bootImage(plan: Plan, planFile: string, files: PlanFiles): BootImage | undefined {
  const boot = plan.machine.boot;
  switch (boot.kind) {
    case 'disk':
      return undefined;
    case 'grub-report':
      return { name: 'GRUB report image', kernel: buildGrubImage(), cmdline: '', summary: 'boot: GRUB report image (lspci -i, lsmmap, lsacpi, then halt)' };
    case 'grub': {
      const modules = [...new Set(['serial', 'terminal', 'terminfo', ...boot.modules])];
      return { name: 'GRUB image', kernel: buildGrubImage(boot.config, modules), cmdline: '', summary: `boot: GRUB image with modules ${modules.join(' ')}` };
    }
    case 'linux':
      return {
        name: boot.kernel,
        kernel: files.bytes('machine.boot.kernel').bytes,
        ...(boot.initrd === undefined ? {} : { initrd: files.bytes('machine.boot.initrd').bytes }),
        cmdline: boot.cmdline,
        summary: `boot: Linux kernel ${boot.kernel}${boot.initrd !== undefined ? ` with ${boot.initrd}` : ''}`,
      };
    case 'probe': {
      // Debian's kernel from the guest harness's cache (fetched on first use) and an initrd built now.
      const clashes = boot.files.flatMap((f, i) => {
        const why = initrdPathConflict(f.path);
        return why === undefined ? [] : [{ path: `machine.boot.files[${i}].path`, message: why }];
      });
      if (clashes.length > 0) throw new PlanError(planFile, clashes);
      let initrd: Uint8Array;
      let kernel: ReturnType<typeof ensureDebianKernel>;
      try {
        kernel = ensureDebianKernel((m) => process.stderr.write(`hvmpt: ${m}\n`));
        const extra = boot.files.map((f, i) => ({ path: f.path, data: files.bytes(`machine.boot.files[${i}].file`).bytes }));
        initrd = buildProbeInitrd({ kernel, script: boot.script, modules: boot.modules, report: boot.report, files: extra });
      } catch (err) {
        if (err instanceof GuestSetupError) throw new PlanError(planFile, [{ path: /module/.test(err.detail) ? 'machine.boot.modules' : 'machine.boot', message: err.detail }]);
        throw err;
      }
      const cmdline = [PROBE_CMDLINE, boot.cmdline].filter((p) => p !== '').join(' ');
      return {
        name: `probe (Debian ${kernel.release})`,
        kernel: new Uint8Array(readFileSync(kernel.vmlinuz)),
        initrd,
        cmdline,
        summary: `boot: probe guest, Debian kernel ${kernel.release}${boot.modules.length > 0 ? ` with ${boot.modules.join(' ')}` : ''}, cmdline ${cmdline}`,
      };
    }
  }
}

export interface ResolveOptions {
  /** Where this machine's sysfs is (tests point it at a tree of their own). */
  readonly sysfsRoot?: string;
  /** `pci.plugins`, resolved by the plug-in layer (src/plugin/load.ts). */
  readonly plugins?: readonly PluginInput[];
  /**
   * Another host's facts to find the pass-through devices in instead of this machine's sysfs:
   * an export or a report of a plan for that host.
   */
  readonly host?: HostFacts;
}

/** The host function each `pci.passthrough` entry names, read from sysfs; problems by plan path. */
export function resolvePassthrough(plan: Plan, options: ResolveOptions, problems: PlanProblem[]): PassthroughInput[] {
  const out: PassthroughInput[] = [];
  const root = options.sysfsRoot ?? SYSFS_ROOT;
  (plan.pci?.passthrough ?? []).forEach((entry, i) => {
    try {
      out.push({ host: options.host !== undefined ? requireHostFunction(options.host, entry.host) : readHostFunction(findHostFunction(entry.host, root), root) });
    } catch (err) {
      if (!(err instanceof HvmptError)) throw err;
      problems.push({ path: `pci.passthrough[${i}].host`, message: err.message });
    }
  });
  return out;
}

/**
 * Reads every input of `plan`: the files it names, the host functions it passes through, the
 * firmware and boot image. One PlanError lists every problem, by plan path.
 */
export function resolvePlatformInputs(plan: Plan, planFile: string, options: ResolveOptions = {}): PlatformInputs {
  const problems: PlanProblem[] = [];
  let files: PlanFiles | undefined;
  try {
    files = resolvePlanFiles(plan, planFile);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    problems.push(...err.problems);
  }
  const passthrough = resolvePassthrough(plan, options, problems);
  if (files === undefined || problems.length > 0) throw new PlanError(planFile, problems);
  const firmware = files.has('machine.firmware')
    ? { name: plan.machine.firmware!, image: files.bytes('machine.firmware').bytes }
    : (({ path, bytes }) => ({ name: path, image: bytes }))(readFirmware('seabios'));
  let hostMap: PlatformInputs['hostMap'];
  if (plan.memory.layout === 'identity') {
    if (files.has('machine.hostMap')) {
      const f = files.e820('machine.hostMap');
      hostMap = { result: f.result, source: f.path };
    } else {
      hostMap = { ...readHostE820(), live: true };
    }
  }
  return {
    planFile,
    files,
    firmware,
    linuxbootRom: readFirmware('linuxbootDma').bytes,
    ...(((b) => (b === undefined ? {} : { boot: b }))(bootImage(plan, planFile, files))),
    passthrough,
    ...(options.plugins === undefined ? {} : { plugins: options.plugins }),
    ...(hostMap === undefined ? {} : { hostMap }),
  };
}

/** Loads a plan file (or takes the plan already loaded from it), reads its inputs and composes the machine. */
export function composePlanFile(planFile: string, plan: Plan = loadPlan(planFile), options: ResolveOptions = {}): ComposedMachine {
  return composeMachine(plan, resolvePlatformInputs(plan, planFile, options));
}
