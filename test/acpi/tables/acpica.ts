import type { TraceEntry } from '../../../src/hw/acpi/tables/binary.js';

/**
 * Reading ACPICA's own decode of data tables — the `.decoded.txt` fixtures (acpixtract +
 * `iasl -d`) and `iasl -d` output made in a test — and holding hvmpt's field trace against it.
 *
 * ACPICA lines look like `[004h 0004   4]                 Table Length : 000000F4`; bit
 * breakdown lines ("  PC-AT Compatibility : 1") have no offset and are not fields.
 */
export interface AcpicaField {
  readonly offset: number;
  readonly size: number;
  readonly name: string;
  readonly value: string;
  readonly line: string;
}

const FIELD = /^\[([0-9A-Fa-f]+)h (\d+) +([0-9A-Fa-f]+h?)\]\s+(.*?) : (.*)$/;

export function parseAcpicaFields(text: string): AcpicaField[] {
  const out: AcpicaField[] = [];
  // Long byte lists (SLIT rows) wrap: a trailing "\\" continues the value on the next line.
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const prev = lines[lines.length - 1];
    if (prev !== undefined && prev.endsWith('\\')) lines[lines.length - 1] = prev.slice(0, -1).trimEnd() + ' ' + line.trim();
    else lines.push(line);
  }
  for (const line of lines) {
    const m = FIELD.exec(line);
    if (m === null) continue;
    const sizeText = m[3]!;
    const size = sizeText.endsWith('h') ? parseInt(sizeText.slice(0, -1), 16) : parseInt(sizeText, 10);
    out.push({ offset: parseInt(m[1]!, 16), size, name: m[4]!.replace(/ \(decoded below\)$/, '').replace(/\s+/g, ' ').trim(), value: m[5]!.trim(), line });
  }
  return out;
}

/** The sections of a `.decoded.txt` fixture: "APIC\n----\n…" up to "Raw Table Data". */
export function decodedSections(text: string): Map<string, string> {
  const sections = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (lines[i + 1] !== '----' || lines[i]!.length === 0) continue;
    const name = lines[i]!;
    let j = i + 2;
    const body: string[] = [];
    while (j < lines.length && !lines[j]!.startsWith('Raw Table Data')) {
      if (j + 1 < lines.length && lines[j + 1] === '----') break;
      body.push(lines[j]!);
      j++;
    }
    sections.set(name, body.join('\n'));
  }
  return sections;
}

/** An ACPICA value as bytes (little-endian for numbers), or a string for quoted text. */
type Parsed = { kind: 'text'; text: string } | { kind: 'bytes'; bytes: number[] } | { kind: 'skip' };

function parseAcpicaValue(f: AcpicaField): Parsed {
  const v = f.value;
  if (v.startsWith('[')) return { kind: 'skip' }; // "[Generic Address Structure]": its parts follow
  const quoted = /^"(.*)"/.exec(v);
  if (quoted !== null) return { kind: 'text', text: quoted[1]! };
  const list = /^([0-9A-Fa-f]{2}(?:[ ,][0-9A-Fa-f]{2})+)(?:\s|$)/.exec(v);
  if (list !== null && f.size > 1 && list[1]!.split(/[ ,]/).length === f.size) {
    return { kind: 'bytes', bytes: list[1]!.split(/[ ,]/).map((h) => parseInt(h, 16)) };
  }
  const num = /^([0-9A-Fa-f]+)(?:\s|$)/.exec(v);
  if (num === null) return { kind: 'skip' };
  let n = BigInt('0x' + num[1]!);
  const bytes: number[] = [];
  for (let i = 0; i < f.size; i++) {
    bytes.push(Number(n & 0xffn));
    n >>= 8n;
  }
  return { kind: 'bytes', bytes };
}

function traceBytes(e: TraceEntry): number[] {
  const v = e.value;
  if (v instanceof Uint8Array) return [...v];
  if (typeof v === 'string') return [...v].map((c) => c.charCodeAt(0));
  let n = BigInt(v);
  const out: number[] = [];
  for (let i = 0; i < e.size; i++) {
    out.push(Number(n & 0xffn));
    n >>= 8n;
  }
  return out;
}

