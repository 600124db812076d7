/**
 * What a Linux guest (the probe, `machine.boot.kind: probe`) says about CPUs and time, beyond
 * the probe's own report, and the comparison of two probes' kernel warnings: hvmpt's against
 * QEMU's on the same host.
 */

/**
 * What the probe guest's script adds to its report: the CPUs' topology, the clocksource, a
 * clock check against the RTC (which the monitor serves from the host's clock), the serial
 * port's interrupt routed to the second CPU (so its handler runs there and that CPU's port
 * exits are the ones served), and /proc/interrupts after all that.
 */
export const CPU_CLOCK_SCRIPT = `
section topology sh -c 'for c in /sys/devices/system/cpu/cpu[0-9]*; do echo \${c##*/} $(cat $c/topology/physical_package_id) $(cat $c/topology/core_id); done'
section clocksource cat /sys/devices/system/clocksource/clocksource0/current_clocksource
[ -d /sys/devices/system/cpu/cpu1 ] && echo 2 > /proc/irq/4/smp_affinity
rtc() { cat /sys/class/rtc/rtc0/since_epoch; }
edge() { __a=$(rtc); while [ "$(rtc)" = "$__a" ]; do :; done; }
clock() { edge; r0=$(rtc); u0=$(cut -d' ' -f1 /proc/uptime); sleep 20; edge; r1=$(rtc); u1=$(cut -d' ' -f1 /proc/uptime); echo "rtc $r0 $r1 uptime $u0 $u1"; }
section clock clock
section inputs cat /proc/bus/input/devices
section interrupts-after cat /proc/interrupts
`;

export interface CpuClockReport {
  /** [cpu, package, core] per CPU. */
  readonly topology: Array<[string, number, number]>;
  readonly clocksource: string;
  /** Seconds between two RTC second edges, and the guest's uptime between the same two moments. */
  readonly clock: { readonly rtcSeconds: number; readonly uptimeSeconds: number };
  /** /proc/interrupts at the end: per row name (`0`, `4`, `LOC`, ...), the count on each CPU and the row's description. */
  readonly interrupts: Map<string, { readonly counts: number[]; readonly what: string }>;
  /** The input devices Linux registered (/proc/bus/input/devices): name and physical path, e.g. `isa0060/serio0/input0`. */
  readonly inputs: Array<{ readonly name: string; readonly phys: string }>;
}

/** /proc/bus/input/devices: each device's `N: Name=` and `P: Phys=`, in order. */
export function parseInputDevices(text: string): Array<{ name: string; phys: string }> {
  return text
    .split(/\n\s*\n/)
    .map((block) => ({ name: /^N: Name="(.*)"$/m.exec(block)?.[1], phys: /^P: Phys=(.*)$/m.exec(block)?.[1] }))
    .filter((d): d is { name: string; phys: string } => d.name !== undefined && d.phys !== undefined);
}

/** /proc/interrupts: per row, the count on each CPU column and what follows. */
export function parseInterrupts(text: string): Map<string, { counts: number[]; what: string }> {
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const ncpu = (header ?? '').trim().split(/\s+/).length;
  const out = new Map<string, { counts: number[]; what: string }>();
  for (const row of rows) {
    const m = /^\s*([^:\s]+):\s+(.*)$/.exec(row);
    if (m === null) continue;
    const fields = m[2]!.trim().split(/\s+/);
    const counts = fields.slice(0, ncpu).map(Number);
    if (counts.length < ncpu || counts.some((n) => !Number.isInteger(n))) continue;
    out.set(m[1]!, { counts, what: fields.slice(ncpu).join(' ') });
  }
  return out;
}

export function parseCpuClockReport(section: (name: string) => string): CpuClockReport {
  const clock = /^rtc (\d+) (\d+) uptime ([\d.]+) ([\d.]+)$/m.exec(section('clock'));
  if (clock === null) throw new Error(`no clock line in: ${section('clock')}`);
  return {
    topology: section('topology')
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .map(([cpu, pkg, core]) => [cpu!, Number(pkg), Number(core)]),
    clocksource: section('clocksource').trim(),
    clock: { rtcSeconds: Number(clock[2]) - Number(clock[1]), uptimeSeconds: Number(clock[4]) - Number(clock[3]) },
    interrupts: parseInterrupts(section('interrupts-after')),
    inputs: parseInputDevices(section('inputs')),
  };
}

/**
 * Kernel warnings that say something about the lab, not about the monitor: the nested KVM on a
 * QEMU TCG host has no stable TSC (the lab kernel's clocksource is hpet), so KVM keeps no
 * master clock and kvm-clock and the TSC drift apart by a fraction of a per cent; Linux's
 * clocksource watchdog, sampling both, then marks the TSC unstable or skips a check. And a lab
 * host on an overloaded machine leaves a vCPU unscheduled for seconds: timer interrupts come
 * late and the soft-lockup watchdog fires. These come and go from run to run under either
 * monitor (docs/vmm.md, "Linux on the monitor").
 */
export const LAB_TIMING_WARNINGS: readonly RegExp[] = [
  /^clocksource: timekeeping watchdog on CPU\d+: Marking clocksource 'tsc' as unstable because the skew is too large:$/,
  /^clocksource:\s+'(kvm-clock|tsc)'/,
  /^tsc: Marking TSC unstable due to clocksource watchdog$/,
  /^clocksource: Long readout interval, skipping watchdog check/,
  /^hrtimer: interrupt took # ns$/,
  /^Unstable clock detected, switching default tracing clock to "global"$/,
  /^If you want to keep using the local clock, then add:$/,
  /^ {2}"trace_clock=local"$/,
  /^on the kernel command line$/,
  /watchdog: BUG: soft lockup - CPU#/,
];

/**
 * Lines that only give a report's context — the register dump, the call trace, the loaded
 * modules, the CPU and machine the report came from — under the line that says what happened
 * (a WARNING, a BUG), which is what is compared.
 */
const REPORT_CONTEXT = /^(Modules linked in:|CPU: \d+ PID: \d+|Hardware name:|RIP: |Code: |RSP: |RAX: |RDX: |RBP: |R\d+: |FS: |CS: |CR\d: |DR\d: |PKRU: |Call Trace:|\s|irq event stamp|hardirqs |softirqs |---\[ end trace)/;

const withoutStamp = (line: string): string => line.replace(/^<\d>\[\s*[\d.]+\]\s?/, '');

/**
 * A warning line with what varies between boots taken out: the level and timestamp, numbers
 * and addresses (KASLR moves the kernel).
 */
export function normalizeWarning(line: string): string {
  return withoutStamp(line).replace(/\b0x[0-9a-f]+\b|\b[0-9a-f]*\d[0-9a-f]*\b/gi, '#');
}

/** Warnings `ours` has that `theirs` does not, less reports' context lines and the lab's own timing noise. */
export function warningsOnlyIn(ours: readonly string[], theirs: readonly string[]): string[] {
  const known = new Set(theirs.map(normalizeWarning));
  return ours.filter((l) => {
    const n = normalizeWarning(l);
    return !known.has(n) && !REPORT_CONTEXT.test(withoutStamp(l)) && !LAB_TIMING_WARNINGS.some((re) => re.test(n));
  });
}
