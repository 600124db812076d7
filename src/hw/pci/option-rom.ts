import { HvmptError } from '../../errors.js';

/** A file that is not a usable PCI expansion ROM image. */
export class OptionRomError extends HvmptError {}

/** What the firmware will check before it runs a ROM: the PCI Data Structure of each image. */
export interface OptionRomImage {
  /** Byte offset of the image in the file. */
  readonly offset: number;
  /** Bytes, from the PCIR image length (512-byte units). */
  readonly length: number;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  /** 0 x86 legacy (what SeaBIOS runs), 3 EFI. */
  readonly codeType: number;
  readonly last: boolean;
  /** Whether the image's bytes sum to zero (SeaBIOS refuses a legacy image that does not). */
  readonly checksumOk: boolean;
}

export interface OptionRom {
  readonly images: readonly OptionRomImage[];
  /** The first x86 legacy image: the one SeaBIOS executes. */
  readonly legacy: OptionRomImage | undefined;
  /** Bytes the ROM BAR must decode: the file size rounded up to a power of two (at least 2 KiB). */
  readonly barSize: number;
}

const ROM_SIGNATURE = 0xaa55;
const PCIR_POINTER = 0x18;
const PCIR = 0x5249_4350; // "PCIR"
const MAX_IMAGES = 16;

/**
 * Parses a PCI expansion ROM file (PCI Firmware Spec 3.0, 5.1): a chain of images, each with
 * the 0x55AA signature and a pointer at 0x18 to its "PCIR" data structure holding the vendor
 * and device IDs, class code, image length, code type and last-image flag.
 */
export function parseOptionRom(bytes: Uint8Array, name: string): OptionRom {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const images: OptionRomImage[] = [];
  let offset = 0;
  for (;;) {
    const at = (o: number): string => `offset 0x${(offset + o).toString(16)}`;
    if (offset + 0x1a > bytes.length) throw new OptionRomError('image header runs past the end of the file', { input: name, at: at(0) });
    if (v.getUint16(offset, true) !== ROM_SIGNATURE) throw new OptionRomError('no 0x55AA ROM signature', { input: name, at: at(0) });
    const pcir = offset + v.getUint16(offset + PCIR_POINTER, true);
    if (pcir + 0x18 > bytes.length) throw new OptionRomError('PCI data structure pointer runs past the end of the file', { input: name, at: at(PCIR_POINTER) });
    if (v.getUint32(pcir, true) !== PCIR) throw new OptionRomError('no "PCIR" data structure where 0x18 points', { input: name, at: `offset 0x${pcir.toString(16)}` });
    const length = v.getUint16(pcir + 0x10, true) * 512;
    if (length === 0 || offset + length > bytes.length) {
      throw new OptionRomError(`image length ${length} does not fit the ${bytes.length}-byte file`, { input: name, at: `offset 0x${(pcir + 0x10).toString(16)}` });
    }
    let sum = 0;
    for (let i = offset; i < offset + length; i++) sum = (sum + bytes[i]!) & 0xff;
    const indicator = v.getUint8(pcir + 0x15);
    images.push({
      offset,
      length,
      vendorId: v.getUint16(pcir + 4, true),
      deviceId: v.getUint16(pcir + 6, true),
      classCode: v.getUint8(pcir + 0x0d) | (v.getUint8(pcir + 0x0e) << 8) | (v.getUint8(pcir + 0x0f) << 16),
      codeType: v.getUint8(pcir + 0x14),
      last: (indicator & 0x80) !== 0,
      checksumOk: sum === 0,
    });
    if ((indicator & 0x80) !== 0) break;
    offset += length;
    if (images.length >= MAX_IMAGES) throw new OptionRomError(`more than ${MAX_IMAGES} images without a last-image flag`, { input: name, at: at(0) });
  }
  let barSize = 2048;
  while (barSize < bytes.length) barSize *= 2;
  return { images, legacy: images.find((i) => i.codeType === 0), barSize };
}

/** Checks that `rom` will run on a device with these IDs; returns the problem, or undefined when it will. */
export function romMismatch(rom: OptionRom, vendorId: number, deviceId: number): string | undefined {
  const legacy = rom.legacy;
  if (legacy === undefined) return 'has no x86 legacy image (SeaBIOS runs only those)';
  if (!legacy.checksumOk) return 'legacy image checksum is wrong (SeaBIOS would refuse it)';
  if (legacy.vendorId !== vendorId || legacy.deviceId !== deviceId) {
    const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
    return `is for ${hex4(legacy.vendorId)}:${hex4(legacy.deviceId)}, not ${hex4(vendorId)}:${hex4(deviceId)} (SeaBIOS would not run it)`;
  }
  return undefined;
}
