/**
 * The `machine` section of a plan: what the monitor boots and where the guest's output goes.
 *
 * ```yaml
 * machine:
 *   firmware: /usr/share/seabios/bios-256k.bin   # default: Debian's SeaBIOS
 *   boot: { kind: grub-report }                   # GRUB prints lspci -i, lsmmap, lsacpi on COM1 and halts
 *   # boot: { kind: linux, kernel: vmlinuz, initrd: initrd.img, cmdline: "console=ttyS0" }
 *   # boot: { kind: grub, config: "serial\nterminal_output serial\necho hi\nhalt", modules: [echo, halt] }
 *   serial: stdout                                # or a file
 *   firmwareLog: seabios.log                      # the firmware's port-0x402 log
 *   timeout: 120                                  # seconds; the guest is stopped after that
 *   hostMap: /sys/firmware/memmap                 # the host E820 an identity layout is carved from
 *   acpiTables: tables.acpidump                   # ACPI tables for the guest as they are (acpidump, directory, .dat)
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
   * ACPI tables given to the guest as they are: an acpidump text, a directory of binary tables
   * or one .dat file. RSDP/RSDT/XSDT in it are dropped (the monitor links its own).
   */
  acpiTables: path.optional(),
  /** What a guest reset does: end the run (default) or boot again from the reset vector. */
  onReset: z.enum(['exit', 'restart']).default('exit'),
});

export type MachineSection = z.output<typeof machineSectionSchema>;
