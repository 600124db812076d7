import { ByteReader, ByteWriter, latin1Decode, latin1Encode, reserved, struct, text, u16, u32, u64, u8, walkSubtables } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { trailingOf } from './subtables.js';

/**
 * IVRS: AMD-Vi IOMMUs. Each IVHD block (type 10h; 11h and 40h carry the EFR image) describes
 * one IOMMU and lists the devices it translates as device entries; IVMD blocks (20h-22h)
 * describe memory that must be identity-mapped or excluded. Entry sizes follow the type's top
 * two bits (4, 8, 16 or 32 bytes), except type F0h (ACPI HID device), which is variable.
 */
export interface Ivrs {
  kind: 'ivrs';
  header: TableHeader;
  /** Virtualization info: address sizes, ATS reserved, EFR supported. */
  ivInfo: number;
  reserved?: bigint;
  blocks: IvrsBlock[];
}

export type IvrsBlock = IvrsIvhd | IvrsIvmd | IvrsUnknownBlock;

/** IVHD type 10h (legacy layout) or 11h/40h (with EFR image). */
export interface IvrsIvhd {
  type: 'ivhd';
  /** 0x10, 0x11 or 0x40. */
  blockType: number;
  flags: number;
  /** The IOMMU's own PCI requester ID. */
  deviceId: number;
  capabilityOffset: number;
  baseAddress: bigint;
  segment: number;
  /** MSI number and unit ID. */
  iommuInfo: number;
  /** Type 10h: IOMMU feature reporting. Type 11h/40h: IOMMU attributes. */
  featureInfo: number;
  /** Type 11h/40h only: the EFR register image. */
  efrImage?: bigint;
  /** Type 11h/40h only. */
  reserved?: bigint;
  entries: IvhdEntry[];
}

/** IVMD types 20h (all devices), 21h (one device), 22h (a device range). */
export interface IvrsIvmd {
  type: 'ivmd';
  blockType: number;
  /** Bit 0 unity, 1 read, 2 write, 3 exclusion range. */
  flags: number;
  deviceId: number;
  /** Type 22h: the range's last device ID. */
  auxData: number;
  reserved?: bigint;
  startAddress: bigint;
  memoryLength: bigint;
  trailing?: Uint8Array;
}

export interface IvrsUnknownBlock {
  type: 'unknown';
  blockType: number;
  flags: number;
  deviceId: number;
  /** Everything after the 6-byte block header. */
  data: Uint8Array;
}

/** IVHD device entries. `entryType` keeps the exact type code. */
export type IvhdEntry = IvhdDevice4 | IvhdAlias | IvhdSpecial | IvhdDevice8 | IvhdAcpiHid | IvhdRawEntry;

/** 4-byte entries: 0 pad, 1 all, 2 select, 3 range start, 4 range end (and reserved 5-3Fh). */
export interface IvhdDevice4 {
  form: 'device4';
  entryType: number;
  deviceId: number;
  dataSetting: number;
}
/** 42h alias select, 43h alias range start: requests appear with `sourceDeviceId`. */
export interface IvhdAlias {
  form: 'alias';
  entryType: number;
  deviceId: number;
  dataSetting: number;
  reserved1?: number;
  sourceDeviceId: number;
  reserved2?: number;
}
/** 48h special device: an IOAPIC (variety 1) or HPET (2) with its handle. */
export interface IvhdSpecial {
  form: 'special';
  entryType: number;
  deviceId: number;
  dataSetting: number;
  handle: number;
  sourceDeviceId: number;
  variety: number;
}
/** Other 8-byte entries: 46h/47h extended select/range (data = extended data), 40h pad, reserved. */
export interface IvhdDevice8 {
  form: 'device8';
  entryType: number;
  deviceId: number;
  dataSetting: number;
  data: number;
}
/** F0h: a device named by ACPI _HID/_CID/_UID rather than a PCI ID. */
export interface IvhdAcpiHid {
  form: 'acpiHid';
  entryType: number;
  deviceId: number;
  dataSetting: number;
  /** Eight bytes as text ("AMDI0020"), kept byte for byte. */
  hid: string;
  cid: string;
  /** 0 none, 1 integer, 2 string. */
  uidFormat: number;
  /** The UID bytes as text (one character per byte); its length is computed. */
  uid: string;
}
/** 16- and 32-byte entries (reserved types): kept verbatim after the type byte. */
export interface IvhdRawEntry {
  form: 'raw';
  entryType: number;
  data: Uint8Array;
}

export const IVHD_ENTRY_LABELS: Readonly<Record<number, string>> = {
  0x00: 'Pad',
  0x01: 'All',
  0x02: 'Select',
  0x03: 'Start of Range',
  0x04: 'End of Range',
  0x40: 'Pad (8 bytes)',
  0x42: 'Alias Select',
  0x43: 'Alias Start of Range',
  0x46: 'Extended Select',
  0x47: 'Extended Start of Range',
  0x48: 'Special Device',
  0xf0: 'ACPI HID Named Device',
};

