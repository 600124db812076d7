/**
 * Plain-language text for a collection (`hvmpt snapshot show`) and an analysis
 * (`hvmpt analyze`); `--json` prints the same models as data instead.
 */
import { formatLinux } from '../mem/e820-format.js';
import { totalOfType } from '../mem/e820.js';
import type { PciNames } from '../pci/ids.js';
import { formatSize } from '../../util/format.js';
import type { Analysis, DeviceReport, Fact, Level, Outcome } from './analyze.js';
import { readHardware } from './hardware.js';
import type { HostSnapshot, PciFunctionFacts } from './snapshot.js';

const hex4 = (n: number | undefined): string => (n === undefined ? '????' : n.toString(16).padStart(4, '0'));

/** `Ethernet controller: Intel Corporation 82574L` from the ID database, or the numbers. */
export function describeFunction(names: PciNames, vendorId: number | undefined, deviceId: number | undefined, classCode: number | undefined): string {
  const cls = classCode === undefined ? undefined : classCode >>> 8;
  const className = cls === undefined ? 'Unknown class' : (names.className(cls) ?? `Class ${hex4(cls)}`);
  const vendor = vendorId === undefined ? undefined : names.vendor(vendorId);
  const device = vendorId === undefined || deviceId === undefined ? undefined : names.device(vendorId, deviceId);
  return `${className}: ${vendor ?? `Vendor ${hex4(vendorId)}`} ${device ?? `Device ${hex4(deviceId)}`} [${hex4(vendorId)}:${hex4(deviceId)}]`;
}

// ---------------------------------------------------------------- snapshot show

function functionLines(f: PciFunctionFacts, names: PciNames): string[] {
  const name = f.dir.slice(f.dir.lastIndexOf('/') + 1);
  const lines = [`${name} ${describeFunction(names, f.vendorId, f.deviceId, f.classCode)}`];
  const kv: string[] = [];
  kv.push(`driver ${f.driver ?? '-'}`);
  kv.push(`IOMMU group ${f.iommuGroup ?? '-'}`);
  kv.push(`reset ${f.resetMethods === undefined ? (f.resetAttribute ? 'yes (method not listed)' : 'unknown') : f.resetMethods.length === 0 ? 'none' : f.resetMethods.join(' ')}`);
  kv.push(`IRQ ${f.irq ?? '-'}`);
  if (f.msiIrqs !== undefined && f.msiIrqs.length > 0) kv.push(`${f.msiIrqs.length} ${[...new Set(f.msiIrqs.map((m) => m.mode))].join('/')} vector(s)`);
  if (f.numaNode !== undefined && f.numaNode >= 0) kv.push(`NUMA node ${f.numaNode}`);
  if (f.enableCount !== undefined) kv.push(`enabled ${f.enableCount}`);
  if (f.driverOverride !== undefined) kv.push(`driver_override ${f.driverOverride}`);
  if (f.link !== undefined) kv.push(`link ${f.link.speed ?? '?'} x${f.link.width ?? '?'} (max ${f.link.maxSpeed ?? '?'} x${f.link.maxWidth ?? '?'})`);
  if (f.romSize !== undefined) kv.push(`ROM ${formatSize(BigInt(f.romSize))}${f.rom !== undefined ? ' (collected)' : ''}`);
  if (f.bootVga === true) kv.push('boot VGA');
  if (f.sriov !== undefined) kv.push(`SR-IOV ${f.sriov.enabled}/${f.sriov.total} VFs`);
  if (f.physfn !== undefined) kv.push(`VF of ${f.physfn}`);
  lines.push(`    ${kv.join(', ')}`);
  if (f.config !== undefined) {
    const hw = readHardware(f.config);
    const caps = hw.capabilitiesKnown ? hw.capabilities.map((c) => c.name).join(', ') || 'none' : 'not read (64 bytes)';
    lines.push(`    config ${f.config.bytes.length} bytes; capabilities: ${caps}`);
    for (const b of hw.bars) lines.push(`    ${b.index === 6 ? 'ROM' : `BAR ${b.index}`}: ${b.kind}${b.prefetchable ? ' prefetchable' : ''} at 0x${b.address.toString(16)}${b.size === undefined ? '' : ` [size=${formatSize(b.size)}]`}`);
  } else lines.push('    config space not collected');
  if (f.acpiPath !== undefined) lines.push(`    ACPI ${f.acpiPath}`);
  return lines;
}

