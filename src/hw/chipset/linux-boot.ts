import { HvmptError } from '../../errors.js';
import { FW_CFG, le32 } from './fw-cfg.js';

/** A kernel image that is not a Linux boot-protocol (bzImage) image we can load. */
export class KernelImageError extends HvmptError {}

/** Offsets in the real-mode header (Documentation/arch/x86/boot.rst). */
const HDR = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  code32Start: 0x214,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  initSize: 0x260,
} as const;
const HDRS_MAGIC = 0x5372_6448; // "HdrS"
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;
/** Loader type 0xB0: the high nibble QEMU's loader uses; the guest sees the same as under QEMU. */
const LOADER_TYPE = 0xb0;

export interface LinuxBoot {
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly cmdline: string;
  /** RAM below 4 GiB, bounding where the initrd may go. */
  readonly ramBelow4G: number;
  /**
   * The guest's RAM ranges. When 1 MiB is not RAM (an identity layout, whose RAM lies where the
   * host carved it), a relocatable kernel is loaded at the start of the first RAM range above
   * 1 MiB instead, aligned as its header asks, and told so in code32_start.
   */
  readonly ram?: ReadonlyArray<{ readonly start: bigint; readonly end: bigint }>;
  /** Names the kernel in errors. */
  readonly name: string;
}

/**
 * Lays a Linux boot-protocol image (a bzImage, or GRUB's core image behind lnxboot.img, which
 * carries the same header) out the way QEMU's x86_load_linux does, and returns the fw_cfg
 * items the linuxboot_dma option ROM reads: setup (real-mode part, header patched), kernel
 * (protected-mode part), initrd and command line, each with its load address and size.
 */