export const IVRS_BLOCK_LABELS: Readonly<Record<number, string>> = {
  0x10: 'IVHD (type 10h)',
  0x11: 'IVHD (type 11h)',
  0x40: 'IVHD (type 40h, mixed format)',
  0x20: 'IVMD (all devices)',
  0x21: 'IVMD (one device)',
  0x22: 'IVMD (device range)',
};

const IVHD_TYPES = new Set([0x10, 0x11, 0x40]);
const IVMD_TYPES = new Set([0x20, 0x21, 0x22]);
const BLOCK_HEADER = 6;
const BLOCKS_AT = HEADER_SIZE + 12;

const IVHD_COMMON = struct<Pick<IvrsIvhd, 'capabilityOffset' | 'baseAddress' | 'segment' | 'iommuInfo' | 'featureInfo'>>({
  capabilityOffset: u16,
  baseAddress: u64,
  segment: u16,
  iommuInfo: u16,
  featureInfo: u32,
});
const IVHD_EFR = struct<Pick<IvrsIvhd, 'efrImage' | 'reserved'>>({ efrImage: u64, reserved: reserved(u64) });
const IVMD = struct<Omit<IvrsIvmd, 'type' | 'blockType' | 'flags' | 'deviceId' | 'trailing'>>({
  auxData: u16,
  reserved: reserved(u64),
  startAddress: u64,
  memoryLength: u64,
});
const ALIAS = struct<Pick<IvhdAlias, 'reserved1' | 'sourceDeviceId' | 'reserved2'>>({ reserved1: reserved(u8), sourceDeviceId: u16, reserved2: reserved(u8) });
const SPECIAL = struct<Pick<IvhdSpecial, 'handle' | 'sourceDeviceId' | 'variety'>>({ handle: u8, sourceDeviceId: u16, variety: u8 });
const HID_FIXED = 22;

/** Bytes of a device entry of this type, or 'hid' for the variable F0h form. */
export function ivhdEntrySize(entryType: number): number | 'hid' {
  if (entryType === 0xf0) return 'hid';
  return 4 << (entryType >> 6);
}

function decodeEntries(r: ByteReader, start: number, end: number, what: string): IvhdEntry[] {
  const entries: IvhdEntry[] = [];
  let at = start;
  while (at < end) {
    const entryType = r.u8(at);
    const sized = ivhdEntrySize(entryType);
    let size: number;
    if (sized === 'hid') {
      if (at + HID_FIXED > end) r.fail(at, `${what} ACPI HID entry needs ${HID_FIXED} bytes, only ${end - at} left in the block`);
      size = HID_FIXED + r.u8(at + 21);
    } else {
      size = sized;
    }
    if (at + size > end) r.fail(at, `${what} device entry type 0x${entryType.toString(16)} needs ${size} bytes, only ${end - at} left in the block`);
    entries.push(decodeEntry(r, at, size, entryType));
    at += size;
  }
  return entries;
}

function decodeEntry(r: ByteReader, at: number, size: number, entryType: number): IvhdEntry {
  if (size === 4) return { form: 'device4', entryType, deviceId: r.u16(at + 1), dataSetting: r.u8(at + 3) };
  if (size > 8 && entryType !== 0xf0) return { form: 'raw', entryType, data: r.copy(at + 1, at + size) };
  const head = { entryType, deviceId: r.u16(at + 1), dataSetting: r.u8(at + 3) };
  if (entryType === 0x42 || entryType === 0x43) return { form: 'alias', ...head, ...ALIAS.decode(r, at + 4, at + 8, 'alias entry').value };
  if (entryType === 0x48) return { form: 'special', ...head, ...SPECIAL.decode(r, at + 4, at + 8, 'special entry').value };
  if (entryType === 0xf0) {
    return {
      form: 'acpiHid',
      ...head,
      hid: latin1Decode(r.bytes, at + 4, at + 12),
      cid: latin1Decode(r.bytes, at + 12, at + 20),
      uidFormat: r.u8(at + 20),
      uid: latin1Decode(r.bytes, at + HID_FIXED, at + size),
    };
  }
  return { form: 'device8', ...head, data: r.u32(at + 4) };
}

function encodeEntry(w: ByteWriter, e: IvhdEntry, path: string): void {
  const note = IVHD_ENTRY_LABELS[e.entryType] ?? 'reserved';
  w.put(u8, e.entryType, path, 'entryType', note);
  const sized = ivhdEntrySize(e.entryType);
  const expected = e.form === 'raw' ? 'raw' : e.form === 'acpiHid' ? 'hid' : e.form === 'device4' ? 4 : 8;
  const fits = sized === 'hid' ? expected === 'hid' : expected === 'raw' ? sized > 8 : expected === sized;
  if (!fits) w.fail(`${path}.entryType`, `type 0x${e.entryType.toString(16)} does not suit a ${e.form} entry`);
  if (e.form === 'raw') {
    if (sized !== 'hid' && e.data.length !== sized - 1) w.fail(`${path}.data`, `type 0x${e.entryType.toString(16)} needs ${sized - 1} data bytes, got ${e.data.length}`);
    w.putBytes(e.data, path, 'data');
    return;
  }
  w.put(u16, e.deviceId, path, 'deviceId');
  w.put(u8, e.dataSetting, path, 'dataSetting');
  switch (e.form) {
    case 'device4':
      return;
    case 'alias':
      return ALIAS.encode(w, e, path);
    case 'special':
      return SPECIAL.encode(w, e, path);
    case 'device8':
      return w.put(u32, e.data, path, 'data');
    case 'acpiHid': {
      w.put(text(8, '\0'), e.hid, path, 'hid');
      w.put(text(8, '\0'), e.cid, path, 'cid');
      w.put(u8, e.uidFormat, path, 'uidFormat');
      const uid = latin1Encode(e.uid);
      if (uid === undefined) w.fail(`${path}.uid`, 'has a character that is not one byte');
      w.put(u8, uid.length, path, 'uidLength');
      w.putBytes(uid, path, 'uid');
      return;
    }
  }
}

