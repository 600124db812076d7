import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { collectLive, collectorScript, runCollector } from '../host/facts/collector.js';
import { loadPciNames } from '../host/pci/ids.js';
import { writeJson, writeOut } from './output.js';

/** The guest RAM analyze and plan assume unless told: enough for a desktop guest, small enough to carve. */
export const DEFAULT_GUEST_MEMORY = '1G';

export function registerFacts(program: Command): void {
  program
    .command('collect')
    .description(
      'gather this machine\'s pass-through facts, read-only, into one tar archive: every PCI function\'s config space, ' +
        'resources, driver, IOMMU group, reset methods, interrupts and link; the ACPI tables; the firmware memory map, ' +
        '/proc/iomem, ioports and interrupts; the kernel\'s command line, version and build options; the CPU; and which ' +
        'devices hold the root filesystem, the default route and the console. It is a POSIX sh script (see --print-script) ' +
        'that works without Node and without root (it lists what it could not read). It writes nothing but its output.',
    )
    .summary('gather this machine\'s pass-through facts, read-only, into one archive')
    .option('--out <file.tar>', 'the archive to write (- for standard output)', 'hvmpt-facts.tar')
    .option('--rom', 'also read each expansion ROM\'s contents (the kernel\'s ROM protocol turns its decode on while it is read)')
    .option('--print-script', 'print the collector script instead, for a machine without Node: sh collect.sh --out facts.tar')
    .action(async (opts: { out: string; rom?: boolean; printScript?: boolean }) => {
      if (opts.printScript === true) return writeOut(collectorScript());
      runCollector({ out: opts.out, rom: opts.rom === true });
    });

  const snapshot = program.command('snapshot').description('read a collection `hvmpt collect` wrote');
  snapshot
    .command('show')
    .description('print the typed model of a collection, every file parsed with hvmpt\'s own codecs (PCI config space, E820, ACPI tables); a bad or partial archive is an error naming the file inside it')
    .argument('<archive>', 'an archive from hvmpt collect (tar or tar.gz), or the same files unpacked in a directory')
    .option('--json', 'the model as JSON')
    .action(async (archive: string, opts: { json?: boolean }) => {
      const { loadSnapshot } = await import('./facts-analysis.js');
      const { formatSnapshot } = await import('../hw/facts/report.js');
      const s = loadSnapshot(archive);
      if (opts.json === true) return writeJson(s, true);
      return writeOut(formatSnapshot(s, loadPciNames()));
    });

  program
    .command('analyze')
    .description(
      'for each PCI function of a collection (or of this machine, --live): a verdict for pass-through with an IOMMU ' +
        '(vfio) and one for identity pass-through without one, with the facts behind each in plain words (IOMMU state, ' +
        'group members and their drivers, ACS above it, reset methods, ROM, BARs against the guest\'s windows, its INTx ' +
        'line and who shares it, RMRR/IVMD ranges, MSI/MSI-X, what the host uses it for), then the host-side changes: ' +
        'kernel parameters and bind commands',
    )
    .summary('pass-through readiness of each device of a collected (or this) machine')
    .argument('[archive]', 'an archive from hvmpt collect')
    .option('--live', 'collect this machine now (read-only) and analyze it')
    .option('--json', 'the analysis as JSON')
    .option('--device <bdf,...>', 'only these functions (and the changes for them)')
    .option('--memory <size>', 'the guest RAM an identity layout carves from the host', DEFAULT_GUEST_MEMORY)
    .action(async (archive: string | undefined, opts: { live?: boolean; json?: boolean; device?: string; memory: string }) => {
      if ((archive === undefined) === (opts.live !== true)) throw new UsageError('give an archive, or --live for this machine (not both)');
      const { analyzeSnapshot, loadSnapshot, parseDeviceList, parseMemoryOption } = await import('./facts-analysis.js');
      const { readSnapshot } = await import('../hw/facts/snapshot.js');
      const { formatAnalysis } = await import('../hw/facts/report.js');
      const s = opts.live === true ? readSnapshot(collectLive()) : loadSnapshot(archive!);
      const a = analyzeSnapshot(s, { memory: parseMemoryOption(opts.memory), ...(opts.device === undefined ? {} : { devices: parseDeviceList(opts.device, '--device') }) });
      if (opts.json === true) return writeJson(a, true);
      return writeOut(formatAnalysis(a, loadPciNames()));
    });
}
