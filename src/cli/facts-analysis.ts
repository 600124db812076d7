/** What the host-facts commands share: reading a collection, analysing it against the monitor's guest windows, their options. */
import { UsageError } from '../errors.js';
import { readFacts } from '../host/facts/archive.js';
import { analyze, type Analysis } from '../hw/facts/analyze.js';
import { readSnapshot, type HostSnapshot } from '../hw/facts/snapshot.js';
import { formatBdf, parseBdf } from '../hw/pci/address.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import { parseSize } from '../util/format.js';
import { ordinaryLayout } from '../hw/mem/ram-layout.js';
import { defaultE820 } from '../platform/machine-config.js';
import { DEFAULT_ECAM_BASE, ECAM_BUSES, guestPciWindows } from '../platform/pci-platform.js';

export function parseMemoryOption(text: string, option = '--memory'): bigint {
  const v = parseSize(text);
  if (v === undefined || v === 0n || v % 4096n !== 0n) throw new UsageError(`${option} ${text}: expected a size such as 1G or 512M (a multiple of 4K)`);
  return v;
}

/** The PCI windows of an ordinary guest of `memory` bytes on hvmpt's monitor: where passed BARs must fit. */
export function monitorWindows(memory: bigint): GuestWindows {
  const ecam = { start: DEFAULT_ECAM_BASE, end: DEFAULT_ECAM_BASE + BigInt(ECAM_BUSES) * 0x10_0000n };
  return guestPciWindows(defaultE820(ordinaryLayout(memory)), ecam);
}

export function loadSnapshot(archive: string): HostSnapshot {
  return readSnapshot(readFacts(archive));
}

/** `--device 01:00.0,0000:02:00.0` as sysfs names. */
export function parseDeviceList(text: string, option: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t) => {
      const b = parseBdf(t);
      if (b === undefined) throw new UsageError(`${option} ${t}: expected a PCI address like 01:00.0 or 0000:01:00.0`);
      return formatBdf(b, true);
    });
}

export function analyzeSnapshot(s: HostSnapshot, opts: { memory: bigint; devices?: string[] }): Analysis {
  const known = new Set(s.pci.functions.map((f) => formatBdf(f.bdf, true)));
  for (const d of opts.devices ?? []) if (!known.has(d)) throw new UsageError(`--device ${d}: no such function in ${s.source} (it has ${[...known].join(', ') || 'none'})`);
  return analyze(s, { windows: monitorWindows(opts.memory), memory: opts.memory, ...(opts.devices === undefined ? {} : { devices: opts.devices }) });
}

