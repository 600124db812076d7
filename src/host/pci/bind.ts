/**
 * Moving host functions to a pass-through driver (vfio-pci, uio_pci_generic) and back, the way
 * the kernel documents it: `driver_override`, then unbind from the current driver, then
 * `drivers_probe`. The driver each function had is remembered in a state file, so `unbind`
 * gives it back even after a crash of everything in between. For vfio-pci the whole IOMMU group
 * moves (bridges excepted): VFIO takes a group whole or not at all.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HvmptError, UsageError } from '../../errors.js';
import { parseBdf } from '../../hw/pci/address.js';
import { sysfsName } from '../../hw/pci/host-function.js';
import { hostUses, type HostUse } from './host-use.js';
import { readHostFunction, SYSFS_ROOT } from './live.js';

/** Binding or unbinding refused or failed; the message says what to do. */
export class BindError extends HvmptError {}

export type PassthroughDriver = 'vfio-pci' | 'uio_pci_generic';
/** The module that provides each driver. */
const MODULE: Record<PassthroughDriver, string> = { 'vfio-pci': 'vfio-pci', uio_pci_generic: 'uio_pci_generic' };

export interface BindOptions {
  readonly sysfsRoot?: string;
  /** Where the previous drivers are remembered (default /run/hvmpt/bind, or $TMPDIR/hvmpt/bind where /run is read-only). */
  readonly stateDir?: string;
  readonly hostUses?: readonly HostUse[];
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** How long to wait for the kernel to bind (it probes asynchronously for some drivers). */
  readonly timeoutMs?: number;
}

interface BindState {
  readonly address: string;
  readonly previous: string | null;
  readonly driver: string;
  readonly since: string;
}

export function defaultStateDir(): string {
  const run = '/run/hvmpt/bind';
  try {
    mkdirSync(run, { recursive: true });
    accessSync(run, constants.W_OK);
    return run;
  } catch {
    return join(process.env['TMPDIR'] ?? '/tmp', 'hvmpt', 'bind');
  }
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);

/** Writes a record whole (a sibling, then a rename): a crash mid-write must not leave half a record. */
function writeState(stateDir: string, state: BindState): void {
  const file = join(stateDir, `${state.address}.json`);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(temp, JSON.stringify(state) + '\n');
    renameSync(temp, file);
  } catch (err) {
    if (existsSync(temp)) rmSync(temp, { force: true });
    throw new BindError(`cannot remember the function's driver here: ${code(err)} (are you root?); ${state.address} was not moved`, { input: file });
  }
}

/** The record `bind` left for `address`, undefined when there is none. */
function readState(stateDir: string, address: string): BindState | undefined {
  const file = join(stateDir, `${address}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw new BindError(`cannot read: ${code(err)}`, { input: file });
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    state = undefined;
  }
  const s = state as Partial<BindState> | undefined;
  if (typeof s !== 'object' || s === null || s.address !== address || !(s.previous === null || typeof s.previous === 'string') || typeof s.driver !== 'string') {
    throw new BindError(`is not a record hvmpt bind wrote for ${address}, so the driver it had is not known: remove it, and unbind gives the function to the driver the kernel probes`, { input: file });
  }
  return s as BindState;
}

function devDir(root: string, address: string): string {
  return join(root, 'bus', 'pci', 'devices', address);
}

function currentDriver(root: string, address: string): string | undefined {
  try {
    return basename(readlinkSync(join(devDir(root, address), 'driver')));
  } catch {
    return undefined;
  }
}

function sysWrite(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (err) {
    throw new BindError(`cannot write '${value.trim()}': ${(err as NodeJS.ErrnoException).code ?? String(err)} (are you root?)`, { input: path });
  }
}

function waitForDriver(root: string, address: string, want: string | undefined, timeoutMs: number): string | undefined {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const d = currentDriver(root, address);
    if (d === want || Date.now() > until) return d;
    spawnSync('sleep', ['0.05']);
  }
}

function ensureDriver(root: string, driver: PassthroughDriver): void {
  if (existsSync(join(root, 'bus', 'pci', 'drivers', driver))) return;
  // Only this machine's own sysfs has a kernel behind it to load modules into.
  if (root === SYSFS_ROOT) spawnSync('modprobe', [MODULE[driver]], { stdio: 'ignore' });
  if (!existsSync(join(root, 'bus', 'pci', 'drivers', driver))) throw new BindError(`driver ${driver} is not loaded and \`modprobe ${MODULE[driver]}\` did not load it`, { input: driver });
}

function resolveAddress(text: string): string {
  const b = parseBdf(text);
  // A malformed address is a usage error (exit 2), like pci view's --bdf: nothing was looked at.
  if (b === undefined) throw new UsageError(`'${text}' is not a PCI address like 0000:00:03.0`, { input: text });
  return sysfsName(b);
}

/**
 * Binds each function (and, for vfio-pci, the rest of its IOMMU group) to `driver`. Refuses,
 * before changing anything, functions the host needs for itself.
 */
