import { readFileSync } from 'node:fs';
import { NO_NAMES, parsePciIds, type PciNames } from '../../hw/pci/ids.js';

/** Where Debian (pciutils' pci.ids package) and other distributions keep the database. */
export const PCI_IDS_PATHS: readonly string[] = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids', '/usr/share/pci.ids'];

/**
 * The PCI ID database: $HVMPT_PCI_IDS if set, else the first of PCI_IDS_PATHS that exists.
 * Names are decoration, so a machine without the file gets numeric IDs, not an error.
 */
export function loadPciNames(path: string | undefined = process.env.HVMPT_PCI_IDS): PciNames {
  for (const candidate of path !== undefined ? [path] : PCI_IDS_PATHS) {
    try {
      return parsePciIds(readFileSync(candidate, 'latin1'));
    } catch {
      // try the next one
    }
  }
  return NO_NAMES;
}
