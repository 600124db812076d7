/**
 * QEMU's device models a plan's emulated or fake device can become, by the IDs the guest reads.
 * Each entry is what a Linux guest sees of the model under `qemu-system-x86_64 -machine pc`
 * (QEMU 7.2, Debian 12): IDs, class, revision, interrupt pin, BAR sizes, the default ROM BAR,
 * MSI/MSI-X. test/export/qemu-models.test.ts boots Debian's kernel under QEMU with every model
 * here and checks each against the guest's sysfs.
 */
import type { BarKind } from '../hw/pci/bars.js';
import type { FunctionIds, PlatformFunction } from '../platform/functions.js';

export interface QemuModel {
  /** `-device NAME`. */
  readonly device: string;
  readonly ids: FunctionIds;
  readonly pin: number;
  readonly bars: ReadonlyArray<{ readonly index: number; readonly kind: Exclude<BarKind, 'rom'>; readonly size: bigint }>;
  /** The ROM BAR QEMU gives it by default (its `romfile`), in bytes. */
  readonly defaultRom: bigint | undefined;
  readonly msi: boolean;
  readonly msix: boolean;
  /** Properties the model requires. */
  readonly props: readonly string[];
  /** A network card: it gets a netdev on an isolated QEMU hub. */
  readonly nic: boolean;
}

const QEMU_SUBSYSTEM = { subsystemVendorId: 0x1af4, subsystemId: 0x1100 } as const;
const K = 1024n;

export const QEMU_MODELS: readonly QemuModel[] = [
  {
    device: 'e1000',
    ids: { vendorId: 0x8086, deviceId: 0x100e, ...QEMU_SUBSYSTEM, classCode: 0x020000, revision: 0x03 },
    pin: 1,
    bars: [
      { index: 0, kind: 'mem32', size: 128n * K },
      { index: 1, kind: 'io', size: 64n },
    ],
    defaultRom: 256n * K,
    msi: false,
    msix: false,
    props: [],
    nic: true,
  },
  {
    device: 'e1000e',
    ids: { vendorId: 0x8086, deviceId: 0x10d3, subsystemVendorId: 0x8086, subsystemId: 0x0000, classCode: 0x020000, revision: 0x00 },
    pin: 1,
    bars: [
      { index: 0, kind: 'mem32', size: 128n * K },
      { index: 1, kind: 'mem32', size: 128n * K },
      { index: 2, kind: 'io', size: 32n },
      { index: 3, kind: 'mem32', size: 16n * K },
    ],
    defaultRom: 256n * K,
    msi: true,
    msix: true,
    props: [],
    nic: true,
  },
  {
    device: 'rtl8139',
    ids: { vendorId: 0x10ec, deviceId: 0x8139, ...QEMU_SUBSYSTEM, classCode: 0x020000, revision: 0x20 },
    pin: 1,
    bars: [
      { index: 0, kind: 'io', size: 256n },
      { index: 1, kind: 'mem32', size: 256n },
    ],
    defaultRom: 256n * K,
    msi: false,
    msix: false,
    props: [],
    nic: true,
  },
  {
    device: 'edu',
    ids: { vendorId: 0x1234, deviceId: 0x11e8, ...QEMU_SUBSYSTEM, classCode: 0x00ff00, revision: 0x10 },
    pin: 1,
    bars: [{ index: 0, kind: 'mem32', size: 1024n * K }],
    defaultRom: undefined,
    msi: true,
    msix: false,
    props: [],
    nic: false,
  },
  {
    device: 'nvme',
    ids: { vendorId: 0x1b36, deviceId: 0x0010, ...QEMU_SUBSYSTEM, classCode: 0x010802, revision: 0x02 },
    pin: 1,
    bars: [{ index: 0, kind: 'mem64', size: 16n * K }],
    defaultRom: undefined,
    msi: false,
    msix: true,
    props: ['serial=hvmpt'],
    nic: false,
  },
  {
    device: 'ich9-ahci',
    ids: { vendorId: 0x8086, deviceId: 0x2922, ...QEMU_SUBSYSTEM, classCode: 0x010601, revision: 0x02 },
    pin: 1,
    bars: [
      { index: 4, kind: 'io', size: 32n },
      { index: 5, kind: 'mem32', size: 4n * K },
    ],
    defaultRom: undefined,
    msi: true,
    msix: false,
    props: [],
    nic: false,
  },
  {
    device: 'pci-testdev',
    ids: { vendorId: 0x1b36, deviceId: 0x0005, ...QEMU_SUBSYSTEM, classCode: 0x00ff00, revision: 0x00 },
    pin: 0,
    bars: [
      { index: 0, kind: 'mem32', size: 4n * K },
      { index: 1, kind: 'io', size: 256n },
    ],
    defaultRom: undefined,
    msi: false,
    msix: false,
    props: [],
    nic: false,
  },
];

