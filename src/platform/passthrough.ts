/**
 * Placing `pci.passthrough` devices on the guest's bus: where each goes, the BAR sizes and ROM
 * it shows, and what the vCPU thread needs to attach its back-end. Pure: the host facts and
 * opened back-ends come in `PlatformInputs`.
 */
import type { BackendHandle, DeviceDescription } from '../hw/pci/backend.js';
import type { CapturedFunction } from '../hw/pci/capture.js';
import type { Location, PlacedReal } from '../hw/pci/compose.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { parseOptionRom, romMismatch } from '../hw/pci/option-rom.js';
import { ROM_BAR_INDEX, barOffset } from '../hw/pci/regs.js';
import type { PlanProblem } from '../plan/load.js';
import type { PassthroughBackendKind } from '../plan/passthrough.js';
import { passthroughName, type PciSection } from '../plan/pci.js';
import type { PlanFiles } from '../plan/files.js';
import type { PassthroughInput } from './inputs.js';

/** What the vCPU thread needs to put the live device behind a composed function. */
export interface PassthroughAttachment {
  /** The function's name on the guest's bus. */
  readonly name: string;
  readonly backend: PassthroughBackendKind | 'vfio-user';
  readonly handle: BackendHandle;
  readonly description: DeviceDescription;
  /** The BAR sizes composition used (index 6: the ROM), which the live config view must report too. */
  readonly barSizes: ReadonlyMap<number, bigint>;
  /** The guest sees no ROM BAR (rom: off, or auto on a device without a usable ROM). */
  readonly romHidden: boolean;
}

export interface PlacedPassthrough {
  readonly real: PlacedReal;
  /** The image served at the ROM BAR (rom: FILE, or the device's own with rom: auto). */
  readonly rom?: { readonly device: string; readonly name: string; readonly bytes: Uint8Array };
  /** Present when the run opened the device; absent when the platform is only described (exports, checks). */
  readonly attachment?: PassthroughAttachment;
  readonly summary: string;
}

/** The smallest power of two a ROM BAR decodes that holds `n` bytes (at least 2 KiB). */
function romBarSize(n: number): bigint {
  let s = 2048n;
  while (s < BigInt(n)) s <<= 1n;
  return s;
}

/** A capture whose ROM BAR register reads 0: the guest is shown no ROM. */
function withoutRom(c: CapturedFunction): CapturedFunction {
  const bytes = new Uint8Array(c.bytes);
  const off = barOffset(ROM_BAR_INDEX, bytes[0x0e]! & 0x7f);
  bytes.fill(0, off, off + 4);
  const barSizes = new Map(c.barSizes);
  barSizes.delete(ROM_BAR_INDEX);
  return { ...c, bytes, barSizes };
}

/**
 * Places each passthrough entry: at its `at`, or at the first free device number on root bus 0
 * (after `taken`). Problems are reported by plan path.
 */
export function placePassthrough(
  section: PciSection | undefined,
  inputs: { readonly passthrough: readonly PassthroughInput[]; readonly files: PlanFiles },
  taken: ReadonlySet<number>,
): { placed: PlacedPassthrough[]; problems: PlanProblem[] } {
  const placed: PlacedPassthrough[] = [];
  const problems: PlanProblem[] = [];
  const used = new Set(taken);
  for (const e of section?.passthrough ?? []) if (e.at?.kind === 'root' && e.at.segment === 0 && e.at.bus === 0) used.add(e.at.device);
  (section?.passthrough ?? []).forEach((entry, i) => {
    const path = `pci.passthrough[${i}]`;
    const input = inputs.passthrough[i];
    if (input === undefined) return;
    const name = passthroughName(entry, i);
    let at: Location | undefined = entry.at;
    if (at === undefined) {
      let device = 2;
      while (device < 32 && used.has(device)) device++;
      if (device === 32) {
        problems.push({ path: `${path}.at`, message: 'root bus 00 has no free slot left: give the device an address' });
        return;
      }
      used.add(device);
      at = { kind: 'root', segment: 0, bus: 0, device, fn: 0 };
    }
    const host = input.host;
    const opened = input.opened;
    const vendorId = host.capture.bytes[0]! | (host.capture.bytes[1]! << 8);
    const deviceId = host.capture.bytes[2]! | (host.capture.bytes[3]! << 8);
    // BAR sizes: the back-end's regions once opened (VFIO's region info), else sysfs `resource`.
    const barSizes = new Map(host.capture.barSizes);
    if (opened !== undefined) {
      for (const r of opened.description.regions) {
        if (r.index > ROM_BAR_INDEX) continue;
        if (r.size > 0n) barSizes.set(r.index, r.size);
        else barSizes.delete(r.index);
      }
    }
    let rom: PlacedPassthrough['rom'];
    let romNote: string;
    const choice = entry.rom;
    if (choice.kind === 'file') {
      const { bytes, path: file } = inputs.files.bytes(`${path}.rom`);
      try {
        const parsed = parseOptionRom(bytes, file);
        const mismatch = romMismatch(parsed, vendorId, deviceId);
        if (mismatch !== undefined) problems.push({ path: `${path}.rom`, message: `${file} ${mismatch}` });
      } catch (err) {
        problems.push({ path: `${path}.rom`, message: err instanceof Error ? err.message : String(err) });
        return;
      }
      rom = { device: name, name: file, bytes };
      barSizes.set(ROM_BAR_INDEX, romBarSize(bytes.length));
      romNote = `ROM ${file}`;
    } else if (choice.kind === 'auto' && opened?.rom !== undefined) {
      rom = { device: name, name: `${sysfsName(host.address)} ROM`, bytes: opened.rom };
      barSizes.set(ROM_BAR_INDEX, romBarSize(opened.rom.length));
      romNote = 'its own ROM';
    } else if (choice.kind === 'auto' && opened === undefined && barSizes.has(ROM_BAR_INDEX)) {
      // Described only: the device's ROM BAR as sysfs sizes it; the run checks the image itself.
      romNote = 'its own ROM (checked when the run opens the device)';
    } else {
      barSizes.delete(ROM_BAR_INDEX);
      romNote = choice.kind === 'off' ? 'no ROM (rom: off)' : 'no ROM (the device has no usable one)';
    }
    const romHidden = !barSizes.has(ROM_BAR_INDEX);
    const base: CapturedFunction = { ...host.capture, barSizes };
    const capture = romHidden ? withoutRom(base) : base;
    const ids = entry.ids;
    const real: PlacedReal = {
      name,
      at,
      capture,
      source: `host ${sysfsName(host.address)} (${entry.backend})`,
      path,
      ...(ids === undefined
        ? {}
        : {
            ids: {
              ...(ids.vendor === undefined ? {} : { vendorId: ids.vendor }),
              ...(ids.device === undefined ? {} : { deviceId: ids.device }),
              ...(ids.subsystemVendor === undefined ? {} : { subsystemVendorId: ids.subsystemVendor }),
              ...(ids.subsystem === undefined ? {} : { subsystemId: ids.subsystem }),
            },
          }),
    };
    placed.push({
      real,
      ...(rom === undefined ? {} : { rom }),
      ...(opened === undefined ? {} : { attachment: { name, backend: entry.backend, handle: opened.handle, description: opened.description, barSizes, romHidden } }),
      summary: `${name}: host ${sysfsName(host.address)} through ${entry.backend}${host.iommuGroup === undefined ? '' : ` (IOMMU group ${host.iommuGroup})`}, ${romNote}`,
    });
  });
  return { placed, problems };
}
