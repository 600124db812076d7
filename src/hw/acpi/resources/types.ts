/**
 * Resource descriptors (ACPI 6.5 section 6.4): what _CRS, _PRS and _SRS buffers hold, one
 * typed member per descriptor kind, named after their ASL macros.
 *
 * Decoded descriptors re-encode byte for byte. When an original holds something the typed
 * fields do not (reserved bits set, a non-canonical layout of the offset-addressed
 * descriptors), `raw` keeps its bytes and the encoder writes those; drop `raw` after editing
 * such a descriptor's fields.
 */

interface Base {
  /** The original bytes, kept only when the typed fields cannot reproduce them. */
  readonly raw?: Uint8Array;
}

/** A ResourceSource: the index byte and the name of the device that owns the resource. */
export interface ResourceSource {
  readonly index: number;
  readonly name: string;
}

export interface InterruptMode {
  /** _HE: edge triggered (else level). */
  readonly edge: boolean;
  /** _LL: active low (else high). */
  readonly activeLow: boolean;
  /** _SHR: shared (else exclusive). */
  readonly shared: boolean;
  /** Wake capable. */
  readonly wake: boolean;
}

/** IRQ / IRQNoFlags: ISA interrupts 0-15. `mode` absent is the 2-byte IRQNoFlags form (edge, active high). */
export interface IrqResource extends Base {
  readonly type: 'Irq';
  readonly interrupts: readonly number[];
  readonly mode?: InterruptMode;
}

export interface DmaResource extends Base {
  readonly type: 'Dma';
  readonly channels: readonly number[];
  /** _TYP: 0 compatibility, 1 type A, 2 type B, 3 type F. */
  readonly speed: number;
  readonly busMaster: boolean;
  /** _SIZ: 0 8-bit only, 1 8 and 16-bit, 2 16-bit only. */
  readonly transferSize: number;
}

export interface StartDependentFnResource extends Base {
  readonly type: 'StartDependentFn';
  /** Absent: the 1-byte StartDependentFnNoPri form. Values 0 good, 1 acceptable, 2 sub-optimal. */
  readonly priority?: { readonly compatibility: number; readonly performance: number };
}

export interface EndDependentFnResource extends Base {
  readonly type: 'EndDependentFn';
}

export interface IoResource extends Base {
  readonly type: 'Io';
  /** Decode16 (all 16 address bits) or Decode10. */
  readonly decode16: boolean;
  readonly min: number;
  readonly max: number;
  readonly alignment: number;
  readonly length: number;
}

export interface FixedIoResource extends Base {
  readonly type: 'FixedIo';
  readonly base: number;
  readonly length: number;
}

export interface FixedDmaResource extends Base {
  readonly type: 'FixedDma';
  readonly requestLine: number;
  readonly channel: number;
  /** Transfer width code: 0 8-bit, 1 16, 2 32, 3 64, 4 128, 5 256. */
  readonly width: number;
}

export interface VendorShortResource extends Base {
  readonly type: 'VendorShort';
  readonly data: Uint8Array;
}

/** Memory24: values are address bits 8-23, as the descriptor and ASL hold them. */
export interface Memory24Resource extends Base {
  readonly type: 'Memory24';
  readonly writable: boolean;
  readonly min: number;
  readonly max: number;
  readonly alignment: number;
  readonly length: number;
}

export interface GenericRegisterResource extends Base {
  readonly type: 'GenericRegister';
  readonly spaceId: number;
  readonly bitWidth: number;
  readonly bitOffset: number;
  readonly accessSize: number;
  readonly address: bigint;
}

/** VendorLong: the bytes after the length (UUID sub-type, UUID and data, as ASL's VendorLong lists them). */
export interface VendorLongResource extends Base {
  readonly type: 'VendorLong';
  readonly data: Uint8Array;
}

export interface Memory32Resource extends Base {
  readonly type: 'Memory32';
  readonly writable: boolean;
  readonly min: number;
  readonly max: number;
  readonly alignment: number;
  readonly length: number;
}

export interface FixedMemory32Resource extends Base {
  readonly type: 'FixedMemory32';
  readonly writable: boolean;
  readonly base: number;
  readonly length: number;
}