/** QEMU's PCI-to-PCI bridge (`pci-bridge` with `shpc=off,msi=off`): the IDs of a plan's default fake bridge. */
export const QEMU_PCI_BRIDGE = { device: 'pci-bridge', vendorId: 0x1b36, deviceId: 0x0001 } as const;

/** The model whose vendor and device IDs the function has. */
export function qemuModelFor(f: PlatformFunction): QemuModel | undefined {
  const ids = f.ids;
  if (ids === undefined) return undefined;
  return QEMU_MODELS.find((m) => m.ids.vendorId === ids.vendorId && m.ids.deviceId === ids.deviceId);
}

const hex = (n: number | bigint, w: number): string => `0x${n.toString(16).padStart(w, '0')}`;

/**
 * How the guest would see the model differently from the plan's function: subsystem, class,
 * revision, pin, BARs, MSI/MSI-X. `rom` is the ROM BAR size the exporter gives the model
 * (a plan ROM file's, the model's default, or none).
 */
export function modelDifferences(m: QemuModel, f: PlatformFunction, rom: bigint | undefined): string[] {
  const out: string[] = [];
  const ids = f.ids!;
  const cmp = (what: string, plan: number, qemu: number, w: number): void => {
    if (plan !== qemu) out.push(`${what} ${hex(qemu, w)} (the plan has ${hex(plan, w)})`);
  };
  cmp('subsystem vendor', ids.subsystemVendorId, m.ids.subsystemVendorId, 4);
  cmp('subsystem', ids.subsystemId, m.ids.subsystemId, 4);
  cmp('class', ids.classCode, m.ids.classCode, 6);
  cmp('revision', ids.revision, m.ids.revision, 2);
  if (f.interruptPin !== m.pin) out.push(`interrupt pin ${m.pin === 0 ? 'none' : 'INT' + 'ABCD'[m.pin - 1]} (the plan has ${f.interruptPin === 0 ? 'none' : 'INT' + 'ABCD'[f.interruptPin - 1]})`);
  for (let i = 0; i < 6; i++) {
    const p = f.bars.find((b) => b.index === i);
    const q = m.bars.find((b) => b.index === i);
    const text = (b: { kind: BarKind; size: bigint | undefined } | undefined): string => (b === undefined ? 'none' : `${b.kind} ${b.size === undefined ? 'of unknown size' : `${b.size} bytes`}`);
    if ((p === undefined) !== (q === undefined) || (p !== undefined && q !== undefined && (p.kind !== q.kind || p.size !== q.size))) out.push(`BAR${i} ${text(q)} (the plan has ${text(p)})`);
  }
  const planRom = f.bars.find((b) => b.index === 6)?.size;
  if (planRom !== rom) out.push(`ROM BAR ${rom === undefined ? 'none' : `${rom} bytes`} (the plan has ${planRom === undefined ? 'none' : `${planRom} bytes`})`);
  if ((f.msi !== undefined) !== m.msi) out.push(m.msi ? 'an MSI capability (the plan has none)' : 'no MSI capability (the plan has one)');
  if ((f.msix !== undefined) !== m.msix) out.push(m.msix ? 'an MSI-X capability (the plan has none)' : 'no MSI-X capability (the plan has one)');
  return out;
}
