/**
 * Names from the PCI ID database (`pci.ids`, the file lspci reads), so trees and dumps show
 * "Intel Corporation 82574L Gigabit Network Connection" rather than 8086:10d3. Parsing is
 * pure; finding the file on disk is host/pci/ids.ts's job.
 */
export interface PciNames {
  vendor(vendorId: number): string | undefined;
  device(vendorId: number, deviceId: number): string | undefined;
  /** The subclass name for a 16-bit class/subclass code, falling back to the class name. */
  className(classCode16: number): string | undefined;
}

/**
 * Parses pci.ids text. Vendor/device lines and class/subclass lines; subsystem and prog-if
 * lines are skipped (nothing here shows them). Lines that fit no rule are ignored, as lspci
 * does, so a damaged database degrades to fewer names rather than an error.
 */
export function parsePciIds(text: string): PciNames {
  const vendors = new Map<number, string>();
  const devices = new Map<number, string>();
  const classes = new Map<number, string>();
  let vendor = -1;
  let klass = -1;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('C ')) {
      const m = /^C ([0-9a-f]{2})\s+(.+)$/i.exec(line);
      vendor = -1;
      klass = m === null ? -1 : parseInt(m[1]!, 16);
      if (m !== null) classes.set(klass << 8 | 0x1_0000, m[2]!.trim());
      continue;
    }
    if (line.startsWith('\t\t')) continue;
    if (line.startsWith('\t')) {
      const m = /^\t([0-9a-f]{4}|[0-9a-f]{2})\s+(.+)$/i.exec(line);
      if (m === null) continue;
      if (vendor >= 0 && m[1]!.length === 4) devices.set(vendor * 0x1_0000 + parseInt(m[1]!, 16), m[2]!.trim());
      else if (klass >= 0 && m[1]!.length === 2) classes.set((klass << 8) | parseInt(m[1]!, 16), m[2]!.trim());
      continue;
    }
    const m = /^([0-9a-f]{4})\s+(.+)$/i.exec(line);
    klass = -1;
    vendor = m === null ? -1 : parseInt(m[1]!, 16);
    if (m !== null) vendors.set(vendor, m[2]!.trim());
  }
  return {
    vendor: (v) => vendors.get(v),
    device: (v, d) => devices.get(v * 0x1_0000 + d),
    // Bit 16 marks a whole-class entry so it cannot collide with a subclass code.
    className: (c) => classes.get(c) ?? classes.get(((c >> 8) << 8) | 0x1_0000),
  };
}

/** What a database-less description uses: the handful of classes a platform always has. */
export const NO_NAMES: PciNames = {
  vendor: () => undefined,
  device: () => undefined,
  className: () => undefined,
};
