import { ByteReader, ByteWriter, type GenericAddress, gas, reserved, struct, tail, u16, u32, u64, u8 } from './binary.js';
import type { TableHeader } from './header.js';
import { decodeStructTable, encodeStructTable } from './subtables.js';

/**
 * FADT ("FACP"): fixed hardware registers, the DSDT and FACS addresses, boot flags. Its length
 * grew with every ACPI revision — 116 bytes (1.0), 129 (2.0 drafts), 244 (2.0-4.0), 268 (5.0),
 * 276 (6.0+) — so every field after `flags` is present only when the table's length covers
 * it; a model built by hand gets the length of the last field it sets. Bytes past the last
 * whole field are kept in `trailing`.
 */
export interface Fadt {
  kind: 'fadt';
  header: TableHeader;
  /** Physical address of the FACS (32-bit). */
  firmwareCtrl: number;
  /** Physical address of the DSDT (32-bit). */
  dsdt: number;
  /** INT_MODEL in ACPI 1.0, reserved since. */
  model?: number;
  /** 0 unspecified, 1 desktop, 2 mobile, 3 workstation, 4 enterprise server, … */
  preferredPmProfile: number;
  sciInterrupt: number;
  smiCommand: number;
  acpiEnable: number;
  acpiDisable: number;
  s4biosRequest: number;
  pstateControl: number;
  pm1aEventBlock: number;
  pm1bEventBlock: number;
  pm1aControlBlock: number;
  pm1bControlBlock: number;
  pm2ControlBlock: number;
  pmTimerBlock: number;
  gpe0Block: number;
  gpe1Block: number;
  pm1EventLength: number;
  pm1ControlLength: number;
  pm2ControlLength: number;
  pmTimerLength: number;
  gpe0BlockLength: number;
  gpe1BlockLength: number;
  gpe1Base: number;
  cstControl: number;
  c2Latency: number;
  c3Latency: number;
  flushSize: number;
  flushStride: number;
  dutyOffset: number;
  dutyWidth: number;
  dayAlarm: number;
  monthAlarm: number;
  century: number;
  /** IA-PC boot architecture flags (reserved in ACPI 1.0). */
  iapcBootArch: number;
  reserved?: number;
  flags: number;
  resetRegister?: GenericAddress;
  resetValue?: number;
  /** Reserved before ACPI 5.1. */
  armBootArch?: number;
  minorRevision?: number;
  xFirmwareCtrl?: bigint;
  xDsdt?: bigint;
  xPm1aEventBlock?: GenericAddress;
  xPm1bEventBlock?: GenericAddress;
  xPm1aControlBlock?: GenericAddress;
  xPm1bControlBlock?: GenericAddress;
  xPm2ControlBlock?: GenericAddress;
  xPmTimerBlock?: GenericAddress;
  xGpe0Block?: GenericAddress;
  xGpe1Block?: GenericAddress;
  sleepControlRegister?: GenericAddress;
  sleepStatusRegister?: GenericAddress;
  hypervisorVendorId?: bigint;
  trailing?: Uint8Array;
}

/** FADT `flags` bits used when building guests' tables. */
export const FadtFlag = {
  wbinvd: 1 << 0,
  wbinvdFlush: 1 << 1,
  procC1: 1 << 2,
  pLvl2Up: 1 << 3,
  powerButton: 1 << 4,
  sleepButton: 1 << 5,
  fixedRtc: 1 << 6,
  rtcS4: 1 << 7,
  tmrValExt: 1 << 8,
  dockCap: 1 << 9,
  resetRegSup: 1 << 10,
  sealedCase: 1 << 11,
  headless: 1 << 12,
  cpuSwSleep: 1 << 13,
  pciExpWak: 1 << 14,
  usePlatformClock: 1 << 15,
  s4RtcStsValid: 1 << 16,
  remotePowerOnCapable: 1 << 17,
  forceApicClusterModel: 1 << 18,
  forceApicPhysicalDestinationMode: 1 << 19,
  hwReducedAcpi: 1 << 20,
  lowPowerS0IdleCapable: 1 << 21,
} as const;

/** IA-PC boot architecture flags. */
export const FadtBootArch = {
  legacyDevices: 1 << 0,
  i8042: 1 << 1,
  vgaNotPresent: 1 << 2,
  msiNotSupported: 1 << 3,
  pcieAspmControls: 1 << 4,
  cmosRtcNotPresent: 1 << 5,
} as const;

type FadtFields = Omit<Fadt, 'kind' | 'header' | 'trailing'>;

export const FADT_BODY = struct<FadtFields>({
  firmwareCtrl: u32,
  dsdt: u32,
  model: reserved(u8),
  preferredPmProfile: u8,
  sciInterrupt: u16,
  smiCommand: u32,
  acpiEnable: u8,
  acpiDisable: u8,
  s4biosRequest: u8,
  pstateControl: u8,
  pm1aEventBlock: u32,
  pm1bEventBlock: u32,
  pm1aControlBlock: u32,
  pm1bControlBlock: u32,
  pm2ControlBlock: u32,
  pmTimerBlock: u32,
  gpe0Block: u32,
  gpe1Block: u32,
  pm1EventLength: u8,
  pm1ControlLength: u8,
  pm2ControlLength: u8,
  pmTimerLength: u8,
  gpe0BlockLength: u8,
  gpe1BlockLength: u8,
  gpe1Base: u8,
  cstControl: u8,
  c2Latency: u16,
  c3Latency: u16,
  flushSize: u16,
  flushStride: u16,
  dutyOffset: u8,
  dutyWidth: u8,
  dayAlarm: u8,
  monthAlarm: u8,
  century: u8,
  iapcBootArch: u16,
  reserved: reserved(u8),
  flags: u32,
  resetRegister: tail(gas),
  resetValue: tail(u8),
  armBootArch: tail(u16),
  minorRevision: tail(u8),
  xFirmwareCtrl: tail(u64),
  xDsdt: tail(u64),
  xPm1aEventBlock: tail(gas),
  xPm1bEventBlock: tail(gas),
  xPm1aControlBlock: tail(gas),
  xPm1bControlBlock: tail(gas),
  xPm2ControlBlock: tail(gas),
  xPmTimerBlock: tail(gas),
  xGpe0Block: tail(gas),
  xGpe1Block: tail(gas),
  sleepControlRegister: tail(gas),
  sleepStatusRegister: tail(gas),
  hypervisorVendorId: tail(u64),
});

/** The FADT lengths of the ACPI revisions. */
export const FADT_LENGTH = { acpi1: 116, acpi2: 244, acpi5: 268, acpi6: 276 } as const;

export function decodeFadt(r: ByteReader, header: TableHeader): Fadt {
  return { kind: 'fadt', header, ...decodeStructTable(FADT_BODY, r, 'FADT') };
}

export function encodeFadtBody(w: ByteWriter, t: Fadt): void {
  encodeStructTable(FADT_BODY, w, t);
}

/** The DSDT's address as an OS reads it: X_DSDT when set, else DSDT. */
export function fadtDsdtAddress(f: Fadt): bigint {
  return f.xDsdt !== undefined && f.xDsdt !== 0n ? f.xDsdt : BigInt(f.dsdt);
}

/** The FACS's address as an OS reads it: X_FIRMWARE_CTRL when set, else FIRMWARE_CTRL. */
export function fadtFacsAddress(f: Fadt): bigint {
  return f.xFirmwareCtrl !== undefined && f.xFirmwareCtrl !== 0n ? f.xFirmwareCtrl : BigInt(f.firmwareCtrl);
}