/** Type-specific flags of a memory address space (ASL QWordMemory and friends). */
export interface MemoryFlags {
  readonly kind: 'memory';
  readonly writable: boolean;
  /** _MEM: non-cacheable, cacheable, write-combining, prefetchable. */
  readonly caching: 'noncacheable' | 'cacheable' | 'writecombining' | 'prefetchable';
  /** _MTP: AddressRangeMemory, Reserved, ACPI, NVS. */
  readonly rangeType: 'memory' | 'reserved' | 'acpi' | 'nvs';
  /** _TTP: the range is I/O on the primary side (TypeTranslation). */
  readonly typeTranslation: boolean;
}

export interface IoFlags {
  readonly kind: 'io';
  /** _RNG: 1 non-ISA only, 2 ISA only, 3 entire range. */
  readonly ranges: 'nonisa' | 'isa' | 'entire';
  /** _TTP: the range is memory on the primary side. */
  readonly typeTranslation: boolean;
  /** _TRS: sparse translation. */
  readonly sparse: boolean;
}

export interface BusFlags {
  readonly kind: 'bus';
}

/** Resource types 192-255 (vendor defined), with their flags byte as is. */
export interface OtherSpaceFlags {
  readonly kind: 'other';
  readonly resourceType: number;
  readonly flags: number;
}

export type AddressSpaceFlags = MemoryFlags | IoFlags | BusFlags | OtherSpaceFlags;

interface AddressSpaceCommon extends Base {
  readonly space: AddressSpaceFlags;
  /** ResourceProducer (a bridge decoding a window) rather than ResourceConsumer. */
  readonly producer: boolean;
  /** _DEC: subtractive decode. */
  readonly subtractive: boolean;
  /** _MIF / _MAF: the minimum / maximum address is fixed. */
  readonly minFixed: boolean;
  readonly maxFixed: boolean;
  readonly granularity: bigint;
  readonly min: bigint;
  readonly max: bigint;
  readonly translation: bigint;
  readonly length: bigint;
}

/** WordSpace/DWordSpace/QWordSpace (ASL WordIO, DWordMemory, QWordMemory, WordBusNumber, ...). */
export interface AddressSpaceResource extends AddressSpaceCommon {
  readonly type: 'AddressSpace';
  readonly width: 16 | 32 | 64;
  readonly source?: ResourceSource;
}

export interface ExtendedAddressSpaceResource extends AddressSpaceCommon {
  readonly type: 'ExtendedAddressSpace';
  readonly revision: number;
  readonly typeAttributes: bigint;
}

/** Interrupt(): GSIs (or other interrupt numbers), with the producer/consumer bit. */
export interface ExtendedInterruptResource extends Base {
  readonly type: 'ExtendedInterrupt';
  readonly producer: boolean;
  readonly mode: InterruptMode;
  readonly interrupts: readonly number[];
  readonly source?: ResourceSource;
}

export interface GpioResource extends Base {
  readonly type: 'GpioInt' | 'GpioIo';
  readonly revision: number;
  /** General flags: bit 0 consumer. */
  readonly flags: number;
  /**
   * GpioInt: bit 0 edge, bits 1-2 polarity (0 high, 1 low, 2 both), bit 3 shared, bit 4 wake.
   * GpioIo: bits 0-1 I/O restriction, bit 3 shared.
   */
  readonly intFlags: number;
  /** PullDefault 0, PullUp 1, PullDown 2, PullNone 3, or vendor values. */
  readonly pinConfig: number;
  /** In hundredths of milliamperes (GpioIo). */
  readonly driveStrength: number;
  /** In hundredths of milliseconds. */
  readonly debounceTimeout: number;
  readonly pins: readonly number[];
  readonly source: ResourceSource;
  readonly vendorData: Uint8Array;
}

interface SerialBusCommon extends Base {
  readonly revision: number;
  readonly typeRevision: number;
  /** General flags: bit 0 slave mode, bit 1 consumer, bit 2 connection sharing. */
  readonly flags: number;
  /** Type-specific flags (I2C: bit 0 10-bit addressing; SPI: wire mode, polarity; UART: bits, stop, flow, endian). */
  readonly typeFlags: number;
  readonly vendorData: Uint8Array;
  readonly source: ResourceSource;
}

