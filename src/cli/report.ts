import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { IoError, UsageError } from '../errors.js';
import { isFactsCollection, readHostFacts } from '../host/pci/host-facts.js';
import { collectionAnalysis, hostFactsOfSnapshot } from '../host/facts/host-facts.js';
import { passPlan } from '../host/facts/plan.js';
import { formatBdf } from '../hw/pci/address.js';
import { analyzeSnapshot, loadSnapshot, parseMemoryOption } from './facts-analysis.js';
import { DEFAULT_GUEST_MEMORY } from './facts.js';
import { planText, writePlanFiles } from './plan-from.js';
import { ramTotal } from '../hw/mem/ram-layout.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { resolvePlatformInputs } from '../host/plan/inputs.js';
import { composeMachine } from '../platform/compose.js';
import { loadStructuredFile } from '../plan/load.js';
import { loadPlan } from '../plan/schema.js';
import { renderReport } from '../report/html.js';
import { runRecordSchema, type RunRecord } from '../report/run-record.js';

interface ReportOptions {
  out: string;
  host?: string;
  run?: string;
  memory: string;
}

export function writeReport(file: string, html: string): void {
  try {
    writeFileSync(file, html);
  } catch (err) {
    throw new IoError(`cannot write: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: file }, { cause: err });
  }
}

export function readRunRecord(file: string): RunRecord {
  return loadStructuredFile(runRecordSchema, file);
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'write one self-contained HTML page (no network use) showing the platform a plan composes: an SVG memory map (host and guest side by side: ' +
        'identity RAM, holes, ECAM, PCI windows, BARs, the carve), an SVG PCI tree (real, emulated, fake, hidden and passed-through functions, ' +
        'with back-end, IOMMU group and BARs), the interrupt routing table, readiness findings from --host, and what a run recorded (--run).',
    )
    .summary('an HTML page of a plan\'s platform: memory map, PCI tree, interrupts, findings, a run')
    .argument('<plan|archive>', 'the plan (YAML or JSON), or a collection from hvmpt collect: the plan hvmpt plan --from would write for it, with the whole analysis')
    .option('--out <FILE>', 'where the page goes', 'report.html')
    .option('--host <facts>', "describe the pass-through devices from another host (a collection from hvmpt collect, its sysfs tree, /sys or /sys/bus/pci/devices, or an lspci -xxx dump) instead of this machine's sysfs")
    .option('--run <run.json>', 'what hvmpt run --report recorded: BAR mappings, refusals, device faults')
    .option('--memory <size>', "with a collection: the guest's RAM in the plan made for it", DEFAULT_GUEST_MEMORY)
    .action(async (source: string, opts: ReportOptions) => {
      const collection = isFactsCollection(source);
      if (collection && opts.host !== undefined) throw new UsageError(`${source} is a collection: it is the host already (drop --host)`);
      const scratch = collection ? mkdtempSync(join(tmpdir(), 'hvmpt-report-')) : undefined;
      try {
        let planFile = source;
        let host = opts.host === undefined ? undefined : readHostFacts(opts.host);
        let everyDevice = false;
        if (scratch !== undefined) {
          // The plan hvmpt plan --from writes, in a scratch folder with the files it names.
          const s = loadSnapshot(source);
          const memory = parseMemoryOption(opts.memory);
          const g = passPlan({ snapshot: s, analysis: analyzeSnapshot(s, { memory }), p2v: false, pass: undefined, keep: [], memory, planBase: 'plan.yaml' });
          planFile = join(scratch, 'plan.yaml');
          writePlanFiles(g, scratch);
          writeFileSync(planFile, planText(g, `hvmpt plan --from ${source}`));
          host = hostFactsOfSnapshot(s);
          everyDevice = true;
        }
        const plan = loadPlan(planFile);
        const inputs = resolvePlatformInputs(plan, planFile, host === undefined ? {} : { host });
        const composed = composeMachine(plan, inputs);
        // A collection's readiness analysis runs for the plan's own devices (every function, for a collection's own page).
        const analysed =
          host?.collection === undefined
            ? host
            : {
                ...host,
                findings: [
                  ...host.findings,
                  ...collectionAnalysis(
                    host.collection,
                    everyDevice ? host.collection.pci.functions.map((f) => formatBdf(f.bdf, true)) : inputs.passthrough.map((p) => sysfsName(p.host.address)),
                    composed.windows,
                    ramTotal(composed.config.ram),
                    plan.memory.layout === 'identity' ? 'identity' : 'iommu',
                  ).findings,
                ],
              };
        const html = renderReport({
          plan,
          planFile: scratch === undefined ? planFile : source,
          composed,
          inputs,
          ...(analysed === undefined ? {} : { host: analysed }),
          ...(opts.run === undefined ? {} : { run: readRunRecord(opts.run) }),
        });
        writeReport(opts.out, html);
        process.stderr.write(`hvmpt: wrote ${opts.out}${scratch === undefined ? '' : ` (the plan hvmpt plan --from ${source} writes, ${plan.pci?.passthrough?.length ?? 0} devices passed)`}\n`);
      } finally {
        if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
      }
    });
}