export function bindFunctions(texts: readonly string[], driver: PassthroughDriver, o: BindOptions = {}): Array<{ address: string; previous: string | undefined; now: string | undefined }> {
  const root = o.sysfsRoot ?? SYSFS_ROOT;
  const stateDir = o.stateDir ?? defaultStateDir();
  const uses = o.hostUses ?? hostUses({ sysfsRoot: root });
  const todo: string[] = [];
  for (const t of texts) {
    const address = resolveAddress(t);
    const host = readHostFunction(parseBdf(address)!, root);
    const members = driver === 'vfio-pci' && host.group.length > 0 ? host.group.filter((m) => m.address === address || !m.bridge).map((m) => m.address) : [address];
    for (const m of members) {
      const use = uses.find((u) => u.address === m);
      if (use !== undefined) throw new BindError(m === address ? `${address} is ${use.use}: the host needs it` : `${address} shares IOMMU group ${host.iommuGroup} with ${m}, ${use.use}: the host needs it`, { input: address });
      if (!todo.includes(m)) todo.push(m);
    }
  }
  ensureDriver(root, driver);
  const out: Array<{ address: string; previous: string | undefined; now: string | undefined }> = [];
  /** Functions this call took from their driver: a failure gives them all back before it is reported. */
  const moved: string[] = [];
  for (const address of todo) {
    const dir = devDir(root, address);
    const previous = currentDriver(root, address);
    if (previous === driver) {
      out.push({ address, previous, now: driver });
      continue;
    }
    // Keep the oldest record: a second bind must not forget the driver the host really had.
    if (!existsSync(join(stateDir, `${address}.json`))) writeState(stateDir, { address, previous: previous ?? null, driver, since: new Date().toISOString() });
    moved.push(address);
    try {
      sysWrite(join(dir, 'driver_override'), driver);
      if (previous !== undefined) sysWrite(join(dir, 'driver', 'unbind'), address);
      sysWrite(join(root, 'bus', 'pci', 'drivers_probe'), address);
      const now = waitForDriver(root, address, driver, o.timeoutMs ?? 5000);
      o.log?.(`${address}: ${previous ?? 'no driver'} -> ${now ?? 'no driver'}`);
      if (now !== driver) throw new BindError(`the kernel did not bind ${driver} (see dmesg)`, { input: address });
    } catch (err) {
      throw rollBack(err, moved, o);
    }
    out.push({ address, previous, now: driver });
  }
  return out;
}

/** A failed bind's error, after every function it moved went back to its driver (or with why one did not). */
function rollBack(err: unknown, moved: readonly string[], o: BindOptions): unknown {
  if (!(err instanceof BindError)) return err;
  let back: string;
  try {
    back = unbindFunctions(moved, o)
      .map((r) => `${r.address} is with ${r.now ?? 'no driver'} again`)
      .join(', ');
  } catch (undo) {
    back = `giving ${moved.join(', ')} back failed too: ${undo instanceof Error ? undo.message : String(undo)}`;
  }
  return new BindError(`${err.detail}; ${back}`, err.where);
}

/** Gives each function (and its group mates bind moved) back to the driver it had before `bind`. */
export function unbindFunctions(texts: readonly string[], o: BindOptions = {}): Array<{ address: string; previous: string | undefined; now: string | undefined }> {
  const root = o.sysfsRoot ?? SYSFS_ROOT;
  const stateDir = o.stateDir ?? defaultStateDir();
  const todo: string[] = [];
  for (const t of texts) {
    const address = resolveAddress(t);
    const host = readHostFunction(parseBdf(address)!, root);
    const members = host.group.length > 0 ? host.group.filter((m) => m.address === address || existsSync(join(stateDir, `${m.address}.json`))).map((m) => m.address) : [address];
    for (const m of members) if (!todo.includes(m)) todo.push(m);
  }
  // Every record is read before anything moves: one that cannot be trusted stops the whole unbind.
  const states = new Map(todo.map((address) => [address, readState(stateDir, address)]));
  const out: Array<{ address: string; previous: string | undefined; now: string | undefined }> = [];
  for (const address of todo) {
    const dir = devDir(root, address);
    const stateFile = join(stateDir, `${address}.json`);
    const state = states.get(address);
    const before = currentDriver(root, address);
    sysWrite(join(dir, 'driver_override'), '\n');
    if (before !== undefined && before === (state?.driver ?? before) && before !== state?.previous) sysWrite(join(dir, 'driver', 'unbind'), address);
    const want = state?.previous ?? undefined;
    if (want !== undefined && currentDriver(root, address) !== want) {
      // The driver it had, by name; drivers_probe would also find it, but a host with two candidates must get the same one back.
      try {
        writeFileSync(join(root, 'bus', 'pci', 'drivers', want, 'bind'), address);
      } catch {
        sysWrite(join(root, 'bus', 'pci', 'drivers_probe'), address);
      }
    } else if (want === undefined && state === undefined) sysWrite(join(root, 'bus', 'pci', 'drivers_probe'), address);
    const now = waitForDriver(root, address, want, o.timeoutMs ?? 5000);
    o.log?.(`${address}: ${before ?? 'no driver'} -> ${now ?? 'no driver'}`);
    if (want !== undefined && now !== want) throw new BindError(`${want} did not take the function back (it is now with ${now ?? 'no driver'}); see dmesg`, { input: address });
    rmSync(stateFile, { force: true });
    out.push({ address, previous: before, now });
  }
  return out;
}
