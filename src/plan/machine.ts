/**
 * The `machine` section of a plan: what the monitor boots and where the guest's output goes.
 *
 * ```yaml
 * machine:
 *   firmware: /usr/share/seabios/bios-256k.bin   # default: Debian's SeaBIOS
 *   cpus: 2                                       # vCPUs: the cores of one package (default 1)
 *   boot: { kind: grub-report }                   # GRUB prints lspci -i, lsmmap, lsacpi on COM1 and halts
 *   # boot: { kind: linux, kernel: vmlinuz, initrd: initrd.img, cmdline: "console=ttyS0" }
 *   # boot: { kind: grub, config: "serial\nterminal_output serial\necho hi\nhalt", modules: [echo, halt] }
 *   # boot: { kind: probe, modules: [vfio_pci], script: "section edu cat /sys/bus/pci/devices/0000:00:04.0/vendor", cmdline: "nokaslr" }
 *   serial: stdout                                # or a file, unix:PATH or tcp:HOST:PORT (a socket also carries input)
 *   firmwareLog: seabios.log                      # the firmware's port-0x402 log
 *   timeout: 120                                  # seconds; the guest is stopped after that
 *   hostMap: /sys/firmware/memmap                 # the host E820 an identity layout is carved from
 *   acpiTables: tables.acpidump                   # the host's ACPI tables, for acpi.expose or acpi.tables: host
 *   hostPci: { capture: host.lspci, functions: ["00:1f.3", "00:1c.1", "08:00.0"] }   # the bus starts from these
 *   roms: [{ device: nic, file: /usr/lib/ipxe/qemu/pxe-e1000.rom }]                # served at the device's ROM BAR
 *   ecamBase: 0xb0000000
 *   smbios: { manufacturer: ACME, product: Appliance, serial: "0001", uuid: 4c4c4544-0031-3610-8039-b4c04f4e3532 }
 * ```
 * Relative paths are relative to the plan file.
 */
import { z } from 'zod';
import { MAX_CPUS } from '../hw/cpu/topology.js';

const path = z.string().min(1, 'must name a file');
/** A path inside an initrd: relative, `/`-separated, no `.` or `..` step, no empty step. */
const initrdPath = z
  .string()
  .regex(/^[A-Za-z0-9_.+-]+(\/[A-Za-z0-9_.+-]+)*$/, 'a relative path inside the initrd (letters, digits, _ . + -, steps separated by one /)')
  .refine((p) => p.split('/').every((step) => step !== '.' && step !== '..'), 'a path inside the initrd has no . or .. step');
const smbiosString = z.string().regex(/^[\x20-\x7e]{0,64}$/, 'printable ASCII, at most 64 characters');

/** Node's timers hold at most 2^31 - 1 ms; a longer timeout would fire at once. */
export const MAX_TIMEOUT_S = 2_147_483;

export const bootSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('grub-report') }),
  /** Nothing handed to the firmware: SeaBIOS boots from the first bootable disk (a disk plug-in such as examples/plugins/virtio-blk.js). */
  z.strictObject({ kind: z.literal('disk') }),
  z.strictObject({
    kind: z.literal('grub'),
    config: z.string().min(1, 'an embedded GRUB config is needed'),
    modules: z.array(z.string().regex(/^[a-z0-9_]+$/, 'a GRUB module name (letters, digits, _)')).default([]),
  }),
  z.strictObject({
    kind: z.literal('linux'),
    kernel: path,
    initrd: path.optional(),
    cmdline: z.string().default(''),
  }),
  /**
   * Debian's kernel (the guest harness's cache) with a busybox initrd hvmpt builds: it prints
   * a report of what Linux found (PCI functions, /proc/iomem, /proc/interrupts, the E820 lines,
   * the ACPI tables, CPUs, warnings and errors) in sections, runs `script`, and powers off
   * through ACPI. See docs/guest-harness.md.
   */
  z.strictObject({
    kind: z.literal('probe'),
    /** busybox sh run after the report; `section NAME command…` fences a command's output. */
    script: z.string().default(''),
    /** Modules of Debian's kernel to load first (their dependencies come too). */
    modules: z.array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'a kernel module name (letters, digits, _ and -)')).default([]),
    /** Kernel parameters after the probe's own (console=ttyS0 panic=-1 loglevel=4). */
    cmdline: z.string().default(''),
    /** false: skip the report and run only `script`. */
    report: z.boolean().default(true),
    /** Files of this machine put into the initrd for the script (`{ path: bin/tool, file: ./tool }`; under bin/ they are executable). */
    files: z
      .array(z.strictObject({ path: initrdPath, file: path }))
      .superRefine((files, ctx) => {
        const first = new Map<string, number>();
        files.forEach((f, i) => {
          const earlier = first.get(f.path);
          if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `'${f.path}' is also files[${earlier}]` });
          else first.set(f.path, i);
        });
        // A file where another needs a directory: the initrd could hold only one of them.
        files.forEach((f, i) => {
          const parent = f.path.split('/').slice(0, -1).map((_, j, a) => a.slice(0, j + 1).join('/')).find((d) => first.has(d));
          if (parent !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `'${f.path}' would be inside files[${first.get(parent)}] ('${parent}'), a file` });
        });
      })
      .default([]),
  }),
]);

