/**
 * The probe guest (`machine.boot.kind: probe`): Debian's kernel with a busybox initrd that
 * reports what Linux found on the platform it was given, runs the plan's script, and powers
 * off through ACPI. Its console is made to be read by programs: every part of the report is a
 * harness section (`@@hvmpt-begin NAME` … `@@hvmpt-end NAME rc=N`), and `parseProbeReport`
 * turns a console back into typed data.
 *
 * Sections, in order:
 *   cpus        /sys/devices/system/cpu/online, e.g. `0` or `0-3`
 *   pci         per function: `BDF vendor=0x8086 device=0x100e subsystem=0x1af4:0x1100 class=0x020000
 *               revision=0x03 driver=e1000|- irq=11`, then `BDF resourceN start=… end=… flags=…` for
 *               each non-empty resource (sysfs order: 0-5 BARs, 6 expansion ROM, 7-12 SR-IOV BARs, 13-16
 *               bridge windows)
 *   iomem       /proc/iomem
 *   interrupts  /proc/interrupts
 *   e820        the kernel's E820 lines (`BIOS-provided physical RAM map:`, `BIOS-e820: …`, `e820: …`)
 *   acpi        per table in /sys/firmware/acpi/tables (and dynamic/): `SIG file=NAME length=N
 *               checksum=ok|bad|none oem=OEMID` (FACS has no checksum)
 *   problems    the kernel's messages at warning level or worse, `<N>[time] text` as dmesg -r prints them
 */
import { parseSections, type GuestSection } from './boot.js';
import { buildInitrd, type GuestFile } from './initramfs.js';
import type { DebianKernel } from './kernel.js';

/** The probe's kernel parameters, before the plan's `cmdline`. */
export const PROBE_CMDLINE = 'console=ttyS0 panic=-1 loglevel=4';

export const PROBE_SECTIONS = ['cpus', 'pci', 'iomem', 'interrupts', 'e820', 'acpi', 'problems'] as const;

const REPORT = `probe_pci() {
  for d in /sys/bus/pci/devices/*; do
    [ -e "$d" ] || continue
    read vendor < $d/vendor; read device < $d/device; read class < $d/class; read revision < $d/revision
    read sv < $d/subsystem_vendor; read sd < $d/subsystem_device; read irq < $d/irq
    drv=-; [ -e $d/driver ] && drv=$(readlink $d/driver) && drv=\${drv##*/}
    b=\${d##*/}
    echo "$b vendor=$vendor device=$device subsystem=$sv:$sd class=$class revision=$revision driver=$drv irq=$irq"
    i=0
    while read s e f; do
      if [ "$s" != 0x0000000000000000 ] || [ "$e" != 0x0000000000000000 ]; then echo "$b resource$i start=$s end=$e flags=$f"; fi
      i=$((i+1))
    done < $d/resource
  done
}
probe_acpi() {
  for f in /sys/firmware/acpi/tables/* /sys/firmware/acpi/tables/dynamic/*; do
    [ -f "$f" ] || continue
    od -An -tu1 -v "$f" | awk -v file="\${f#/sys/firmware/acpi/tables/}" '
      BEGIN { n = 0; s = 0 }
      { for (i = 1; i <= NF; i++) { if (n < 16) b[n] = $i; n++; s += $i } }
      END {
        sig = ""; for (i = 0; i < 4; i++) sig = sig sprintf("%c", b[i])
        oem = ""; for (i = 10; i < 16; i++) if (b[i] != 0) oem = oem sprintf("%c", b[i])
        sum = sig == "FACS" ? "none" : (s % 256 == 0 ? "ok" : "bad")
        print sig " file=" file " length=" (b[4] + b[5] * 256 + b[6] * 65536 + b[7] * 16777216) " checksum=" sum " oem=" oem
      }'
  done
}
section cpus cat /sys/devices/system/cpu/online
section pci probe_pci
section iomem cat /proc/iomem
section interrupts cat /proc/interrupts
section e820 sh -c "dmesg | sed -n 's/^\\[[^]]*\\] //p' | grep -E '^(BIOS-provided physical RAM map|BIOS-e820: |e820: )'"
section acpi probe_acpi
section problems sh -c "dmesg -r | grep -E '^<[0-4]>'; true"
`;

export interface ProbeOptions {
  readonly kernel: DebianKernel;
  /** Run after the report, in the same shell (`section` is there). */
  readonly script?: string;
  readonly modules?: readonly string[];
  /** false: the script alone. */
  readonly report?: boolean;
  /** Tools and data for the script. */
  readonly files?: readonly GuestFile[];
}

