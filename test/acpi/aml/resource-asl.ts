import type { AddressSpaceFlags, InterruptMode, Resource } from '../../../src/hw/acpi/resources/types.js';
import type { AslDescriptor } from './asl.js';

/**
 * What iasl's disassembler prints for a descriptor (ACPI 6.5 section 19.6 macro names and
 * keywords), derived from hvmpt's typed decode. The resource tests compare this with the ASL
 * iasl wrote for the same bytes: macro, every number, every keyword, every string.
 */

/** Keywords of the resource macros that the comparison looks at; descriptor names (_Y01) are not among them. */
export const KEYWORDS = new Set([
  'Edge', 'Level', 'ActiveHigh', 'ActiveLow', 'ActiveBoth', 'Exclusive', 'Shared', 'ExclusiveAndWake', 'SharedAndWake',
  'Compatibility', 'TypeA', 'TypeB', 'TypeF', 'BusMaster', 'NotBusMaster', 'Transfer8', 'Transfer8_16', 'Transfer16',
  'Decode16', 'Decode10', 'ReadWrite', 'ReadOnly', 'ResourceConsumer', 'ResourceProducer', 'MinFixed', 'MinNotFixed',
  'MaxFixed', 'MaxNotFixed', 'PosDecode', 'SubDecode', 'Cacheable', 'NonCacheable', 'WriteCombining', 'Prefetchable',
  'AddressRangeMemory', 'AddressRangeReserved', 'AddressRangeACPI', 'AddressRangeNVS', 'TypeStatic', 'TypeTranslation',
  'DenseTranslation', 'SparseTranslation', 'EntireRange', 'ISAOnlyRanges', 'NonISAOnlyRanges',
  'SystemIO', 'SystemMemory', 'FFixedHW', 'PCC', 'PullDefault', 'PullUp', 'PullDown', 'PullNone',
  'IoRestrictionNone', 'IoRestrictionInputOnly', 'IoRestrictionOutputOnly', 'IoRestrictionNoneAndPreserve',
  'ControllerInitiated', 'DeviceInitiated', 'AddressingMode7Bit', 'AddressingMode10Bit',
  'Width8bit', 'Width16bit', 'Width32bit', 'Width64bit', 'Width128bit', 'Width256bit',
]);

function mode(m: InterruptMode): string[] {
  return [m.edge ? 'Edge' : 'Level', m.activeLow ? 'ActiveLow' : 'ActiveHigh', (m.shared ? 'Shared' : 'Exclusive') + (m.wake ? 'AndWake' : '')];
}

function space(width: 16 | 32 | 64 | 'Extended', f: AddressSpaceFlags): { macro: string; words: string[]; numbers?: bigint[] } {
  const prefix = width === 16 ? 'Word' : width === 32 ? 'DWord' : width === 64 ? 'QWord' : 'Extended';
  switch (f.kind) {
    case 'memory':
      return {
        macro: `${prefix}Memory`,
        words: [
          { noncacheable: 'NonCacheable', cacheable: 'Cacheable', writecombining: 'WriteCombining', prefetchable: 'Prefetchable' }[f.caching],
          f.writable ? 'ReadWrite' : 'ReadOnly',
          { memory: 'AddressRangeMemory', reserved: 'AddressRangeReserved', acpi: 'AddressRangeACPI', nvs: 'AddressRangeNVS' }[f.rangeType],
          f.typeTranslation ? 'TypeTranslation' : 'TypeStatic',
        ],
      };
    case 'io':
      return {
        macro: `${prefix}IO`,
        words: [
          { nonisa: 'NonISAOnlyRanges', isa: 'ISAOnlyRanges', entire: 'EntireRange' }[f.ranges],
          f.typeTranslation ? 'TypeTranslation' : 'TypeStatic',
          f.sparse ? 'SparseTranslation' : 'DenseTranslation',
        ],
      };
    case 'bus':
      return { macro: `${prefix}BusNumber`, words: [] };
    case 'other':
      return { macro: `${prefix}Space`, words: [], numbers: [BigInt(f.resourceType), BigInt(f.flags)] };
  }
}

