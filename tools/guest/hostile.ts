import type { MachineConfig } from '../../src/platform/machine-config.js';
import { Asm } from './asm.js';
import { microConfig } from './micro.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The hostile micro guest: a seeded stream of random port and MMIO accesses of random widths,
 * garbage written to CF8/CFC, to the ECAM window and to fw_cfg (selectors, data port, DMA
 * descriptors pointing anywhere). It ANDs together every value it reads from addresses where
 * nothing lives and prints that on COM1 before ending through isa-debug-exit: a monitor that
 * leaked anything but all ones there would show it.
 *
 * Ports whose job is to end the run (isa-debug-exit, the reset lines, ACPI sleep) are left
 * out so the hammering goes on to the end; they have their own tests. So are the LAPIC and
 * IOAPIC pages, where random writes could send the guest an NMI or INIT with no handler.
 */
export const HOSTILE_DENIED_PORTS: ReadonlySet<number> = new Set([0xf4, 0xcf9, 0x92, 0x60, 0x64, 0x604, 0x605]);

const DMA_DESCRIPTOR = 0x1000;
/** Where nothing is mapped in a 16 MiB micro machine: from the end of RAM up to the IOAPIC. */
const EMPTY_LOW = 0x0100_0000;
const EMPTY_HIGH = 0xfec0_0000;
/** The ECAM window hvmpt's plans put MMCONFIG at. */
export const ECAM_BASE = 0xb000_0000;
const ECAM_SIZE = 0x1000_0000;
const ROM_BASE = 0xffff_0000;

export interface HostileGuest {
  readonly config: MachineConfig;
  /** Counts of what the guest was generated to do, for the test's messages. */
  readonly plan: Record<string, number>;
}

const SIZES = [1, 2, 4] as const;

function allowedPort(rng: Rng): number {
  for (;;) {
    const p = rng.below(0x10000);
    if (!HOSTILE_DENIED_PORTS.has(p) && !(p >= 0x600 && p < 0x60c && (p & ~1) === 0x604)) return p;
  }
}

export function hostileGuest(seed: number, operations = 400): HostileGuest {
  const rng = new Rng(seed);
  const a = new Asm(32);
  const plan: Record<string, number> = {};
  const note = (k: string): void => {
    plan[k] = (plan[k] ?? 0) + 1;
  };
  a.cli().movImm('ebx', 0xffff_ffff, 4);
  const dmaTo = (address: number, control: number, length: number): void => {
    // FWCfgDmaAccess is big-endian: control, length, address (64-bit).
    const be = (v: number): number => ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
    a.storeImm(DMA_DESCRIPTOR, be(control) >>> 0, 4).storeImm(DMA_DESCRIPTOR + 4, be(length) >>> 0, 4);
    a.storeImm(DMA_DESCRIPTOR + 8, 0, 4).storeImm(DMA_DESCRIPTOR + 12, be(address) >>> 0, 4);
    a.movImm('edx', 0x514, 2).movImm('eax', 0, 4).outDx(4);
    a.movImm('edx', 0x518, 2).movImm('eax', be(DMA_DESCRIPTOR) >>> 0, 4).outDx(4);
  };
  // One DMA aimed at the ROM and one past the end of RAM, whatever the seed: both must be refused.
  dmaTo(ROM_BASE, (0x19 << 16) | 0x08 | 0x02, 64);
  dmaTo(EMPTY_LOW + 0x1000, (0x19 << 16) | 0x08 | 0x02, 64);
  for (let i = 0; i < operations; i++) {
    const size = rng.pick(SIZES);
    switch (rng.below(9)) {
      case 0:
        note('port write');
        a.movImm('edx', allowedPort(rng), 2).movImm('eax', rng.next(), size).outDx(size);
        break;
      case 1:
        note('port read');
        a.movImm('edx', allowedPort(rng), 2).inDx(size);
        break;
      case 2: {
        note('unmapped read');
        const addr = EMPTY_LOW + rng.below(EMPTY_HIGH - EMPTY_LOW - 4);
        // Outside the ECAM window only: there, reads may see the composed bus's devices.
        if (addr >= ECAM_BASE && addr < ECAM_BASE + ECAM_SIZE) break;
        a.loadAbs(addr & ~3, 4).andEbxEax();
        break;
      }
      case 3:
        note('unmapped write');
        a.movImm('eax', rng.next(), size).storeAbs(EMPTY_LOW + rng.below(EMPTY_HIGH - EMPTY_LOW - 4), size);
        break;
      case 4:
        note('ROM write');
        a.movImm('eax', rng.next(), size).storeAbs(ROM_BASE + 0x8000 + rng.below(0x7000), size);
        break;
      case 5: {
        note('CF8/CFC garbage');
        a.movImm('edx', 0xcf8, 2).movImm('eax', rng.next(), 4).outDx(4);
        const port = 0xcfc + rng.below(4);
        if (rng.below(2) === 0) a.movImm('edx', port, 2).movImm('eax', rng.next(), size).outDx(size);
        else a.movImm('edx', port, 2).inDx(size);
        break;
      }
      case 6: {
        note('ECAM garbage');
        const addr = ECAM_BASE + rng.below(ECAM_SIZE - 4);
        if (rng.below(2) === 0) a.movImm('eax', rng.next(), size).storeAbs(addr, size);
        else a.loadAbs(addr, size);
        break;
      }
      case 7:
        note('fw_cfg port garbage');
        a.movImm('edx', 0x510, 2).movImm('eax', rng.below(3) === 0 ? rng.below(0x40) : rng.next(), 2).outDx(2);
        a.movImm('edx', 0x510 + rng.below(12), 2);
        if (rng.below(2) === 0) a.inDx(size);
        else a.movImm('eax', rng.next(), size).outDx(size);
        break;
      default: {
        note('fw_cfg DMA garbage');
        const anywhere = rng.pick([rng.next(), rng.below(0x100_0000), ROM_BASE + rng.below(0x10000), 0xfec0_0000, rng.below(0x1000)]);
        dmaTo(anywhere, rng.pick([rng.next(), (rng.below(0x40) << 16) | 0x0a, 0x02, 0x04, 0x10, (rng.below(0x40) << 16) | 0x18]), rng.pick([rng.below(0x100), rng.next(), 0x10000]));
      }
    }
  }
  // Undo what random writes may have done to COM1 (divisor latch, loopback), then report the
  // AND of every unmapped read and end.
  a.movImm('edx', 0x3fb, 2).movImm('eax', 0x03, 1).outDx(1).movImm('edx', 0x3fc, 2).movImm('eax', 0, 1).outDx(1);
  a.movEaxEbx().movImm('edx', 0x3f8, 2);
  for (let i = 0; i < 4; i++) a.outDx(1).raw(0xc1, 0xe8, 0x08); // out dx, al; shr eax, 8
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x77, 1).outDx(1).cli().hlt();
  return { config: microConfig(a.bytes(), { flat32: true }), plan };
}