/** The probe's initrd: busybox, the modules, and an /init that reports, runs the script and powers off. */
export function buildProbeInitrd(options: ProbeOptions): Uint8Array {
  const script = `${options.report === false ? '' : REPORT}${options.script ?? ''}\n`;
  return buildInitrd({ script, kernel: options.kernel, modules: options.modules ?? [], files: options.files ?? [] });
}

export interface ProbePciResource {
  /** sysfs's order: 0-5 BARs, 6 the expansion ROM, 7-12 SR-IOV BARs, 13-16 bridge windows. */
  readonly index: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly flags: bigint;
}

export interface ProbePciFunction {
  /** As sysfs names it: 0000:00:03.0. */
  readonly bdf: string;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly classCode: number;
  readonly revision: number;
  /** The driver bound, if any. */
  readonly driver: string | undefined;
  readonly irq: number;
  readonly resources: readonly ProbePciResource[];
}

export interface ProbeAcpiTable {
  readonly signature: string;
  /** The sysfs name: DSDT, SSDT1, dynamic/SSDT2. */
  readonly file: string;
  readonly length: number;
  readonly checksum: 'ok' | 'bad' | 'none';
  readonly oemId: string;
}

export interface ProbeReport {
  /** Every section, the report's and the script's. */
  readonly sections: ReadonlyMap<string, GuestSection>;
  /** The script's status from the done marker; undefined when the guest never got there. */
  readonly rc: number | undefined;
  readonly cpusOnline: string | undefined;
  readonly pci: readonly ProbePciFunction[];
  readonly iomem: string | undefined;
  readonly interrupts: string | undefined;
  readonly e820: readonly string[];
  readonly acpi: readonly ProbeAcpiTable[];
  readonly problems: readonly string[];
}

/** Reads `key=value` fields after the first word of a report line. */
function fields(line: string): Map<string, string> {
  return new Map([...line.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
}

function num(text: string | undefined): number {
  return text === undefined ? NaN : Number(text);
}

function parsePci(text: string): ProbePciFunction[] {
  const functions: Array<ProbePciFunction & { resources: ProbePciResource[] }> = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) resource(\d+) (.*)$/.exec(line);
    if (m !== null) {
      const f = fields(m[3]!);
      functions.find((fn) => fn.bdf === m[1])?.resources.push({ index: Number(m[2]), start: BigInt(f.get('start')!), end: BigInt(f.get('end')!), flags: BigInt(f.get('flags')!) });
      continue;
    }
    const head = /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (.*)$/.exec(line);
    if (head === null) continue;
    const f = fields(head[2]!);
    const [sv, sd] = (f.get('subsystem') ?? ':').split(':');
    functions.push({
      bdf: head[1]!,
      vendor: num(f.get('vendor')),
      device: num(f.get('device')),
      subsystemVendor: num(sv),
      subsystemDevice: num(sd),
      classCode: num(f.get('class')),
      revision: num(f.get('revision')),
      driver: f.get('driver') === '-' ? undefined : f.get('driver'),
      irq: num(f.get('irq')),
      resources: [],
    });
  }
  return functions;
}

function parseAcpi(text: string): ProbeAcpiTable[] {
  return text
    .split('\n')
    .map((line) => /^(\S{4}) file=(\S+) length=(\d+) checksum=(ok|bad|none) oem=(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ signature: m[1]!, file: m[2]!, length: Number(m[3]), checksum: m[4] as ProbeAcpiTable['checksum'], oemId: m[5]!.trimEnd() }));
}

const nonEmpty = (text: string | undefined): string[] => (text ?? '').split('\n').filter((l) => l !== '');

/** The report in a probe guest's console (as `hvmpt run` prints it, carriage returns and all). */
export function parseProbeReport(console: string): ProbeReport {
  const text = console.replace(/\r/g, '');
  const sections = parseSections(text);
  const out = (name: string): string | undefined => sections.get(name)?.output;
  const rc = /^@@hvmpt-done rc=(\d+)$/m.exec(text);
  return {
    sections,
    rc: rc === null ? undefined : Number(rc[1]),
    cpusOnline: out('cpus')?.trim(),
    pci: parsePci(out('pci') ?? ''),
    iomem: out('iomem'),
    interrupts: out('interrupts'),
    e820: nonEmpty(out('e820')),
    acpi: parseAcpi(out('acpi') ?? ''),
    problems: nonEmpty(out('problems')),
  };
}
