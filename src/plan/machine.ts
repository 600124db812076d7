/**
 * The `machine` section of a plan: what the monitor boots and where the guest's output goes.
 *
 * ```yaml
 * machine:
 *   firmware: /usr/share/seabios/bios-256k.bin   # default: Debian's SeaBIOS
 *   boot: { kind: grub-report }                   # GRUB prints lspci -i, lsmmap, lsacpi on COM1 and halts
 *   # boot: { kind: linux, kernel: vmlinuz, initrd: initrd.img, cmdline: "console=ttyS0" }
 *   # boot: { kind: grub, config: "serial\nterminal_output serial\necho hi\nhalt", modules: [echo, halt] }
 *   serial: stdout                                # or a file, unix:PATH or tcp:HOST:PORT (a socket also carries input)
 *   firmwareLog: seabios.log                      # the firmware's port-0x402 log
 *   timeout: 120                                  # seconds; the guest is stopped after that
 *   hostMap: /sys/firmware/memmap                 # the host E820 an identity layout is carved from
 *   acpiTables: tables.acpidump                   # the host's ACPI tables, for acpi.expose or acpi.tables: host
 *   hostPci: { capture: host.lspci, functions: ["00:1f.3", "00:1c.1", "08:00.0"] }   # the bus starts from these
 *   roms: [{ device: nic, file: /usr/lib/ipxe/qemu/pxe-e1000.rom }]                # served at the device's ROM BAR
 *   ecamBase: 0xb0000000
 * ```
 * Relative paths are relative to the plan file.
 */
import { z } from 'zod';

const path = z.string().min(1, 'must name a file');

export const bootSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('grub-report') }),
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
]);

export type BootSection = z.output<typeof bootSchema>;

export const machineSectionSchema = z.strictObject({
  firmware: path.optional(),
  boot: bootSchema.default({ kind: 'grub-report' }),
  serial: z.string().min(1).default('stdout'),
  firmwareLog: path.optional(),
  timeout: z.number().positive('must be a positive number of seconds').optional(),
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
});

export type MachineSection = z.output<typeof machineSectionSchema>;
