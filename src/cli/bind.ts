import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { bindFunctions, unbindFunctions, type PassthroughDriver } from '../host/pci/bind.js';
import { writeOut } from './output.js';

const DRIVERS: readonly PassthroughDriver[] = ['vfio-pci', 'uio_pci_generic'];

export function registerBind(program: Command): void {
  program
    .command('bind')
    .summary('give host PCI functions to a pass-through driver (vfio-pci by default)')
    .description(
      'moves each function to vfio-pci (with an IOMMU) or uio_pci_generic (without), through driver_override, unbind and ' +
        "drivers_probe. With vfio-pci the function's whole IOMMU group moves (PCI bridges excepted), since VFIO takes a group " +
        "whole. The driver each function had is remembered (/run/hvmpt/bind) for `hvmpt unbind`. Functions the host needs " +
        "(its root filesystem's disk, its default route's NIC, or anything in their IOMMU group) are refused. Needs root.",
    )
    .argument('<bdf...>', 'PCI addresses such as 0000:00:03.0')
    .option('--driver <name>', `vfio-pci or uio_pci_generic`, 'vfio-pci')
    .action(async (bdfs: string[], o: { driver: string }) => {
      if (!DRIVERS.includes(o.driver as PassthroughDriver)) throw new UsageError(`--driver '${o.driver}': expected ${DRIVERS.join(' or ')}`);
      const moved = bindFunctions(bdfs, o.driver as PassthroughDriver);
      await writeOut(moved.map((r) => `${r.address}: ${r.previous === r.now ? `already with ${r.now}` : `${r.previous ?? 'no driver'} -> ${r.now}`}\n`).join(''));
    });
  program
    .command('unbind')
    .summary('give PCI functions back to the host driver they had before `hvmpt bind`')
    .description(
      "moves each function (and the IOMMU group mates `hvmpt bind` moved with it) back to the driver it had before, as " +
        'remembered by `hvmpt bind`; a function with no record goes to whatever driver the kernel probes for it. Needs root.',
    )
    .argument('<bdf...>', 'PCI addresses such as 0000:00:03.0')
    .action(async (bdfs: string[]) => {
      await writeOut(unbindFunctions(bdfs).map((r) => `${r.address}: ${r.previous ?? 'no driver'} -> ${r.now ?? 'no driver'}\n`).join(''));
    });
}
