/**
 * The lab host's PCI devices: `--device` specs parsed, placed on buses, and turned into QEMU
 * arguments. Every device gets an explicit bus and slot, so its place in the lab host's
 * topology is known before boot; the bus *number* is not (firmware assigns it), so the lab
 * host itself walks sysfs along each device's chain of slots and reports the address it
 * found (see script.ts).
 *
 * A spec is `MODEL[:IMAGE][,KEY=VALUE]...`:
 *   edu                       QEMU's educational device (docs/specs/edu.rst)
 *   e1000e                    an 82574L on a QEMU hub shared with a second e1000e the lab host keeps
 *   nvme:IMAGE, virtio-blk:IMAGE   a disk backed by IMAGE through a copy-on-write overlay
 *   pcie-root-port, pci-bridge     a bus for later devices (`id=NAME`, then `bus=NAME`)
 * Keys: `id=NAME`, `bus=NAME` (pcie.0 or an earlier port or bridge), `addr=SLOT[.FN]` (hex,
 * as QEMU writes it); any other key is a QEMU property of the device, passed on as given.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { LabDeviceError, LabSpecError } from './errors.js';

export type LabIommu = 'intel' | 'amd' | 'none';

export type LabDeviceModel = 'edu' | 'e1000e' | 'nvme' | 'virtio-blk' | 'pcie-root-port' | 'pci-bridge';

interface ModelInfo {
  /** QEMU's device name. */
  readonly qemu: string;
  /** vendor:device as the lab host's sysfs must show it (virtio-blk is transitional on conventional PCI, modern behind a PCIe port). */
  readonly ids: readonly string[];
  readonly image: boolean;
  /** A bus for later devices, and which slots it has. */
  readonly provides?: 'root-port' | 'bridge';
}

const MODELS: Readonly<Record<LabDeviceModel, ModelInfo>> = {
  edu: { qemu: 'edu', ids: ['1234:11e8'], image: false },
  e1000e: { qemu: 'e1000e', ids: ['8086:10d3'], image: false },
  nvme: { qemu: 'nvme', ids: ['1b36:0010'], image: true },
  'virtio-blk': { qemu: 'virtio-blk-pci', ids: ['1af4:1001', '1af4:1042'], image: true },
  'pcie-root-port': { qemu: 'pcie-root-port', ids: ['1b36:000c'], image: false, provides: 'root-port' },
  'pci-bridge': { qemu: 'pci-bridge', ids: ['1b36:0001'], image: false, provides: 'bridge' },
};

export const LAB_DEVICE_MODELS = Object.keys(MODELS) as LabDeviceModel[];

/** A slot and function on one bus. */
export interface Devfn {
  readonly slot: number;
  readonly fn: number;
}

type BusKind = 'root' | 'root-port' | 'bridge';

interface Bus {
  readonly name: string;
  readonly kind: BusKind;
  /** The devfns from the root bus down to the bridge or port that provides this bus. */
  readonly chain: readonly Devfn[];
  readonly used: Set<number>;
}

/** The root bus of the lab's q35 machine; 0 is the host bridge, 0x1f the ICH9 functions. */
export const ROOT_BUS = 'pcie.0';
const ROOT_SLOTS: readonly [number, number] = [1, 0x1e];
/** A PCIe port has one slot; a pci-bridge's standard hotplug controller refuses slot 0. */
const SLOTS: Readonly<Record<BusKind, readonly [number, number]>> = { root: ROOT_SLOTS, 'root-port': [0, 0], bridge: [1, 0x1f] };
/** Where QEMU puts the AMD IOMMU's PCI function when it comes first: the first free root slot. */
const AMD_IOMMU_SLOT = 1;

export interface LabDevice {
  /** 1-based position among the `--device` options. */
  readonly index: number;
  readonly spec: string;
  readonly model: LabDeviceModel;
  readonly id: string;
  readonly bus: string;
  readonly devfn: Devfn;
  /** devfns from the root bus to this device: the path to walk in the lab host's sysfs. */
  readonly chain: readonly Devfn[];
  /** vendor:device values the lab host may show for it. */
  readonly ids: readonly string[];
  /** The backing image, absolute, for disks. */
  readonly image?: string;
}

export interface LabLayout {
  readonly devices: readonly LabDevice[];
  /** The lab host's own virtio-9p function (the host root). */
  readonly rootShare: readonly Devfn[];
  /** Host directories shared read-write, each at its own path, with its 9p tag. */
  readonly writable: ReadonlyArray<{ readonly dir: string; readonly tag: string }>;
  /** The lab host's own e1000e on the hub, when any `e1000e` device asked for one. */
  readonly peer?: readonly Devfn[];
  readonly qemuArgs: readonly string[];
}

