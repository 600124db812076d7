import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { IoError, UsageError } from '../errors.js';
import { EXPORTERS, exportModel, ExportNotes, ExportStrictError, formatNote, hostPreparation, preparationLines } from '../export/index.js';
import type { HostTarget } from '../export/host-prep.js';
import { readHostFacts, type HostFacts } from '../host/pci/host-facts.js';
import { resolvePlatformInputs } from '../host/plan/inputs.js';
import { loadPlan } from '../plan/schema.js';
import { composeMachine } from '../platform/compose.js';
import { writeOut } from './output.js';

interface ExportOptions {
  to: string;
  out?: string;
  files?: string;
  host?: string;
  strict?: boolean;
  format?: 'args' | 'sh';
}

function writeFile(path: string, data: string | Uint8Array): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
  } catch (err) {
    throw new IoError(`cannot write: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path }, { cause: err });
  }
}

export function registerExport(program: Command): void {
  const targets = [...EXPORTERS.values()];
  program
    .command('export')
    .description(
      'write the plan for an existing hypervisor or fleet engine, from its composed platform: ' +
        targets.map((t) => `${t.target}: ${t.summary}`).join('; ') +
        '. Every part of the plan the target cannot express is printed on stderr with the reason (--strict makes them errors); ' +
        'files the output names (SSDTs, SMBIOS, a GRUB image) go to --files. See docs/export.md.',
    )
    .summary('write the plan for QEMU, libvirt, Xen, KubeVirt or Nova')
    .argument('<plan>', 'the plan (YAML or JSON)')
    .addOption(new Option('--to <target>', 'the target').choices(targets.map((t) => t.target)).makeOptionMandatory())
    .option('--out <FILE>', 'write the export here (default: stdout)')
    .option('--files <DIR>', 'where the files the export names go (default: OUT.files beside --out, else ./<plan name>.<target>.files)')
    .option('--host <facts>', "the host the plan is for, when it is not this machine: a collection from hvmpt collect (archive or folder: its analysis adds the host preparation and warnings), its sysfs tree (/sys, or /sys/bus/pci/devices) or an lspci -xxx dump; the pass-through devices are described from it instead of this machine's sysfs")
    .option('--strict', 'fail (exit 1) when the target cannot express a part of the plan (notes that the target merely differs stay notes)')
    .addOption(new Option('--format <format>', 'qemu only: args (one argument per line) or sh (a runnable script)').choices(['args', 'sh']))
    .action(async (planFile: string, opts: ExportOptions) => {
      const exporter = EXPORTERS.get(opts.to)!;
      if (opts.format !== undefined && opts.to !== 'qemu') throw new UsageError(`--format is for --to qemu (${opts.to} has one form)`);
      const plan = loadPlan(planFile);
      const host: HostFacts | undefined = opts.host === undefined ? undefined : readHostFacts(opts.host);
      const inputs = resolvePlatformInputs(plan, planFile, host === undefined ? {} : { host });
      const composed = composeMachine(plan, inputs);
      const model = exportModel(plan, composed, inputs, host);
      const filesDir = resolve(opts.files ?? (opts.out !== undefined ? `${opts.out}.files` : `${model.name}.${opts.to}.files`));
      const notes = new ExportNotes();
      const result = exporter.run(model, notes, { filesDir, format: opts.format });
      for (const n of notes.all) process.stderr.write(`hvmpt: ${formatNote(opts.to, n)}\n`);
      const prep = hostPreparation(model, opts.to as HostTarget);
      // An argument list has no comments: its host preparation goes to stderr.
      const prepLines = opts.to === 'qemu' && opts.format !== 'sh' ? preparationLines(prep).slice(1).map((l) => l.trim()) : prep.warnings.map((w) => `warning: ${w}`);
      for (const l of prepLines) process.stderr.write(`hvmpt: host: ${l}\n`);
      const cannot = notes.all.filter((n) => n.kind === 'cannot');
      if (opts.strict === true && cannot.length > 0) throw new ExportStrictError(opts.to, planFile, cannot);
      for (const f of result.files) writeFile(join(filesDir, f.name), f.bytes);
      if (result.files.length > 0) process.stderr.write(`hvmpt: wrote ${result.files.map((f) => basename(f.name)).join(', ')} to ${filesDir}\n`);
      if (opts.out === undefined) await writeOut(result.text);
      else writeFile(opts.out, result.text);
    });
}