/** ACPICA prints text up to the first NUL, with unprintable bytes as spaces. */
function asText(bytes: number[]): string {
  const end = bytes.indexOf(0);
  return String.fromCharCode(...(end < 0 ? bytes : bytes.slice(0, end)).map((b) => (b >= 0x20 && b < 0x7f ? b : 0x20)));
}

/**
 * hvmpt's names for ACPICA's: every ACPICA field must be covered by hvmpt fields at the same
 * offset whose last path component is one of the names listed for the ACPICA name, so a value
 * that matches by accident at a wrong field does not count.
 */
export type NameMap = Readonly<Record<string, readonly string[]>>;

export interface Comparison {
  matched: number;
  problems: string[];
}

function leaf(path: string): string {
  const last = path.slice(path.lastIndexOf('.') + 1);
  return last.replace(/\[\d+\]/g, '');
}

/**
 * Compares ACPICA's fields against hvmpt's trace. An ACPICA field matches when hvmpt's fields
 * cover exactly its bytes (one field, or several adjacent ones such as a DMAR path's device
 * and function), their names are ones the map allows, and the values agree.
 */
export function compareFields(acpica: readonly AcpicaField[], trace: readonly TraceEntry[], names: NameMap): Comparison {
  const byOffset = new Map<number, TraceEntry[]>();
  for (const e of trace) {
    const list = byOffset.get(e.offset) ?? [];
    list.push(e);
    byOffset.set(e.offset, list);
  }
  const problems: string[] = [];
  let matched = 0;
  for (const f of acpica) {
    const want = parseAcpicaValue(f);
    if (want.kind === 'skip') continue;
    const allowed = names[f.name];
    if (allowed === undefined) {
      problems.push(`no hvmpt name mapped for ACPICA field "${f.name}": ${f.line.trim()}`);
      continue;
    }
    // Collect adjacent hvmpt fields covering [offset, offset + size).
    const cover: TraceEntry[] = [];
    let at = f.offset;
    while (at < f.offset + f.size) {
      const next = (byOffset.get(at) ?? []).find((e) => at + e.size <= f.offset + f.size || cover.length === 0);
      if (next === undefined) break;
      cover.push(next);
      at += next.size;
    }
    if (at !== f.offset + f.size) {
      problems.push(`hvmpt has no field(s) covering exactly ${f.size} byte(s) at 0x${f.offset.toString(16)}: ${f.line.trim()}`);
      continue;
    }
    const badName = cover.find((e) => !allowed.includes(leaf(e.path)));
    if (badName !== undefined) {
      problems.push(`at 0x${f.offset.toString(16)} ACPICA has "${f.name}" but hvmpt has ${badName.path}: ${f.line.trim()}`);
      continue;
    }
    const got = cover.flatMap(traceBytes);
    const paths = cover.map((e) => e.path).join('+');
    if (want.kind === 'text') {
      if (asText(got) !== want.text) {
        problems.push(`${paths} is ${JSON.stringify(asText(got))}, ACPICA says ${f.line.trim()}`);
        continue;
      }
    } else if (got.length !== want.bytes.length || got.some((b, i) => b !== want.bytes[i])) {
      problems.push(`${paths} is [${got.map((b) => b.toString(16)).join(' ')}], ACPICA says ${f.line.trim()}`);
      continue;
    }
    matched++;
  }
  return { matched, problems };
}

/**
 * ACPICA field names (all versions seen in the fixtures and in iasl 20200925) and the hvmpt
 * model names that may stand for them.
 */
