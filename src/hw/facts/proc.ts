/**
 * Parsers for the /proc and sysfs text files a host-facts collection holds. Each takes the
 * text and a `fail(line, message)` that raises the caller's error naming the file, so a
 * malformed line is reported where it is.
 */

export type Fail = (line: number, message: string) => never;

// ---------------------------------------------------------------- /proc/interrupts

/** One numbered row of /proc/interrupts (the per-CPU rows such as NMI are left out). */
export interface InterruptRow {
  /** The Linux IRQ number (the `irq` a PCI function's sysfs attribute shows). */
  readonly irq: number;
  /** Interrupts taken, summed over CPUs. */
  readonly count: number;
  /** The controller: `IO-APIC`, `XT-PIC`, `PCI-MSIX-0000:00:01.0`, `IR-PCI-MSI-0000:00:14.0`... */
  readonly chip: string;
  /** The controller's own number for it (an IOAPIC pin, an MSI vector index), when printed. */
  readonly hwirq: number | undefined;
  /** edge, fasteoi, level… */
  readonly trigger: string | undefined;
  /** The handlers sharing the line, as drivers named them (`ahci[0000:00:1f.2]`, `virtio0-config`). */
  readonly actions: readonly string[];
}

export function parseInterrupts(text: string, fail: Fail): InterruptRow[] {
  const lines = text.split('\n');
  const header = lines[0] ?? '';
  const cpus = header.trim() === '' ? 0 : header.trim().split(/\s+/).filter((c) => /^CPU\d+$/.test(c)).length;
  if (cpus === 0) fail(1, 'expected the CPU0 CPU1 … header of /proc/interrupts');
  const rows: InterruptRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^\s*(\d+):(.*)$/.exec(line);
    if (m === null) continue; // NMI, LOC, ERR... and blank lines
    const fields = m[2]!.trim().split(/\s+/);
    const counts = fields.slice(0, cpus);
    if (counts.length < cpus || !counts.every((c) => /^\d+$/.test(c))) fail(i + 1, `IRQ ${m[1]}: expected ${cpus} counts`);
    const rest = m[2]!.trim().replace(new RegExp(`^(\\d+\\s+){${cpus}}`), '');
    const tokens = rest.split(/\s+/).filter((t) => t !== '');
    const chip = tokens[0] ?? '';
    let hwirq: number | undefined;
    let trigger: string | undefined;
    let from = 1;
    const hw = /^(\d+)-(\w+)$/.exec(tokens[1] ?? '');
    if (hw !== null) {
      hwirq = Number(hw[1]);
      trigger = hw[2];
      from = 2;
    } else {
      const old = /^(.*)-(edge|level|fasteoi)$/.exec(chip);
      if (old !== null) trigger = old[2];
    }
    const actionText = rest.split(/\s+/).slice(from).join(' ');
    const actions = actionText.trim() === '' ? [] : actionText.split(/,\s*/).map((a) => a.trim()).filter((a) => a !== '');
    rows.push({ irq: Number(m[1]), count: counts.reduce((s, c) => s + Number(c), 0), chip, hwirq, trigger, actions });
  }
  return rows;
}

// ---------------------------------------------------------------- /proc/self/mountinfo

export interface Mount {
  /** `major:minor` of the filesystem's device (0:N for virtual ones). */
  readonly device: string;
  /** Where it is mounted, as the collector's process saw its root. */
  readonly mountPoint: string;
  readonly fsType: string;
  /** The mount source: `/dev/nvme0n1p2`, `/dev/mapper/vg-root`, `tmpfs`… */
  readonly source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string, fail: Fail): Mount[] {
  const out: Mount[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0 || f.length < dash + 3 || !/^\d+:\d+$/.test(f[2]!)) fail(i + 1, 'expected "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS … - TYPE SOURCE OPTIONS"');
    out.push({ device: f[2]!, mountPoint: unescapeMount(f[4]!), fsType: f[dash + 1]!, source: unescapeMount(f[dash + 2]!) });
  });
  return out;
}

// ---------------------------------------------------------------- routes

export interface DefaultRoute {
  readonly family: 'ipv4' | 'ipv6';
  readonly iface: string;
  readonly metric: number;
}