const consumer = (bit: boolean) => (bit ? 'ResourceConsumer' : 'ResourceProducer');
const sharing = (bit: boolean) => (bit ? 'Shared' : 'Exclusive');

const SPACE_ID: Record<number, string> = { 0: 'SystemMemory', 1: 'SystemIO', 10: 'PCC', 0x7f: 'FFixedHW' };
const PULL = ['PullDefault', 'PullUp', 'PullDown', 'PullNone'];
const IO_RESTRICTION = ['IoRestrictionNone', 'IoRestrictionInputOnly', 'IoRestrictionOutputOnly', 'IoRestrictionNoneAndPreserve'];

function vendorNumbers(data: Uint8Array): bigint[] {
  return data.length === 0 ? [] : [BigInt(data.length), ...[...data].map(BigInt)];
}

export function expectedAsl(r: Resource): AslDescriptor {
  const n = (...v: Array<number | bigint>) => v.map((x) => BigInt(x));
  switch (r.type) {
    case 'Irq':
      return r.mode === undefined
        ? { macro: 'IRQNoFlags', numbers: n(...r.interrupts), words: [], strings: [] }
        : { macro: 'IRQ', numbers: n(...r.interrupts), words: mode(r.mode), strings: [] };
    case 'Dma':
      return {
        macro: 'DMA',
        numbers: n(...r.channels),
        words: [['Compatibility', 'TypeA', 'TypeB', 'TypeF'][r.speed]!, r.busMaster ? 'BusMaster' : 'NotBusMaster', ['Transfer8', 'Transfer8_16', 'Transfer16'][r.transferSize]!],
        strings: [],
      };
    case 'StartDependentFn':
      return r.priority === undefined
        ? { macro: 'StartDependentFnNoPri', numbers: [], words: [], strings: [] }
        : { macro: 'StartDependentFn', numbers: n(r.priority.compatibility, r.priority.performance), words: [], strings: [] };
    case 'EndDependentFn':
      return { macro: 'EndDependentFn', numbers: [], words: [], strings: [] };
    case 'Io':
      return { macro: 'IO', numbers: n(r.min, r.max, r.alignment, r.length), words: [r.decode16 ? 'Decode16' : 'Decode10'], strings: [] };
    case 'FixedIo':
      return { macro: 'FixedIO', numbers: n(r.base, r.length), words: [], strings: [] };
    case 'FixedMemory32':
      return { macro: 'Memory32Fixed', numbers: n(r.base, r.length), words: [r.writable ? 'ReadWrite' : 'ReadOnly'], strings: [] };
    case 'Memory32':
      return { macro: 'Memory32', numbers: n(r.min, r.max, r.alignment, r.length), words: [r.writable ? 'ReadWrite' : 'ReadOnly'], strings: [] };
    case 'GenericRegister': {
      const id = SPACE_ID[r.spaceId];
      return {
        macro: 'Register',
        numbers: n(...(id === undefined ? [r.spaceId] : []), r.bitWidth, r.bitOffset, r.address, ...(r.accessSize === 0 ? [] : [r.accessSize])),
        words: id === undefined ? [] : [id],
        strings: [],
      };
    }
    case 'AddressSpace': {
      const s = space(r.width, r.space);
      const src = r.source === undefined ? [] : [r.source.index];
      return {
        macro: s.macro,
        numbers: [...n(r.granularity, r.min, r.max, r.translation, r.length, ...src), ...(s.numbers ?? [])],
        words: [
          r.producer ? 'ResourceProducer' : 'ResourceConsumer',
          r.minFixed ? 'MinFixed' : 'MinNotFixed',
          r.maxFixed ? 'MaxFixed' : 'MaxNotFixed',
          r.subtractive ? 'SubDecode' : 'PosDecode',
          ...s.words,
        ],
        strings: r.source === undefined ? [] : [r.source.name],
      };
    }
    case 'ExtendedInterrupt':
      return {
        macro: 'Interrupt',
        numbers: n(...(r.source === undefined ? [] : [r.source.index]), ...r.interrupts),
        words: [r.producer ? 'ResourceProducer' : 'ResourceConsumer', ...mode(r.mode)],
        strings: r.source === undefined ? [] : [r.source.name],
      };
    case 'GpioInt': {
      const polarity = ['ActiveHigh', 'ActiveLow', 'ActiveBoth'][(r.intFlags >> 1) & 3]!;
      const share = ((r.intFlags & 8) !== 0 ? 'Shared' : 'Exclusive') + ((r.intFlags & 0x10) !== 0 ? 'AndWake' : '');
      return {
        macro: 'GpioInt',
        numbers: n(r.debounceTimeout, r.source.index, ...vendorNumbers(r.vendorData), ...r.pins),
        words: [(r.intFlags & 1) !== 0 ? 'Edge' : 'Level', polarity, share, PULL[r.pinConfig] ?? '', (r.flags & 1) !== 0 ? 'ResourceConsumer' : 'ResourceProducer'],
        strings: [r.source.name],
      };
    }
    case 'GpioIo':
      return {
        macro: 'GpioIo',
        numbers: n(r.debounceTimeout, r.driveStrength, r.source.index, ...vendorNumbers(r.vendorData), ...r.pins),
        words: [
          (r.intFlags & 8) !== 0 ? 'Shared' : 'Exclusive',
          PULL[r.pinConfig] ?? '',
          IO_RESTRICTION[r.intFlags & 3]!,
          (r.flags & 1) !== 0 ? 'ResourceConsumer' : 'ResourceProducer',
        ],
        strings: [r.source.name],
      };
    case 'I2cSerialBus':
      return {
        macro: 'I2cSerialBusV2',
        numbers: n(r.address, r.speed, r.source.index, ...vendorNumbers(r.vendorData)),
        words: [
          (r.flags & 1) !== 0 ? 'DeviceInitiated' : 'ControllerInitiated',
          (r.typeFlags & 1) !== 0 ? 'AddressingMode10Bit' : 'AddressingMode7Bit',
          (r.flags & 2) !== 0 ? 'ResourceConsumer' : 'ResourceProducer',
          (r.flags & 4) !== 0 ? 'Shared' : 'Exclusive',
        ],
        strings: [r.source.name],
      };
    case 'SpiSerialBus':
      return {
        macro: 'SpiSerialBusV2',
        numbers: n(r.deviceSelection, r.dataBits, r.speed, r.source.index, ...vendorNumbers(r.vendorData)),
        words: [
          (r.flags & 1) !== 0 ? 'DeviceInitiated' : 'ControllerInitiated',
          (r.flags & 2) !== 0 ? 'ResourceConsumer' : 'ResourceProducer',
          (r.flags & 4) !== 0 ? 'Shared' : 'Exclusive',
        ],
        strings: [r.source.name],
      };
    case 'UartSerialBus':
      return {
        macro: 'UartSerialBusV2',
        numbers: n(r.baudRate, r.lines, r.rxFifo, r.txFifo, r.source.index, ...vendorNumbers(r.vendorData)),
        words: [
          (r.flags & 2) !== 0 ? 'ResourceConsumer' : 'ResourceProducer',
          (r.flags & 4) !== 0 ? 'Shared' : 'Exclusive',
        ],
        strings: [r.source.name],
      };
    case 'FixedDma':
      return { macro: 'FixedDMA', numbers: n(r.requestLine, r.channel), words: [`Width${8 << r.width}bit`], strings: [] };
    case 'VendorShort':
    case 'VendorLong':
      return { macro: r.type, numbers: [...r.data].map(BigInt), words: [], strings: [] };
    case 'Memory24':
      return { macro: 'Memory24', numbers: n(r.min, r.max, r.alignment, r.length), words: [r.writable ? 'ReadWrite' : 'ReadOnly'], strings: [] };
    case 'ExtendedAddressSpace': {
      const s = space('Extended', r.space);
      return {
        macro: s.macro,
        numbers: [...n(r.granularity, r.min, r.max, r.translation, r.length, r.typeAttributes), ...(s.numbers ?? [])],
        words: [
          consumer(!r.producer),
          r.minFixed ? 'MinFixed' : 'MinNotFixed',
          r.maxFixed ? 'MaxFixed' : 'MaxNotFixed',
          r.subtractive ? 'SubDecode' : 'PosDecode',
          ...s.words,
        ],
        strings: [],
      };
    }
    case 'PinFunction':
      return {
        macro: 'PinFunction',
        numbers: n(r.functionNumber, r.source.index, ...r.pins, ...vendorNumbers(r.vendorData)),
        words: [sharing((r.flags & 1) !== 0), PULL[r.pull] ?? '', 'ResourceConsumer'],
        strings: [r.source.name],
      };
    case 'PinConfig':
      return {
        macro: 'PinConfig',
        numbers: n(r.configType, r.configValue, r.source.index, ...r.pins, ...vendorNumbers(r.vendorData)),
        words: [sharing((r.flags & 1) !== 0), consumer((r.flags & 2) !== 0)],
        strings: [r.source.name],
      };
    case 'PinGroup':
      return { macro: 'PinGroup', numbers: n(...r.pins, ...vendorNumbers(r.vendorData)), words: [consumer((r.flags & 1) !== 0)], strings: [r.label] };
    case 'PinGroupFunction':
      return {
        macro: 'PinGroupFunction',
        numbers: n(r.functionNumber, r.source.index, ...vendorNumbers(r.vendorData)),
        words: [sharing((r.flags & 1) !== 0), consumer((r.flags & 2) !== 0)],
        strings: [r.source.name, r.label],
      };
    case 'PinGroupConfig':
      return {
        macro: 'PinGroupConfig',
        numbers: n(r.configType, r.configValue, r.source.index, ...vendorNumbers(r.vendorData)),
        words: [sharing((r.flags & 1) !== 0), consumer((r.flags & 2) !== 0)],
        strings: [r.source.name, r.label],
      };
    default:
      return { macro: r.type, numbers: [], words: [], strings: [] };
  }
}