export function formatSnapshot(s: HostSnapshot, names: PciNames): string {
  const out: string[] = [];
  const c = s.collector;
  out.push(`collection ${s.source}: format ${c.format}, ${c.date ?? 'undated'}, ${c.root ? 'as root' : `as uid ${c.uid ?? '?'} (not root)`}${c.rom ? ', with ROM contents' : ''}${c.machine !== undefined ? `, ${c.machine}` : ''}`);
  out.push(`kernel: ${s.kernel.release ?? 'unknown'}${s.kernel.configSource !== undefined ? ` (build options from ${s.kernel.configSource})` : ''}`);
  if (s.kernel.cmdline !== undefined) out.push(`  command line: ${s.kernel.cmdline.map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`)).join(' ')}`);
  if (s.kernel.config !== undefined) {
    const keys = ['CONFIG_VFIO_PCI', 'CONFIG_VFIO_NOIOMMU', 'CONFIG_UIO_PCI_GENERIC', 'CONFIG_INTEL_IOMMU', 'CONFIG_AMD_IOMMU', 'CONFIG_STRICT_DEVMEM'];
    out.push(`  build: ${keys.map((k) => `${k.slice(7)}=${s.kernel.config!.get(k) ?? '?'}`).join(' ')}`);
  }
  if (s.cpu !== undefined) out.push(`CPU: ${s.cpu.vendor ?? '?'} ${s.cpu.model ?? ''}, ${s.cpu.count ?? '?'} processor(s), ${s.cpu.flags.has('vmx') ? 'VT-x (vmx)' : s.cpu.flags.has('svm') ? 'AMD-V (svm)' : 'no hardware virtualization flag'}`);
  out.push(`IOMMU: ${s.iommu.units.length === 0 ? 'no remapping unit in use' : s.iommu.units.map((u) => u.name).join(', ')}; ${s.iommu.groups === undefined ? 'no IOMMU groups' : `${s.iommu.groups.size} IOMMU group(s)`}`);
  const mm = s.memory.memmap;
  if (mm === undefined) out.push('memory map: not collected');
  else {
    out.push(`memory map (/sys/firmware/memmap): ${mm.entries.length} entries, ${formatSize(totalOfType(mm))} usable`);
    for (const l of formatLinux(mm, 'firmware').split('\n').filter((x) => x !== '')) out.push(`  ${l}`);
  }
  if (s.acpi.tables === undefined) out.push('ACPI tables: not collected');
  else {
    out.push(`ACPI tables (${s.acpi.tables.length}):`);
    for (const t of s.acpi.tables) {
      const h = t.table.kind === 'rsdp' || t.table.kind === 'facs' ? undefined : t.table.header;
      out.push(`  ${t.name.padEnd(16)} ${t.signature} ${t.table.kind}${h !== undefined ? ` ${h.oemId.trim()} ${h.oemTableId.trim()} rev ${h.revision}` : ''}${t.problem !== undefined ? ` (raw: ${t.problem})` : ''}`);
    }
  }
  out.push(`PCI functions (${s.pci.functions.length}):`);
  for (const f of s.pci.functions) for (const l of functionLines(f, names)) out.push(`  ${l}`);
  if (s.interrupts !== undefined) out.push(`interrupts: ${s.interrupts.length} lines (${s.interrupts.filter((r) => /IO-APIC|XT-PIC/.test(r.chip)).length} INTx/ISA, ${s.interrupts.filter((r) => /MSI/.test(r.chip)).length} MSI)`);
  const h = s.host;
  const root = [...(h.mounts ?? [])].reverse().find((m) => m.mountPoint === '/');
  out.push(`host: root ${root === undefined ? 'unknown' : `${root.fsType} on ${root.source}`}; default routes ${(h.routes ?? []).map((r) => `${r.iface} (${r.family})`).join(', ') || 'none'}; consoles ${h.consoles.map((x) => x.name).join(' ') || 'unknown'}`);
  out.push(`unreadable (${s.unreadable.length}):${s.unreadable.length === 0 ? ' nothing' : ''}`);
  for (const u of s.unreadable) out.push(`  ${u.path}: ${u.why}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- analyze