export type BootSection = z.output<typeof bootSchema>;

export const machineSectionSchema = z.strictObject({
  firmware: path.optional(),
  /**
   * vCPUs, each on its own thread: the cores of one package (as QEMU lays out `-smp N`), with
   * APIC IDs 0..N-1 in the MADT, CPUID, fw_cfg, CMOS and SMBIOS alike.
   */
  cpus: z.number().int('a whole number of vCPUs').min(1, 'at least one vCPU').max(MAX_CPUS, `at most ${MAX_CPUS} vCPUs (8-bit xAPIC IDs)`).default(1),
  boot: bootSchema.default({ kind: 'grub-report' }),
  serial: z.string().min(1).default('stdout'),
  firmwareLog: path.optional(),
  timeout: z.number().positive('must be a positive number of seconds').max(MAX_TIMEOUT_S, `must be at most ${MAX_TIMEOUT_S} seconds (24 days), the longest a timer runs`).optional(),
  hostMap: path.optional(),
  /**
   * The host's ACPI tables (an acpidump text, a directory of binary tables or one .dat file):
   * the source of the tables `acpi.expose` adds to the generated ones, or, with
   * `acpi.tables: host`, the guest's whole set; `acpi.rules` and `pci.hide` rewrite them first.
   * RSDP/RSDT/XSDT in it are dropped (the monitor links its own).
   */
  acpiTables: path.optional(),
  /**
   * The host's PCI capture (an lspci -xxxx dump or a sysfs tree) the guest's bus starts from,
   * and which of its functions to keep (default all). The plan's `pci` section then hides,
   * adds and changes functions.
   */
  hostPci: z.strictObject({ capture: path, functions: z.array(z.string()).optional() }).optional(),
  /** Expansion ROM files served at plan devices' ROM BARs; their PCI IDs must match the device's. */
  roms: z.array(z.strictObject({ device: z.string().min(1), file: path })).default([]),
  /** Guest-physical base of the ECAM (MMCONFIG) window: 256 MiB, 1 MiB aligned, outside RAM. */
  ecamBase: z
    .union([z.number().int().nonnegative(), z.string().regex(/^0x[0-9a-f]+$/i, 'an address like 0xb0000000')])
    .transform((v) => BigInt(v))
    .refine((v) => v % (1n << 20n) === 0n && v + (256n << 20n) <= 0xfec0_0000n, 'must be 1 MiB aligned, its 256 MiB ending at or below the IOAPIC (0xfec00000)')
    .optional(),
  /** What a guest reset does: end the run (default) or boot again from the reset vector. */
  onReset: z.enum(['exit', 'restart']).default('exit'),
  /**
   * The guest's SMBIOS (system, chassis, processors, memory): generated by default with these
   * strings; `false` gives the firmware none, so SeaBIOS builds its own minimal set.
   */
  smbios: z
    .union([
      z.literal(false),
      z.strictObject({
        manufacturer: smbiosString.optional(),
        product: smbiosString.optional(),
        version: smbiosString.optional(),
        serial: smbiosString.optional(),
        family: smbiosString.optional(),
        uuid: z
          .string()
          .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID like 4c4c4544-0031-3610-8039-b4c04f4e3532')
          .optional(),
      }),
    ])
    .optional(),
});

export type MachineSection = z.output<typeof machineSectionSchema>;