/** Sorts for a multiset comparison and keeps only the words KEYWORDS knows. */
export function normalize(d: AslDescriptor): AslDescriptor {
  return {
    macro: d.macro,
    numbers: [...d.numbers].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    words: d.words.filter((w) => KEYWORDS.has(w)).sort(),
    strings: [...d.strings].sort(),
  };
}

/** ACPICA's disassembler prints a Buffer as a ResourceTemplate only under these conditions (dmresrc.c). */
export function iaslShowsAsTemplate(size: bigint | undefined, data: Uint8Array, decoded: { resources: readonly Resource[]; end?: unknown; trailing?: unknown } | undefined): boolean {
  return (
    decoded !== undefined &&
    data.length > 2 &&
    size === BigInt(data.length) &&
    decoded.end !== undefined &&
    decoded.trailing === undefined &&
    decoded.resources.every((r) => r.type !== 'Unknown')
  );
}

/**
 * iasl closes a list of dependent functions with `EndDependentFn ()` even when the bytes end
 * without one; drop that one when hvmpt's decode (of the real bytes) has none.
 */
export function withoutImpliedEnd(asl: AslDescriptor[], mine: readonly Resource[]): AslDescriptor[] {
  const last = asl[asl.length - 1];
  const mineEnds = mine.some((r) => r.type === 'EndDependentFn');
  return last?.macro === 'EndDependentFn' && !mineEnds ? asl.slice(0, -1) : asl;
}