export interface I2cSerialBusResource extends SerialBusCommon {
  readonly type: 'I2cSerialBus';
  readonly speed: number;
  readonly address: number;
}

export interface SpiSerialBusResource extends SerialBusCommon {
  readonly type: 'SpiSerialBus';
  readonly speed: number;
  readonly dataBits: number;
  readonly phase: number;
  readonly polarity: number;
  readonly deviceSelection: number;
}

export interface UartSerialBusResource extends SerialBusCommon {
  readonly type: 'UartSerialBus';
  readonly baudRate: number;
  readonly rxFifo: number;
  readonly txFifo: number;
  readonly parity: number;
  readonly lines: number;
}

/** CSI-2 and vendor-defined serial buses: the type-specific data is vendor data only. */
export interface OtherSerialBusResource extends SerialBusCommon {
  readonly type: 'Csi2SerialBus' | 'SerialBus';
  readonly busType: number;
}

export interface PinFunctionResource extends Base {
  readonly type: 'PinFunction';
  readonly revision: number;
  readonly flags: number;
  readonly pull: number;
  readonly functionNumber: number;
  readonly pins: readonly number[];
  readonly source: ResourceSource;
  readonly vendorData: Uint8Array;
}

export interface PinConfigResource extends Base {
  readonly type: 'PinConfig';
  readonly revision: number;
  readonly flags: number;
  readonly configType: number;
  readonly configValue: number;
  readonly pins: readonly number[];
  readonly source: ResourceSource;
  readonly vendorData: Uint8Array;
}

export interface PinGroupResource extends Base {
  readonly type: 'PinGroup';
  readonly revision: number;
  readonly flags: number;
  readonly pins: readonly number[];
  readonly label: string;
  readonly vendorData: Uint8Array;
}

export interface PinGroupFunctionResource extends Base {
  readonly type: 'PinGroupFunction';
  readonly revision: number;
  readonly flags: number;
  readonly functionNumber: number;
  readonly source: ResourceSource;
  readonly label: string;
  readonly vendorData: Uint8Array;
}

export interface PinGroupConfigResource extends Base {
  readonly type: 'PinGroupConfig';
  readonly revision: number;
  readonly flags: number;
  readonly configType: number;
  readonly configValue: number;
  readonly source: ResourceSource;
  readonly label: string;
  readonly vendorData: Uint8Array;
}

export interface ClockInputResource extends Base {
  readonly type: 'ClockInput';
  readonly revision: number;
  /** Bit 0 variable frequency, bits 1-2 scale (Hz, kHz, MHz). */
  readonly flags: number;
  readonly divisor: number;
  readonly numerator: number;
  readonly source?: ResourceSource;
}

/** A descriptor of a reserved type: its tag and the bytes after its header. */
export interface UnknownResource extends Base {
  readonly type: 'Unknown';
  /** 0x00-0x7F for small items (the 4-bit item name << 3), 0x80-0xFF for large items. */
  readonly tag: number;
  readonly data: Uint8Array;
}

export type Resource =
  | IrqResource
  | DmaResource
  | StartDependentFnResource
  | EndDependentFnResource
  | IoResource
  | FixedIoResource
  | FixedDmaResource
  | VendorShortResource
  | Memory24Resource
  | GenericRegisterResource
  | VendorLongResource
  | Memory32Resource
  | FixedMemory32Resource
  | AddressSpaceResource
  | ExtendedAddressSpaceResource
  | ExtendedInterruptResource
  | GpioResource
  | I2cSerialBusResource
  | SpiSerialBusResource
  | UartSerialBusResource
  | OtherSerialBusResource
  | PinFunctionResource
  | PinConfigResource
  | PinGroupResource
  | PinGroupFunctionResource
  | PinGroupConfigResource
  | ClockInputResource
  | UnknownResource;

export type ResourceType = Resource['type'];

/** A whole template: the descriptors, the EndTag, and anything after it in the buffer. */
export interface ResourceTemplate {
  readonly resources: readonly Resource[];
  /** Absent when the buffer has no EndTag. A checksum of 0 means "not checked". */
  readonly end?: { readonly checksum: number };
  /** Bytes after the EndTag (a Buffer declared larger than its template). */
  readonly trailing?: Uint8Array;
}