function decodeBlock(r: ByteReader, at: number, length: number, index: number): IvrsBlock {
  const blockType = r.u8(at);
  const flags = r.u8(at + 1);
  const deviceId = r.u16(at + 4);
  const end = at + length;
  const start = at + BLOCK_HEADER;
  const what = `IVRS block ${index} (${IVRS_BLOCK_LABELS[blockType] ?? `type 0x${blockType.toString(16)}`})`;
  if (IVHD_TYPES.has(blockType)) {
    const common = IVHD_COMMON.decode(r, start, end, what);
    let next = common.next;
    let efr: Partial<Pick<IvrsIvhd, 'efrImage' | 'reserved'>> = {};
    if (blockType !== 0x10) {
      const d = IVHD_EFR.decode(r, next, end, what);
      efr = d.value;
      next = d.next;
    }
    return { type: 'ivhd', blockType, flags, deviceId, ...common.value, ...efr, entries: decodeEntries(r, next, end, what) };
  }
  if (IVMD_TYPES.has(blockType)) {
    const { value, next } = IVMD.decode(r, start, end, what);
    const out: IvrsIvmd = { type: 'ivmd', blockType, flags, deviceId, ...value };
    const trailing = trailingOf(r, next, end);
    if (trailing !== undefined) out.trailing = trailing;
    return out;
  }
  return { type: 'unknown', blockType, flags, deviceId, data: r.copy(start, end) };
}

function encodeBlock(w: ByteWriter, b: IvrsBlock, path: string): void {
  const start = w.pos;
  w.put(u8, b.blockType, path, 'blockType', IVRS_BLOCK_LABELS[b.blockType] ?? 'unknown');
  w.put(u8, b.flags, path, 'flags');
  const lengthAt = w.pos;
  w.put(u16, 0, path, 'length');
  w.put(u16, b.deviceId, path, 'deviceId');
  switch (b.type) {
    case 'ivhd':
      if (!IVHD_TYPES.has(b.blockType)) w.fail(`${path}.blockType`, `0x${b.blockType.toString(16)} is not an IVHD type (10h, 11h, 40h)`);
      IVHD_COMMON.encode(w, b, path);
      if (b.blockType !== 0x10) IVHD_EFR.encode(w, { efrImage: b.efrImage ?? 0n, ...(b.reserved === undefined ? {} : { reserved: b.reserved }) }, path);
      b.entries.forEach((e, i) => encodeEntry(w, e, `${path}.entries[${i}]`));
      break;
    case 'ivmd':
      if (!IVMD_TYPES.has(b.blockType)) w.fail(`${path}.blockType`, `0x${b.blockType.toString(16)} is not an IVMD type (20h-22h)`);
      IVMD.encode(w, b, path);
      if (b.trailing !== undefined) w.putBytes(b.trailing, path, 'trailing');
      break;
    case 'unknown':
      w.putBytes(b.data, path, 'data');
      break;
  }
  const length = w.pos - start;
  if (length > 0xffff) w.fail(path, `is ${length} bytes, more than its 16-bit length field can say`);
  w.patch(lengthAt, u16, length, `${path}.length`);
}

export function decodeIvrs(r: ByteReader, header: TableHeader): Ivrs {
  if (r.length < BLOCKS_AT) r.fail(HEADER_SIZE, `IVRS needs ${BLOCKS_AT} bytes before its blocks, table has ${r.length}`);
  const blocks: IvrsBlock[] = [];
  walkSubtables(r, BLOCKS_AT, r.length, { headerSize: BLOCK_HEADER, readLength: (rr, at) => rr.u16(at + 2), what: 'IVRS block' }, (at, length, i) => {
    blocks.push(decodeBlock(r, at, length, i));
  });
  return { kind: 'ivrs', header, ivInfo: r.u32(HEADER_SIZE), reserved: r.u64(HEADER_SIZE + 4), blocks };
}

export function encodeIvrsBody(w: ByteWriter, t: Ivrs): void {
  w.put(u32, t.ivInfo, '', 'ivInfo');
  w.put(u64, t.reserved ?? 0n, '', 'reserved');
  t.blocks.forEach((b, i) => encodeBlock(w, b, `blocks[${i}]`));
}
