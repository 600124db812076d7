import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { InputError, UsageError } from '../errors.js';
import { passPlan, twinPlan, type GeneratedPlan } from '../host/facts/plan.js';
import { loadCapture } from '../host/pci/load.js';
import { isFactsCollection } from '../host/pci/host-facts.js';
import { loadPlan } from '../plan/schema.js';
import { analyzeSnapshot, loadSnapshot, parseDeviceList, parseMemoryOption } from './facts-analysis.js';
import { DEFAULT_GUEST_MEMORY } from './facts.js';
import { writeOut } from './output.js';

/** The files a generated plan names, written where the plan's own directory will be. */
export function writePlanFiles(g: GeneratedPlan, planDir: string): void {
  for (const f of g.files) {
    const path = join(planDir, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.bytes);
  }
}

/** The plan as YAML, its differences and summary as comments above it. */
export function planText(g: GeneratedPlan, command: string): string {
  const head = [`# ${command}`, '#', ...g.summary.map((l) => `# ${l}`)];
  if (g.differences.length > 0) {
    head.push('#', '# Differences from the real machine:');
    for (const d of g.differences) head.push(`# - ${d.what}: ${d.why}`);
  }
  return `${head.join('\n')}\n${toYaml(g.plan, { lineWidth: 0 })}`;
}

interface PlanOptions {
  from: string;
  p2v?: boolean;
  twin?: boolean;
  keep?: string;
  pass?: string;
  out?: string;
  memory: string;
}

function makePlan(opts: PlanOptions, planBase: string, planDir: string): GeneratedPlan {
  const memory = parseMemoryOption(opts.memory);
  if (opts.twin === true) {
    if (opts.p2v === true || opts.keep !== undefined || opts.pass !== undefined) throw new UsageError('--twin replays every function: it takes no --p2v, --keep or --pass');
    if (isFactsCollection(opts.from)) {
      const s = loadSnapshot(opts.from);
      if (s.pci.capture === undefined) throw new InputError('holds no PCI config space to replay', { input: opts.from });
      return twinPlan({ capture: s.pci.capture, snapshot: s, captureFile: undefined, memory, planBase });
    }
    const capture = loadCapture(opts.from);
    return twinPlan({ capture, snapshot: undefined, captureFile: relative(planDir, resolve(opts.from)), memory, planBase });
  }
  const s = loadSnapshot(opts.from);
  const keep = opts.keep === undefined ? [] : parseDeviceList(opts.keep, '--keep');
  const pass = opts.pass === undefined ? undefined : parseDeviceList(opts.pass, '--pass');
  const analysis = analyzeSnapshot(s, { memory });
  return passPlan({ snapshot: s, analysis, p2v: opts.p2v === true, pass, keep, memory, planBase });
}

export function registerPlanFrom(program: Command): void {
  program
    .command('plan')
    .description(
      'write a plan from a collection that hvmpt run takes as it is: the devices the host can spare passed through ' +
        '(back-ends from the analysis), identity memory when there is no IOMMU, what the host keeps hidden, and ' +
        'generated ACPI tables; --p2v reproduces the machine (its topology, and its own ACPI tables with what the host ' +
        'keeps hidden) and lists every difference from it; --twin replays a captured machine (a collection or an lspci ' +
        'dump) whose hardware you do not have. Files the plan names are written beside it in PLAN.files/.',
    )
    .summary('write a plan from a collection: pass-through, P2V, or the hardware twin')
    .requiredOption('--from <archive>', 'a collection from hvmpt collect; with --twin also an lspci -xxxx dump or a sysfs tree')
    .option('--p2v', 'reproduce the machine as closely as the analysis allows, passing everything the host does not need')
    .option('--twin', 'the hardware twin: every captured function replayed, its E820 and ACPI tables')
    .option('--keep <bdf,...>', 'functions the host keeps (hidden from the guest)')
    .option('--pass <bdf,...>', 'pass exactly these functions')
    .option('--out <plan.yaml>', 'where to write the plan (its files go to PLAN.files/ beside it); default standard output')
    .option('--memory <size>', 'the guest\'s RAM', DEFAULT_GUEST_MEMORY)
    .action(async (opts: PlanOptions) => {
      const out = opts.out === undefined ? undefined : resolve(opts.out);
      const planDir = out === undefined ? process.cwd() : dirname(out);
      const g = makePlan(opts, out === undefined ? 'plan.yaml' : basename(out), planDir);
      const command = `hvmpt plan --from ${opts.from}${opts.p2v === true ? ' --p2v' : ''}${opts.twin === true ? ' --twin' : ''}${opts.keep !== undefined ? ` --keep ${opts.keep}` : ''}${opts.pass !== undefined ? ` --pass ${opts.pass}` : ''}`;
      const text = planText(g, command);
      if (out === undefined) {
        if (g.files.length > 0) throw new UsageError(`this plan names ${g.files.length} files (${g.files[0]!.path}, …) written beside it: give --out plan.yaml`);
        return writeOut(text);
      }
      writePlanFiles(g, planDir);
      writeFileSync(out, text);
      loadPlan(out);
      process.stderr.write(`hvmpt plan: wrote ${out}${g.files.length > 0 ? ` and ${g.files.length} files in ${join(dirname(out), g.files[0]!.path.split('/')[0]!)}` : ''}\n`);
      for (const l of g.summary) process.stderr.write(`  ${l}\n`);
      if (g.differences.length > 0) process.stderr.write(`  ${g.differences.length} differences from the real machine (listed at the top of the plan)\n`);
    });
}