const OUTCOME_WORDS: Readonly<Record<Outcome, string>> = { yes: 'yes', 'after-changes': 'yes, after host changes', no: 'no' };
const MARK: Readonly<Record<Level, string>> = { ok: '+', info: '·', warn: '!', change: '~', block: 'x' };

function factLine(f: Fact): string {
  return `      ${MARK[f.level]} ${f.text}`;
}

function verdictLines(title: string, v: DeviceReport['iommu'], common: readonly Fact[]): string[] {
  const own = v.facts.filter((f) => !common.includes(f));
  const reasons = v.facts.filter((f) => f.level === 'block' || f.level === 'change').map((f) => f.topic);
  const backend = v.backend === undefined ? '' : ` (back-end ${v.backend})`;
  return [`    ${title}: ${OUTCOME_WORDS[v.outcome]}${backend}${reasons.length > 0 ? ` [${[...new Set(reasons)].join(', ')}]` : ''}`, ...own.map(factLine)];
}

export function formatAnalysis(a: Analysis, names: PciNames): string {
  const out: string[] = [];
  const m = a.machine;
  out.push(`hvmpt analyze: ${a.source}`);
  out.push(`machine: ${m.cpu.vendor ?? '?'} ${m.cpu.model ?? ''} (${m.cpu.virtualization ?? 'virtualization unknown'}), kernel ${m.kernel.release ?? '?'}`);
  out.push(`IOMMU: ${m.iommu.on ? `on (${m.iommu.units.join(', ') || 'groups'})` : 'off'}; firmware describes ${m.iommu.firmware === 'dmar' ? 'VT-d (DMAR)' : m.iommu.firmware === 'ivrs' ? 'AMD-Vi (IVRS)' : m.iommu.firmware === 'none' ? 'no IOMMU' : 'unknown (tables not collected)'}`);
  for (const f of m.facts) out.push(`  ${MARK[f.level]} ${f.text}`);
  out.push('');
  out.push('legend: + good  · fact  ! caveat  ~ needs a host change  x rules it out');
  for (const d of a.devices) {
    out.push('');
    out.push(`${d.device} ${describeFunction(names, d.vendorId, d.deviceId, d.classCode)}${d.driver !== undefined ? ` [${d.driver}]` : ''}`);
    if (d.role === 'platform') {
      out.push(`    not a pass-through target: ${d.common.find((f) => f.topic === 'kind')?.text ?? 'a bridge'}`);
      continue;
    }
    for (const f of d.common) out.push(factLine(f));
    out.push(...verdictLines('IOMMU pass-through', d.iommu, d.common));
    out.push(...verdictLines('identity pass-through', d.identity, d.common));
  }
  const ch = a.changes;
  out.push('');
  if (ch.devices.length === 0) {
    out.push('host-side changes: none (no device to pass)');
    return out.join('\n') + '\n';
  }
  out.push(`host-side changes to pass ${ch.devices.join(', ')}:`);
  const section = (title: string, s: Analysis['changes']['iommu']): void => {
    if (s.kernelParams.length === 0 && s.commands.length === 0 && s.notes.length === 0) return;
    out.push(`  ${title}:`);
    if (s.kernelParams.length > 0) out.push(`    kernel parameters: ${s.kernelParams.join(' ')}`);
    for (const n of s.notes) out.push(`    note: ${n}`);
    if (s.commands.length > 0) {
      out.push('    then, as root:');
      for (const c of s.commands) out.push(`      ${c}`);
    }
  };
  section('with the IOMMU (vfio)', ch.iommu);
  section('identity, without an IOMMU', ch.identity);
  return out.join('\n') + '\n';
}