export const devfnText = (d: Devfn): string => `${d.slot.toString(16).padStart(2, '0')}.${d.fn}`;

const ID_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const KEY_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;
/** Properties the lab sets itself and a spec may not: they wire the device to the lab's back-ends. */
const OWNED_KEYS = new Set(['drive', 'netdev', 'fsdev']);
const RESERVED_ID_PREFIX = 'hvmpt-';
const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];

/** QEMU option values escape a comma by doubling it. */
const qemuValue = (v: string): string => v.replace(/,/g, ',,');

function parseAddr(text: string, fail: (m: string) => never): Devfn {
  const m = /^(?:0x)?([0-9a-f]{1,2})(?:\.([0-7]))?$/i.exec(text);
  if (m === null) fail(`addr '${text}' is not SLOT[.FN] in hex (e.g. 3 or 1e.1)`);
  const slot = parseInt(m[1]!, 16);
  if (slot > 0x1f) fail(`addr '${text}': slot 0x${slot.toString(16)} is past 0x1f`);
  return { slot, fn: m[2] === undefined ? 0 : Number(m[2]) };
}

function imageFormat(path: string, where: { input: string; at: string }): 'raw' | 'qcow2' {
  const fail = (message: string): never => {
    throw new LabDeviceError(message, where);
  };
  let fd: number;
  try {
    const st = statSync(path);
    if (!st.isFile() && !st.isBlockDevice()) fail(`image ${path} is not a file`);
    fd = openSync(path, 'r');
  } catch (err) {
    if (err instanceof LabDeviceError) throw err;
    return fail(`image ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const head = new Uint8Array(4);
    const n = readSync(fd, head, 0, 4, 0);
    return n === 4 && QCOW2_MAGIC.every((b, i) => head[i] === b) ? 'qcow2' : 'raw';
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses and places the specs; checks images exist and are readable. The lab's own functions
 * (the host-root share, the hub's second e1000e) take the first free root slots after them.
 */
export function planLabDevices(specs: readonly string[], options: { readonly iommu: LabIommu; readonly cwd: string; readonly writable?: readonly string[] }): LabLayout {
  const buses = new Map<string, Bus>([[ROOT_BUS, { name: ROOT_BUS, kind: 'root', chain: [], used: new Set() }]]);
  const root = buses.get(ROOT_BUS)!;
  if (options.iommu === 'amd') root.used.add(AMD_IOMMU_SLOT << 3);
  const ids = new Set<string>();
  const devices: LabDevice[] = [];
  const args: string[] = [];

  const take = (bus: Bus, want: Devfn | undefined, fail: (m: string) => never): Devfn => {
    const [lo, hi] = SLOTS[bus.kind];
    if (want !== undefined) {
      if (want.slot < lo || want.slot > hi) {
        fail(`slot ${want.slot.toString(16)} is not available on ${bus.name} (a ${bus.kind === 'root' ? 'root bus' : bus.kind} takes slots ${lo.toString(16)}-${hi.toString(16)})`);
      }
      if (bus.used.has((want.slot << 3) | want.fn)) {
        fail(`${bus.name} ${devfnText(want)} is taken${options.iommu === 'amd' && bus.kind === 'root' && want.slot === AMD_IOMMU_SLOT ? ' by the AMD IOMMU' : ''}`);
      }
      bus.used.add((want.slot << 3) | want.fn);
      return want;
    }
    for (let slot = lo; slot <= hi; slot++) {
      if (![...bus.used].some((u) => u >> 3 === slot)) {
        bus.used.add(slot << 3);
        return { slot, fn: 0 };
      }
    }
    fail(`no free slot on ${bus.name}`);
  };

  specs.forEach((spec, i) => {
    const index = i + 1;
    const where = { input: '--device', at: `#${index} '${spec}'` };
    const fail: (message: string) => never = (message) => {
      throw new LabSpecError(message, where);
    };
    const [head, ...options_] = spec.split(',');
    const colon = head!.indexOf(':');
    const name = colon < 0 ? head! : head!.slice(0, colon);
    const imageArg = colon < 0 ? undefined : head!.slice(colon + 1);
    if (!(name in MODELS)) fail(`unknown device '${name}' (one of ${LAB_DEVICE_MODELS.join(', ')})`);
    const model = name as LabDeviceModel;
    const info = MODELS[model];
    if (info.image && (imageArg === undefined || imageArg === '')) fail(`${model} needs an image: ${model}:IMAGE`);
    if (!info.image && imageArg !== undefined) fail(`${model} takes no image`);

    const props = new Map<string, string>();
    for (const kv of options_) {
      const eq = kv.indexOf('=');
      const key = eq < 0 ? kv : kv.slice(0, eq);
      if (eq < 0 || !KEY_RE.test(key)) fail(`'${kv}' is not KEY=VALUE`);
      if (OWNED_KEYS.has(key)) fail(`${key}= is the lab's to set`);
      if (props.has(key)) fail(`${key}= given twice`);
      props.set(key, kv.slice(eq + 1));
    }
    const id = props.get('id') ?? `dev${index}`;
    props.delete('id');
    if (!ID_RE.test(id)) fail(`id '${id}' must start with a letter and hold letters, digits, _ . -`);
    if (id.startsWith(RESERVED_ID_PREFIX)) fail(`ids starting with '${RESERVED_ID_PREFIX}' are the lab's own`);
    if (ids.has(id)) fail(`id '${id}' is already used by an earlier --device`);
    ids.add(id);

    const busName = props.get('bus') ?? ROOT_BUS;
    props.delete('bus');
    const bus = buses.get(busName);
    if (bus === undefined) fail(`bus '${busName}' is neither ${ROOT_BUS} nor the id of an earlier pcie-root-port or pci-bridge`);
    if (model === 'pcie-root-port' && bus.kind !== 'root') fail(`a pcie-root-port goes on the root bus (${ROOT_BUS}), not on ${busName}`);
    const addr = props.get('addr');
    props.delete('addr');
    const devfn = take(bus, addr === undefined ? undefined : parseAddr(addr, fail), fail);
    const chain = [...bus.chain, devfn];

    const deviceProps = [`${info.qemu}`, `id=${id}`, `bus=${busName}`, `addr=${devfnText(devfn)}`];
    let image: string | undefined;
    if (info.image) {
      image = isAbsolute(imageArg!) ? imageArg! : resolve(options.cwd, imageArg!);
      const format = imageFormat(image, where);
      // snapshot=on: QEMU opens IMAGE read-only as the backing file of a temporary overlay.
      args.push('-drive', `if=none,id=${id}-disk,file=${qemuValue(image)},format=${format},snapshot=on`);
      deviceProps.push(`drive=${id}-disk`);
      if (model === 'nvme' && !props.has('serial')) deviceProps.push(`serial=hvmpt-${index}`);
    }
    if (model === 'e1000e') {
      args.push('-netdev', `hubport,id=${id}-net,hubid=0`);
      deviceProps.push(`netdev=${id}-net`);
    }
    if (model === 'pcie-root-port') {
      if (!props.has('chassis')) deviceProps.push(`chassis=${index}`);
      if (!props.has('slot')) deviceProps.push(`slot=${index}`);
    }
    if (model === 'pci-bridge' && !props.has('chassis_nr')) deviceProps.push(`chassis_nr=${index}`);
    for (const [k, v] of props) deviceProps.push(`${k}=${qemuValue(v)}`);
    args.push('-device', deviceProps.join(','));
    if (info.provides !== undefined) buses.set(id, { name: id, kind: info.provides, chain, used: new Set() });
    devices.push({ index, spec, model, id, bus: busName, devfn, chain, ids: info.ids, ...(image === undefined ? {} : { image }) });
  });

  const own = (what: string): Devfn[] => [
    take(root, undefined, (m) => {
      throw new LabSpecError(`${m}: no room left for the lab's ${what}`, { input: '--device' });
    }),
  ];
  const rootShare = own('host-root share');
  args.push(
    '-fsdev', 'local,id=hvmpt-root,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', `virtio-9p-pci,id=hvmpt-9p,fsdev=hvmpt-root,mount_tag=hostroot,bus=${ROOT_BUS},addr=${devfnText(rootShare[0]!)}`,
  );
  // Each writable directory is a 9p export of its own, mounted at its own path in the lab.
  const writable = (options.writable ?? []).map((dir, i) => {
    const devfn = own(`share of ${dir}`)[0]!;
    const tag = `hvmptrw${i}`;
    args.push(
      '-fsdev', `local,id=${tag},path=${qemuValue(dir)},security_model=none,multidevs=remap`,
      '-device', `virtio-9p-pci,id=hvmpt-rw${i},fsdev=${tag},mount_tag=${tag},bus=${ROOT_BUS},addr=${devfnText(devfn)}`,
    );
    return { dir, tag };
  });
  let peer: Devfn[] | undefined;
  if (devices.some((d) => d.model === 'e1000e')) {
    peer = own('e1000e on the hub');
    args.push('-netdev', 'hubport,id=hvmpt-peer-net,hubid=0', '-device', `e1000e,id=hvmpt-peer,netdev=hvmpt-peer-net,bus=${ROOT_BUS},addr=${devfnText(peer[0]!)}`);
  }
  return { devices, rootShare, writable, ...(peer === undefined ? {} : { peer }), qemuArgs: args };
}
