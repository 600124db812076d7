/**
 * The Linux guest harness: build an initrd around Debian's static busybox, boot Debian's
 * kernel under QEMU's software emulation, read what it prints. Used by the memory tests
 * (E820 oracles) and meant for the ACPI tests (initrd table upgrade) and the pass-through
 * back-end tests (q35 + intel-iommu + edu, host root over 9p, modules, chroot).
 */
export { ASLEEP_WORDS, bootGuest, GuestBootError, parseSections, type BootOptions, type GuestRun, type GuestSection } from './boot.js';
export { buildInitrd, MARKER_DONE, MARKER_READY, type GuestFile, type InitrdOptions } from './initramfs.js';
export { ensureDebianKernel, guestCacheDir, resolveModules, GuestSetupError, type DebianKernel, type ModuleFile } from './kernel.js';
export { readCpio, writeCpio, concat, CpioError, type CpioEntry } from './cpio.js';
export { needsInterpreter, readModInfo, elfSection, ElfError, type ModInfo } from './elf.js';
export { buildProbeInitrd, parseProbeReport, PROBE_CMDLINE, PROBE_SECTIONS, type ProbeAcpiTable, type ProbeOptions, type ProbePciFunction, type ProbePciResource, type ProbeReport } from './probe.js';
