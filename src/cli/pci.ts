import { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import { loadPciNames } from '../host/pci/ids.js';
import { loadCapture } from '../host/pci/load.js';
import { parseBdf } from '../hw/pci/address.js';
import { composePci, type ComposedPci } from '../hw/pci/compose.js';
import { viewJson, writeLspciDump, writeTree } from '../hw/pci/view.js';
import { resolvePlanFiles } from '../host/plan/files.js';
import type { Capture } from '../hw/pci/capture.js';
import { BUILTIN_PCI_MODELS, loadPciPlan, pciComposeInput, type PciSection } from '../plan/pci.js';
import { writeJson, writeOut } from './output.js';

const FORMATS = ['tree', 'lspci-dump', 'json'] as const;
type Format = (typeof FORMATS)[number];

interface ViewOptions {
  plan?: string;
  format: Format;
  bdf?: string;
}

/** Builds the composed view a `pci view` invocation asks for. */
export function composeView(dump: string, opts: { plan?: string; bdf?: string }): ComposedPci {
  let bdf;
  if (opts.bdf !== undefined) {
    bdf = parseBdf(opts.bdf);
    if (bdf === undefined) throw new UsageError(`'${opts.bdf}' is not a PCI address like 00:1f.3`, { input: '--bdf' });
  }
  const base = loadCapture(dump, bdf === undefined ? {} : { bdf });
  if (opts.plan === undefined) return composePci({ base }, dump);
  return composePlanView(base, loadPciPlan(opts.plan), opts.plan);
}

/** A captured machine composed by a plan's pci section (read from `planFile`, whose files it reads). */
export function composePlanView(base: Capture, section: PciSection, planFile: string): ComposedPci {
  const input = pciComposeInput(section, { planFile, files: resolvePlanFiles({ pci: section }, planFile) });
  return composePci({ base, ...input }, planFile);
}

export function registerPci(program: Command): void {
  const pci = program
    .command('pci')
    .description('the composed PCI bus: captured machines, plans that hide, add and change devices, the guest view');

  pci
    .command('view')
    .description(
      'show the guest view of a captured PCI config space, as is or composed by a plan. ' +
        '<dump> is an lspci -x/-xxx/-xxxx dump, a sysfs config binary, a sysfs device directory, ' +
        'or a directory of them such as /sys/bus/pci/devices (read only). With no plan the view ' +
        'mirrors the capture byte for byte; with --plan its pci section hides, adds, and ' +
        'virtualizes devices and places BARs (see docs/pci.md).',
    )
    .summary('show the guest view of a captured PCI config space, as is or composed by a plan')
    .argument('<dump>', 'captured config space (lspci dump, sysfs config, or sysfs directory)')
    .option('--plan <plan.yaml>', 'a plan whose pci section composes the view (YAML or JSON)')
    .addOption(
      new Option('--format <format>', 'tree: bus tree with BARs, windows, INTx; lspci-dump: what `lspci -F` reads; json: everything as data')
        .choices([...FORMATS])
        .default('tree'),
    )
    .option('--bdf <address>', 'the address a lone config binary had (default 00:00.0)')
    .action(async (dump: string, opts: ViewOptions) => {
      const view = composeView(dump, opts);
      switch (opts.format) {
        case 'lspci-dump':
          for (const w of view.warnings) process.stderr.write(`hvmpt: warning: ${w}\n`);
          return writeOut(writeLspciDump(view, loadPciNames()));
        case 'json':
          return writeJson(viewJson(view));
        case 'tree':
          return writeOut(writeTree(view, loadPciNames()));
      }
    });

  pci
    .command('models')
    .description('list the emulated device models a plan can name in pci.emulated[].model')
    .action(async () => {
      await writeOut([...BUILTIN_PCI_MODELS.values()].map((m) => `${m.name}  ${m.summary}`).join('\n') + '\n');
    });
}