export function linuxBootItems(boot: LinuxBoot): Map<number, Uint8Array> {
  const k = boot.kernel;
  if (k.length < 0x400) throw new KernelImageError(`${k.length} bytes is too short for a boot-protocol header`, { input: boot.name });
  const view = new DataView(k.buffer, k.byteOffset, k.byteLength);
  if (view.getUint32(HDR.header, true) !== HDRS_MAGIC) {
    throw new KernelImageError('no "HdrS" boot-protocol signature (not a bzImage or lnxboot image)', { input: boot.name, at: 'offset 0x202' });
  }
  const protocol = view.getUint16(HDR.version, true);
  const loadHigh = (k[HDR.loadflags]! & LOADED_HIGH) !== 0;
  const cmdlineBytes = new TextEncoder().encode(boot.cmdline);
  const cmdlineSize = (cmdlineBytes.length + 16) & ~15;
  let realAddr: number;
  let cmdlineAddr: number;
  let protAddr: number;
  if (protocol < 0x200 || !loadHigh) {
    realAddr = 0x90000;
    cmdlineAddr = 0x9a000 - cmdlineSize;
    protAddr = 0x10000;
  } else if (protocol < 0x202) {
    realAddr = 0x90000;
    cmdlineAddr = 0x9a000 - cmdlineSize;
    protAddr = 0x100000;
  } else {
    realAddr = 0x10000;
    cmdlineAddr = 0x20000;
    protAddr = 0x100000;
  }
  let initrdMax = protocol >= 0x203 ? view.getUint32(HDR.initrdAddrMax, true) : 0x37ff_ffff;
  if (initrdMax >= boot.ramBelow4G) initrdMax = boot.ramBelow4G - 1;

  let setupSects = k[HDR.setupSects]!;
  if (setupSects === 0) setupSects = 4;
  const setupSize = (setupSects + 1) * 512;
  if (setupSize > k.length) {
    throw new KernelImageError(`setup_sects ${setupSects} runs past the end of the image (${k.length} bytes)`, { input: boot.name, at: 'offset 0x1f1' });
  }
  const setup = Uint8Array.from(k.subarray(0, setupSize));
  const sv = new DataView(setup.buffer);
  if (protocol >= 0x202) sv.setUint32(HDR.cmdLinePtr, cmdlineAddr, true);
  else {
    sv.setUint16(0x20, 0xa33f, true);
    sv.setUint16(0x22, cmdlineAddr - realAddr, true);
  }
  if (protocol >= 0x200) setup[HDR.typeOfLoader] = LOADER_TYPE;
  if (protocol >= 0x201) {
    setup[HDR.loadflags] = setup[HDR.loadflags]! | CAN_USE_HEAP;
    sv.setUint16(HDR.heapEndPtr, cmdlineAddr - realAddr - 0x200, true);
  }
  const kernelBytes = k.length - setupSize;
  const isRam = (start: number, size: number): boolean => boot.ram === undefined || boot.ram.some((r) => BigInt(start) >= r.start && BigInt(start + size) <= r.end);
  if (protAddr === 0x100000 && !isRam(protAddr, kernelBytes)) {
    protAddr = relocatedKernelAddress(view, protocol, kernelBytes, boot);
    sv.setUint32(HDR.code32Start, protAddr, true);
  }
  const items = new Map<number, Uint8Array>();
  if (boot.initrd !== undefined) {
    if (protocol < 0x200) throw new KernelImageError('boot protocol before 2.00 cannot take an initrd', { input: boot.name, at: 'offset 0x206' });
    if (boot.initrd.length >= initrdMax) throw new KernelImageError(`initrd of ${boot.initrd.length} bytes does not fit below 0x${initrdMax.toString(16)}`, { input: boot.name });
    const initrdAddr = (initrdMax - boot.initrd.length) & ~4095;
    sv.setUint32(HDR.ramdiskImage, initrdAddr, true);
    sv.setUint32(HDR.ramdiskSize, boot.initrd.length, true);
    items.set(FW_CFG.INITRD_ADDR, le32(initrdAddr));
    items.set(FW_CFG.INITRD_SIZE, le32(boot.initrd.length));
    items.set(FW_CFG.INITRD_DATA, boot.initrd);
  }
  const kernel = k.subarray(setupSize);
  items.set(FW_CFG.KERNEL_ADDR, le32(protAddr));
  items.set(FW_CFG.KERNEL_SIZE, le32(kernel.length));
  items.set(FW_CFG.KERNEL_DATA, kernel);
  items.set(FW_CFG.SETUP_ADDR, le32(realAddr));
  items.set(FW_CFG.SETUP_SIZE, le32(setup.length));
  items.set(FW_CFG.SETUP_DATA, setup);
  items.set(FW_CFG.CMDLINE_ADDR, le32(cmdlineAddr));
  items.set(FW_CFG.CMDLINE_SIZE, le32(cmdlineBytes.length + 1));
  const cmdline = new Uint8Array(cmdlineBytes.length + 1);
  cmdline.set(cmdlineBytes);
  items.set(FW_CFG.CMDLINE_DATA, cmdline);
  return items;
}

/**
 * Where a relocatable kernel goes when 1 MiB is not RAM: the first RAM range above 1 MiB below
 * 4 GiB (linuxboot's addresses are 32-bit) with room for the kernel's whole footprint
 * (init_size), at its kernel_alignment.
 */
function relocatedKernelAddress(view: DataView, protocol: number, kernelBytes: number, boot: LinuxBoot): number {
  if (protocol < 0x205 || view.getUint8(HDR.relocatableKernel) === 0) {
    throw new KernelImageError('1 MiB is not RAM in this guest (an identity layout) and the kernel is not relocatable (boot protocol 2.05 relocatable_kernel)', { input: boot.name });
  }
  const align = BigInt(view.getUint32(HDR.kernelAlignment, true) || 0x200000);
  const need = BigInt(Math.max(kernelBytes, protocol >= 0x20a ? view.getUint32(HDR.initSize, true) : 0));
  for (const r of boot.ram ?? []) {
    const start = ((r.start < 0x100000n ? 0x100000n : r.start) + align - 1n) / align * align;
    if (start + need <= r.end && start + need <= 0x1_0000_0000n) return Number(start);
  }
  throw new KernelImageError(`no RAM range above 1 MiB and below 4 GiB holds the kernel's ${need} bytes at ${align}-byte alignment`, { input: boot.name });
}
