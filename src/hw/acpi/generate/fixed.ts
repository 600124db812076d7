import type { GenericAddress } from '../tables/binary.js';
import type { Facs } from '../tables/facs.js';
import { FadtBootArch, FadtFlag, type Fadt } from '../tables/fadt.js';
import { tableHeader, type TableHeader } from '../tables/header.js';
import type { Hpet } from '../tables/hpet.js';
import { intiFlags, MADT_CPU_ENABLED, MADT_PCAT_COMPAT, type Madt, type MadtEntry } from '../tables/madt.js';
import type { Mcfg } from '../tables/mcfg.js';
import type { ResolvedFacts } from './facts.js';

/**
 * The guest's fixed-hardware tables, from the facts: FADT (ACPI 6.x layout), FACS, MADT, MCFG
 * and HPET. Addresses between tables (the FADT's DSDT and FACS) are filled in by the layout.
 */

export function header(f: ResolvedFacts, signature: string, revision: number, oemTableId = f.oem.oemTableId): TableHeader {
  return tableHeader(signature, revision, {
    oemId: f.oem.oemId,
    oemTableId,
    oemRevision: f.oem.oemRevision,
    creatorId: f.oem.creatorId,
    creatorRevision: f.oem.creatorRevision,
  });
}

const SYSTEM_IO = 1;

function io(address: number, bytes: number): GenericAddress {
  const accessSize = bytes === 1 ? 1 : bytes === 2 ? 2 : 3;
  return { spaceId: SYSTEM_IO, bitWidth: bytes * 8, bitOffset: 0, accessSize, address: BigInt(address) };
}

const NONE: GenericAddress = { spaceId: 0, bitWidth: 0, bitOffset: 0, accessSize: 0, address: 0n };

/** PM1 event block: status (2 bytes) and enable (2 bytes). */
export const PM1_EVT_LENGTH = 4;
export const PM1_CNT_OFFSET = 4;
export const PM1_CNT_LENGTH = 2;
export const PM_TMR_OFFSET = 8;
export const PM_TMR_LENGTH = 4;
/** GPE0: two status bytes, then two enable bytes. */
export const GPE0_BLOCK_LENGTH = 4;

/**
 * FADT revision 6 (276 bytes). SCI_EN reads as set in the monitor's PM1a_CNT, so there is no
 * SMI command port: the OS finds ACPI mode already on. The PM timer is 24 bits (no
 * TMR_VAL_EXT); there are no C2/C3 states and no sleep states but S5. A GPE0 block exists
 * only with PCI hot-plug (its bit 1, as on QEMU's PIIX4).
 */
export function buildFadt(f: ResolvedFacts): Fadt {
  const pm = f.pm.base;
  const flags =
    FadtFlag.wbinvd |
    FadtFlag.procC1 |
    FadtFlag.powerButton |
    FadtFlag.sleepButton |
    (f.reset === undefined ? 0 : FadtFlag.resetRegSup);
  const bootArch =
    FadtBootArch.legacyDevices |
    (f.i8042 ? FadtBootArch.i8042 : 0) |
    (f.vga ? 0 : FadtBootArch.vgaNotPresent) |
    (f.rtc === undefined ? FadtBootArch.cmosRtcNotPresent : 0);
  return {
    kind: 'fadt',
    header: header(f, 'FACP', 6),
    firmwareCtrl: 0,
    dsdt: 0,
    model: 0,
    preferredPmProfile: 0,
    sciInterrupt: f.pm.sciIrq,
    smiCommand: 0,
    acpiEnable: 0,
    acpiDisable: 0,
    s4biosRequest: 0,
    pstateControl: 0,
    pm1aEventBlock: pm,
    pm1bEventBlock: 0,
    pm1aControlBlock: pm + PM1_CNT_OFFSET,
    pm1bControlBlock: 0,
    pm2ControlBlock: 0,
    pmTimerBlock: pm + PM_TMR_OFFSET,
    gpe0Block: f.hotplug?.gpeBase ?? 0,
    gpe1Block: 0,
    pm1EventLength: PM1_EVT_LENGTH,
    pm1ControlLength: PM1_CNT_LENGTH,
    pm2ControlLength: 0,
    pmTimerLength: PM_TMR_LENGTH,
    gpe0BlockLength: f.hotplug === undefined ? 0 : GPE0_BLOCK_LENGTH,
    gpe1BlockLength: 0,
    gpe1Base: 0,
    cstControl: 0,
    // Above 100 and 1000 microseconds: no C2 and no C3.
    c2Latency: 0x0fff,
    c3Latency: 0x0fff,
    flushSize: 0,
    flushStride: 0,
    dutyOffset: 0,
    dutyWidth: 0,
    dayAlarm: 0,
    monthAlarm: 0,
    century: f.rtc?.century ?? 0,
    iapcBootArch: bootArch,
    reserved: 0,
    flags,
    resetRegister: f.reset === undefined ? NONE : io(f.reset.port, 1),
    resetValue: f.reset?.value ?? 0,
    armBootArch: 0,
    minorRevision: 0,
    xFirmwareCtrl: 0n,
    xDsdt: 0n,
    xPm1aEventBlock: io(pm, PM1_EVT_LENGTH),
    xPm1bEventBlock: NONE,
    xPm1aControlBlock: io(pm + PM1_CNT_OFFSET, PM1_CNT_LENGTH),
    xPm1bControlBlock: NONE,
    xPm2ControlBlock: NONE,
    xPmTimerBlock: io(pm + PM_TMR_OFFSET, PM_TMR_LENGTH),
    xGpe0Block: f.hotplug === undefined ? NONE : io(f.hotplug.gpeBase, GPE0_BLOCK_LENGTH),
    xGpe1Block: NONE,
    sleepControlRegister: NONE,
    sleepStatusRegister: NONE,
    hypervisorVendorId: 0n,
  };
}

