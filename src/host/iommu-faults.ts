/**
 * IOMMU faults of passed-through devices, as the host kernel logs them: a device that DMAs
 * outside what its IOMMU domain maps (the guest's RAM) is stopped by the IOMMU, and the kernel
 * says so in its log. VFIO type1 has no fault channel to user space, so the run reads the
 * kernel's log (/dev/kmsg, non-blocking, as root) while the guest runs and reports each fault of
 * its own devices.
 */
import { readFileSync } from 'node:fs';
import { EAGAIN, EPIPE, O_NONBLOCK, O_RDONLY, SysError, type Sys } from '../native/sys.js';

export interface IommuFault {
  /** `0000:00:02.0` (the kernel logs bus:device.function; segment 0 is assumed). */
  readonly device: string;
  readonly access: 'read' | 'write' | 'unknown';
  readonly address: bigint;
  /** The kernel's words for it ("PTE Write access is not set"). */
  readonly reason: string;
}

const INTEL = /DMAR: \[(DMA Read|DMA Write)[^\]]*\] Request device \[([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\].*?fault addr (?:0x)?([0-9a-f]+)(?:.*\] ?(.*))?/i;
const AMD = /AMD-Vi: Event logged \[IO_PAGE_FAULT device=(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) .*?address=(?:0x)?([0-9a-f]+)(?: flags=(0x[0-9a-f]+))?/i;

/** One kernel log line as a fault, when it is one (Intel VT-d or AMD-Vi wording). */
export function parseIommuFault(line: string): IommuFault | undefined {
  const i = INTEL.exec(line);
  if (i !== null) {
    return {
      device: `0000:${i[2]!.toLowerCase()}:${i[3]!.toLowerCase()}.${i[4]}`,
      access: i[1]!.toLowerCase().endsWith('read') ? 'read' : 'write',
      address: BigInt(`0x${i[5]}`),
      reason: (i[6] ?? '').trim(),
    };
  }
  const a = AMD.exec(line);
  if (a !== null) {
    const flags = a[6] === undefined ? undefined : Number(a[6]);
    return {
      device: `${(a[1] ?? '0000').toLowerCase()}:${a[2]!.toLowerCase()}:${a[3]!.toLowerCase()}.${a[4]}`,
      // AMD-Vi event flags: bit 5 is RW (1 = write).
      access: flags === undefined ? 'unknown' : (flags & 0x20) !== 0 ? 'write' : 'read',
      address: BigInt(`0x${a[5]}`),
      reason: 'IO page fault',
    };
  }
  return undefined;
}

/** Microseconds since boot, as /dev/kmsg stamps its records. */
function bootMicros(): number {
  try {
    return Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e6);
  } catch {
    return 0;
  }
}

/**
 * Polls the kernel log for faults of `devices` logged from now on. Where /dev/kmsg cannot be
 * read (not root, a container), it says so once through `unavailable` and watches nothing.
 */
export class IommuFaultWatch {
  readonly faults: IommuFault[] = [];
  private fd: number | undefined;
  private readonly since = bootMicros();
  private readonly buf = new Uint8Array(8192);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sys: Sys,
    private readonly devices: ReadonlySet<string>,
    private readonly onFault: (f: IommuFault) => void,
    unavailable: (why: string) => void,
  ) {
    if (devices.size === 0) return;
    try {
      this.fd = sys.open('/dev/kmsg', O_RDONLY | O_NONBLOCK);
    } catch (err) {
      unavailable(`cannot read the kernel log for IOMMU faults (/dev/kmsg: ${err instanceof Error ? err.message : String(err)})`);
      return;
    }
    // Once a second: a fault is reported within that, and the main thread's wake-ups are CPU
    // time a one-CPU host takes from the vCPU. close() reads what is left.
    this.timer = setInterval(() => this.poll(), 1000);
    this.timer.unref();
  }

  /** Reads every record logged since the last poll. */
  poll(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    for (;;) {
      let n: number;
      try {
        n = this.sys.read(fd, this.buf);
      } catch (err) {
        // EAGAIN: nothing more now. EPIPE: records were overwritten before we read them; go on.
        if (err instanceof SysError && err.errno === EAGAIN) return;
        if (err instanceof SysError && err.errno === EPIPE) continue;
        return;
      }
      if (n <= 0) return;
      const record = new TextDecoder().decode(this.buf.subarray(0, n));
      const semi = record.indexOf(';');
      const stamp = Number(record.slice(0, semi).split(',')[2]);
      if (!(stamp >= this.since)) continue;
      const f = parseIommuFault(record.slice(semi + 1));
      if (f !== undefined && this.devices.has(f.device)) {
        this.faults.push(f);
        this.onFault(f);
      }
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.poll();
    if (this.fd !== undefined) this.sys.close(this.fd);
    this.fd = undefined;
  }
}