export const NAMES: NameMap = {
  // Standard header
  Signature: ['signature'],
  'Table Length': ['length'],
  Length: ['length', 'regionLength'],
  Revision: ['revision'],
  Checksum: ['checksum'],
  'Oem ID': ['oemId'],
  'Oem Table ID': ['oemTableId'],
  'Oem Revision': ['oemRevision'],
  'Asl Compiler ID': ['creatorId'],
  'Asl Compiler Revision': ['creatorRevision'],
  // Common
  'Subtable Type': ['type', 'blockType', 'entryType'],
  'Entry Type': ['entryType'],
  Flags: ['flags', 'pageProtection', 'sourceFlags'],
  Reserved: ['reserved', 'reserved1', 'reserved2', 'reserved3', 'flags', 'model', 'size', 'featureInfo'],
  Reserved1: ['reserved', 'reserved1'],
  Reserved2: ['reserved2', 'reserved'],
  Reserved3: ['reserved3', 'reserved'],
  // GAS parts
  'Space ID': ['spaceId'],
  'Bit Width': ['bitWidth'],
  'Bit Offset': ['bitOffset'],
  'Encoded Access Width': ['accessSize'],
  Address: ['address', 'localApicAddress'],
  // RSDP
  'RSDT Address': ['rsdtAddress'],
  'XSDT Address': ['xsdtAddress'],
  'Extended Checksum': ['extendedChecksum'],
  // RSDT/XSDT
  ...Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`ACPI Table Address ${i}`, [`entries`]])),
  // FADT
  'FACS Address': ['firmwareCtrl', 'xFirmwareCtrl'],
  'DSDT Address': ['dsdt', 'xDsdt'],
  Model: ['model'],
  'PM Profile': ['preferredPmProfile'],
  'SCI Interrupt': ['sciInterrupt'],
  'SMI Command Port': ['smiCommand'],
  'ACPI Enable Value': ['acpiEnable'],
  'ACPI Disable Value': ['acpiDisable'],
  'S4BIOS Command': ['s4biosRequest'],
  'P-State Control': ['pstateControl'],
  'PM1A Event Block Address': ['pm1aEventBlock'],
  'PM1B Event Block Address': ['pm1bEventBlock'],
  'PM1A Control Block Address': ['pm1aControlBlock'],
  'PM1B Control Block Address': ['pm1bControlBlock'],
  'PM2 Control Block Address': ['pm2ControlBlock'],
  'PM Timer Block Address': ['pmTimerBlock'],
  'GPE0 Block Address': ['gpe0Block'],
  'GPE1 Block Address': ['gpe1Block'],
  'PM1 Event Block Length': ['pm1EventLength'],
  'PM1 Control Block Length': ['pm1ControlLength'],
  'PM2 Control Block Length': ['pm2ControlLength'],
  'PM Timer Block Length': ['pmTimerLength'],
  'GPE0 Block Length': ['gpe0BlockLength'],
  'GPE1 Block Length': ['gpe1BlockLength'],
  'GPE1 Base Offset': ['gpe1Base'],
  '_CST Support': ['cstControl'],
  'C2 Latency': ['c2Latency'],
  'C3 Latency': ['c3Latency'],
  'CPU Cache Size': ['flushSize'],
  'Cache Flush Stride': ['flushStride'],
  'Duty Cycle Offset': ['dutyOffset'],
  'Duty Cycle Width': ['dutyWidth'],
  'RTC Day Alarm Index': ['dayAlarm'],
  'RTC Month Alarm Index': ['monthAlarm'],
  'RTC Century Index': ['century'],
  'Boot Flags': ['iapcBootArch'],
  'Reset Register': ['resetRegister'],
  'Value to cause reset': ['resetValue'],
  'ARM Flags': ['armBootArch'],
  'FADT Minor Revision': ['minorRevision'],
  'PM1A Event Block': ['xPm1aEventBlock'],
  'PM1B Event Block': ['xPm1bEventBlock'],
  'PM1A Control Block': ['xPm1aControlBlock'],
  'PM1B Control Block': ['xPm1bControlBlock'],
  'PM2 Control Block': ['xPm2ControlBlock'],
  'PM Timer Block': ['xPmTimerBlock'],
  'GPE0 Block': ['xGpe0Block'],
  'GPE1 Block': ['xGpe1Block'],
  'Sleep Control Register': ['sleepControlRegister'],
  'Sleep Status Register': ['sleepStatusRegister'],
  'Hypervisor ID': ['hypervisorVendorId'],
  // FACS
  'Hardware Signature': ['hardwareSignature'],
  '32 Firmware Waking Vector': ['firmwareWakingVector'],
  'Global Lock': ['globalLock'],
  '64 Firmware Waking Vector': ['xFirmwareWakingVector'],
  Version: ['version'],
  OspmFlags: ['ospmFlags'],
  // MADT
  'Local Apic Address': ['localApicAddress'],
  'Processor ID': ['processorUid', 'processorId'],
  'Local Apic ID': ['apicId'],
  'I/O Apic ID': ['ioApicId'],
  Interrupt: ['gsiBase', 'gsi'],
  Bus: ['bus'],
  Source: ['source'],
  'Interrupt Input LINT': ['lint'],
  'APIC Address': ['address'],
  'I/O Sapic ID': ['ioApicId'],
  'Interrupt Base': ['gsiBase'],
  'Local Sapic ID': ['sapicId'],
  'Local Sapic EID': ['sapicEid', 'localSapicEid'],
  'Processor UID': ['processorUid'],
  'Processor UID String': ['trailing'],
  InterruptType: ['interruptType'],
  'Processor EID': ['processorEid'],
  'I/O Sapic Vector': ['ioSapicVector'],
  'Processor x2Apic ID': ['x2apicId'],
  'CPU Interface Number': ['cpuInterfaceNumber'],
  'Parking Protocol Version': ['parkingVersion'],
  'Performance Interrupt': ['performanceInterrupt'],
  'Parked Address': ['parkedAddress'],
  'Base Address': ['baseAddress', 'registerBaseAddress'],
  'Virtual GIC Base Address': ['gicvBaseAddress'],
  'Hypervisor GIC Base Address': ['gichBaseAddress'],
  'Virtual GIC Interrupt': ['vgicMaintenanceInterrupt'],
  'Redistributor Base Address': ['gicrBaseAddress', 'baseAddress'],
  'ARM MPIDR': ['mpidr'],
  'Efficiency Class': ['efficiencyClass'],
  'SPE Overflow Interrupt': ['speOverflowInterrupt'],
  'Local GIC Hardware ID': ['gicId'],
  'MSI Frame ID': ['msiFrameId'],
  'SPI Count': ['spiCount'],
  'SPI Base': ['spiBase'],
  'Translation ID': ['translationId'],
  // MCFG
  'Segment Group Number': ['segment'],
  'Start Bus Number': ['startBus'],
  'End Bus Number': ['endBus'],
  // HPET
  'Hardware Block ID': ['eventTimerBlockId'],
  'Timer Block Register': ['baseAddress'],
  'Sequence Number': ['hpetNumber'],
  'Minimum Clock Ticks': ['minimumTick'],
  // DMAR
  'Host Address Width': ['hostAddressWidth'],
  'PCI Segment Number': ['segment'],
  'Register Base Address': ['registerBaseAddress'],
  'Size (decoded below)': ['size'],
  Size: ['size'],
  'End Address (limit)': ['endAddress'],
  'Proximity Domain': ['proximityDomain'],
  'Device Scope Type': ['scopeType'],
  'Entry Length': ['length'],
  'Enumeration ID': ['enumerationId'],
  'PCI Bus Number': ['startBus'],
  'PCI Path': ['device', 'function'],
  'Device Number': ['deviceNumber'],
  'Device Name': ['objectName'],
  // IVRS
  'Virtualization Info': ['ivInfo', 'iommuInfo'],
  DeviceId: ['deviceId'],
  'Device ID': ['deviceId'],
  'Capability Offset': ['capabilityOffset'],
  'PCI Segment Group': ['segment'],
  'Feature Reporting': ['featureInfo'],
  Attributes: ['featureInfo'],
  'EFR Image': ['efrImage'],
  'Data Setting': ['dataSetting'],
  'Source Used Device ID': ['sourceDeviceId'],
  Handle: ['handle'],
  Variety: ['variety'],
  'Extended Data': ['data'],
  'ACPI HID': ['hid'],
  'ACPI CID': ['cid'],
  'UID Format': ['uidFormat'],
  'UID Length': ['uidLength'],
  UID: ['uid'],
  'Auxiliary Data': ['auxData'],
  'Start Address': ['startAddress'],
  'Memory Length': ['memoryLength'],
  // SRAT
  'Table Revision': ['tableRevision'],
  'Proximity Domain Low(8)': ['proximityDomainLow'],
  'Apic ID': ['apicId', 'x2apicId'],
  
  'Proximity Domain High(24)': ['proximityDomainHigh'],
  'Clock Domain': ['clockDomain'],
  'Address Length': ['length'],
  'Acpi Processor UID': ['processorUid'],
  'ITS ID': ['itsId'],
  'Device Handle Type': ['deviceHandleType'],
  'Device Handle': ['deviceHandle'],
  // SLIT
  Localities: ['localityCount'],
  ...Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`Locality ${i}`, ['distances']])),
};