/** The default routes of /proc/net/route (IPv4: destination and mask 0) that are up. */
export function parseIpv4Routes(text: string, fail: Fail): DefaultRoute[] {
  // Linux prints nothing, not even the header, while the IPv4 main table does not exist yet
  // (no address or route ever set: an IPv6-only host, or one with only link-local addresses).
  if (text === '') return [];
  const lines = text.split('\n');
  if (!/^Iface\s+Destination\s+Gateway/.test(lines[0] ?? '')) fail(1, 'expected the "Iface Destination Gateway …" header of /proc/net/route');
  const out: DefaultRoute[] = [];
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 8) continue;
    if (!/^[0-9A-F]{8}$/i.test(f[1]!) || !/^[0-9A-F]{4}$/i.test(f[3]!)) fail(i + 1, 'expected hex destination and flags');
    const up = (parseInt(f[3]!, 16) & 0x1) !== 0;
    if (f[1] === '00000000' && (f[7] ?? '') === '00000000' && up) out.push({ family: 'ipv4', iface: f[0]!, metric: Number(f[6]) });
  }
  return out;
}

/** RTF_UP and RTF_REJECT, as <linux/route.h> defines them. */
const RTF_UP = 0x0001;
const RTF_REJECT = 0x0200;

/** The default routes of /proc/net/ipv6_route (`::/0`) that are up and not the loopback's reject route. */
export function parseIpv6Routes(text: string, fail: Fail): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  text.split('\n').forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) return;
    if (!/^[0-9a-f]{32}$/i.test(f[0]!) || !/^[0-9a-f]{8}$/i.test(f[8]!)) fail(i + 1, 'expected "DEST LEN SRC LEN NEXTHOP METRIC REFCNT USE FLAGS IFACE" in hex');
    const flags = parseInt(f[8]!, 16);
    if (/^0+$/.test(f[0]!) && f[1] === '00' && (flags & RTF_UP) !== 0 && (flags & RTF_REJECT) === 0 && f[9] !== 'lo') {
      out.push({ family: 'ipv6', iface: f[9]!, metric: parseInt(f[5]!, 16) });
    }
  });
  return out;
}

// ---------------------------------------------------------------- CPU, kernel

export interface CpuFacts {
  /** `GenuineIntel`, `AuthenticAMD`… */
  readonly vendor: string | undefined;
  readonly model: string | undefined;
  readonly flags: ReadonlySet<string>;
  readonly count: number | undefined;
}

export function parseCpuinfo(text: string, count: number | undefined): CpuFacts {
  const field = (name: string): string | undefined => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text);
    return m === null ? undefined : m[1]!.trim();
  };
  return { vendor: field('vendor_id'), model: field('model name'), flags: new Set((field('flags') ?? '').split(/\s+/).filter((f) => f !== '')), count };
}

export interface KernelParam {
  readonly name: string;
  /** undefined for a bare flag (`quiet`). */
  readonly value: string | undefined;
}

/** The kernel command line, parameter by parameter (double quotes group a value, as Linux does). */
export function parseCmdline(text: string): KernelParam[] {
  const out: KernelParam[] = [];
  for (const m of text.trim().matchAll(/(?:[^\s"]+|"[^"]*")+/g)) {
    const word = m[0].replace(/"/g, '');
    if (word === '--') break; // what follows goes to init
    const eq = word.indexOf('=');
    out.push(eq < 0 ? { name: word, value: undefined } : { name: word.slice(0, eq), value: word.slice(eq + 1) });
  }
  return out;
}

/** `CONFIG_X=y|m|value` and `# CONFIG_X is not set` (as `n`). */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line.trim());
    if (set !== null) out.set(set[1]!, set[2]!.replace(/^"(.*)"$/, '$1'));
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line.trim());
    if (unset !== null) out.set(unset[1]!, 'n');
  }
  return out;
}

/** Module names of /proc/modules (first field of each line). */
export function parseModules(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== ''));
}

/** `kernel/drivers/vfio/pci/vfio-pci.ko` lines of modules.builtin, as module names (`vfio_pci`). */
export function moduleNames(lines: string): Set<string> {
  return new Set(
    lines
      .split('\n')
      .map((l) => l.trim().replace(/^.*\//, '').replace(/\.ko.*$/, '').replace(/-/g, '_'))
      .filter((n) => n !== ''),
  );
}

// ---------------------------------------------------------------- IOMMU groups

export interface ReservedRegion {
  readonly start: bigint;
  /** Inclusive, as the kernel prints it. */
  readonly end: bigint;
  /** `direct` (an RMRR/IVMD), `direct-relaxable`, `msi`, `reserved`. */
  readonly type: string;
}

/** An IOMMU group's `reserved_regions`: "0x00000000fee00000 0x00000000feefffff msi" per line. */
export function parseReservedRegions(text: string, fail: Fail): ReservedRegion[] {
  const out: ReservedRegion[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+)\s*$/i.exec(line);
    if (m === null) fail(i + 1, 'expected "0xSTART 0xEND TYPE"');
    out.push({ start: BigInt(m![1]!), end: BigInt(m![2]!), type: m![3]! });
  });
  return out;
}