export function buildFacs(): Facs {
  return { kind: 'facs', hardwareSignature: 0, firmwareWakingVector: 0, globalLock: 0, flags: 0, xFirmwareWakingVector: 0n, version: 2, ospmFlags: 0 };
}

/** The ISA IRQs PCI interrupts are routed to: level triggered, active low, as PCI INTx is. */
export function pciIrqs(f: ResolvedFacts): number[] {
  return [...new Set(f.pirqIrqs)].filter((irq) => irq !== f.pm.sciIrq).sort((a, b) => a - b);
}

/**
 * One enabled Local APIC per vCPU, the IOAPIC, the ISA overrides (IRQ 0 on GSI 2 as on every
 * PC; the SCI level/active high as QEMU has it; each PCI IRQ level/active low) and LINT1 as NMI.
 */
export function buildMadt(f: ResolvedFacts): Madt {
  const entries: MadtEntry[] = [];
  f.apicIds.forEach((apicId, i) => entries.push({ type: 'localApic', processorUid: i, apicId, flags: MADT_CPU_ENABLED }));
  entries.push({ type: 'ioApic', ioApicId: f.ioApic.id, address: f.ioApic.address, gsiBase: f.ioApic.gsiBase });
  entries.push({ type: 'interruptOverride', bus: 0, source: 0, gsi: f.ioApic.gsiBase + 2, flags: intiFlags('conforms', 'conforms') });
  entries.push({ type: 'interruptOverride', bus: 0, source: f.pm.sciIrq, gsi: f.ioApic.gsiBase + f.pm.sciIrq, flags: intiFlags('high', 'level') });
  for (const irq of pciIrqs(f)) entries.push({ type: 'interruptOverride', bus: 0, source: irq, gsi: f.ioApic.gsiBase + irq, flags: intiFlags('low', 'level') });
  entries.push({ type: 'localApicNmi', processorUid: 0xff, flags: 0, lint: 1 });
  return { kind: 'madt', header: header(f, 'APIC', 5), localApicAddress: f.localApicAddress, flags: MADT_PCAT_COMPAT, entries };
}

export function buildMcfg(f: ResolvedFacts): Mcfg | undefined {
  const e = f.ecam;
  if (e === undefined) return undefined;
  return { kind: 'mcfg', header: header(f, 'MCFG', 1), allocations: [{ baseAddress: e.base, segment: e.segment, startBus: e.startBus, endBus: e.endBus }] };
}

export function buildHpet(f: ResolvedFacts): Hpet | undefined {
  const h = f.hpet;
  if (h === undefined) return undefined;
  return {
    kind: 'hpet',
    header: header(f, 'HPET', 1),
    eventTimerBlockId: h.eventTimerBlockId,
    baseAddress: { spaceId: 0, bitWidth: 0, bitOffset: 0, accessSize: 0, address: h.address },
    hpetNumber: 0,
    minimumTick: h.minimumTick,
    pageProtection: 0,
  };
}