/**
 * For DSDT/SSDT sections ACPICA prints ASL; its `DefinitionBlock ("", "DSDT", 1, "BOCHS ",
 * "BXPC    ", 0x00000001)` line carries the header's signature, revision and OEM fields.
 */
export function definitionBlockFields(body: string): AcpicaField[] {
  const m = /DefinitionBlock \("[^"]*", "(.{4})", (\d+), "(.*?)", "(.*?)", 0x([0-9A-Fa-f]+)\)/.exec(body);
  if (m === null) return [];
  const line = m[0];
  return [
    { offset: 0, size: 4, name: 'Signature', value: `"${m[1]!}"`, line },
    { offset: 8, size: 1, name: 'Revision', value: Number(m[2]!).toString(16), line },
    { offset: 10, size: 6, name: 'Oem ID', value: `"${m[3]!}"`, line },
    { offset: 16, size: 8, name: 'Oem Table ID', value: `"${m[4]!}"`, line },
    { offset: 24, size: 4, name: 'Oem Revision', value: m[5]!, line },
  ];
}

/**
 * iasl's data-table templates and source files (`[0004]  Signature : "APIC"`) carry sizes but
 * no offsets; for a structure without nested parts (the RSDP) offsets are the running sum.
 */
export function parseTemplateFields(text: string): AcpicaField[] {
  const out: AcpicaField[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    const m = /^\[(\d+)\]\s+(.*?) : (.*)$/.exec(line.trimEnd());
    if (m === null) continue;
    const size = parseInt(m[1]!, 10);
    out.push({ offset, size, name: m[2]!.trim(), value: m[3]!.trim(), line });
    offset += size;
  }
  return out;
}

/** iasl's data-table source for the RSDP (iasl computes both checksums when compiling it). */
export function rsdpSource(rsdp: { revision: number; oemId: string; rsdtAddress: number; xsdtAddress?: bigint }): string {
  const hex = (n: number | bigint, digits: number): string => n.toString(16).toUpperCase().padStart(digits, '0');
  const lines = [
    `[0008]                          Signature : "RSD PTR "`,
    `[0001]                           Checksum : 00`,
    `[0006]                             Oem ID : "${rsdp.oemId}"`,
    `[0001]                           Revision : ${hex(rsdp.revision, 2)}`,
    `[0004]                       RSDT Address : ${hex(rsdp.rsdtAddress, 8)}`,
  ];
  if (rsdp.revision >= 2) {
    lines.push(
      `[0004]                             Length : 00000024`,
      `[0008]                       XSDT Address : ${hex(rsdp.xsdtAddress ?? 0n, 16)}`,
      `[0001]                  Extended Checksum : 00`,
      `[0003]                           Reserved : 000000`,
    );
  }
  return lines.join('\n') + '\n';
}
