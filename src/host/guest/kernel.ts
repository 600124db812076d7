/**
 * Debian's kernel for guest tests: the package that linux-image-amd64 points at, fetched with
 * `apt-get download` and unpacked with `dpkg-deb -x` into .cache/guest/ in the checkout (nothing
 * is installed on the host). Its modules come with it, so a guest can load vfio-pci, 9p and
 * the rest from the same build as the kernel.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HvmptError } from '../../errors.js';
import { packageRoot } from '../package-root.js';
import { readModInfo } from './elf.js';

export class GuestSetupError extends HvmptError {}

export interface DebianKernel {
  /** e.g. 6.1.0-56-amd64 */
  readonly release: string;
  /** The unpacked package. */
  readonly root: string;
  readonly vmlinuz: string;
  /** lib/modules/<release> inside root. */
  readonly modulesDir: string;
}

/** The checkout's root, found from this file's place. */
function repoRoot(): string {
  const root = packageRoot(import.meta.url);
  if (root === undefined) throw new GuestSetupError('cannot find the checkout (no package.json above the harness)');
  return root;
}

/** Where kernels are unpacked: $HVMPT_GUEST_CACHE, or .cache/guest in the checkout. */
export function guestCacheDir(): string {
  return process.env['HVMPT_GUEST_CACHE'] ?? join(repoRoot(), '.cache', 'guest');
}

function findUnpacked(cache: string): DebianKernel | undefined {
  if (!existsSync(cache)) return undefined;
  const found = readdirSync(cache)
    .filter((d) => d.startsWith('linux-image-') && !d.includes('.tmp'))
    .sort()
    .reverse();
  for (const dir of found) {
    const root = join(cache, dir);
    const boot = join(root, 'boot');
    if (!existsSync(boot)) continue;
    const image = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
    if (image === undefined) continue;
    const release = image.slice('vmlinuz-'.length);
    return { release, root, vmlinuz: join(boot, image), modulesDir: join(root, 'lib', 'modules', release) };
  }
  return undefined;
}

function run(cmd: string, args: readonly string[], cwd?: string): string {
  const r = spawnSync(cmd, [...args], { encoding: 'utf8', cwd, maxBuffer: 64 << 20 });
  if (r.error) throw new GuestSetupError(`cannot run ${cmd}: ${r.error.message}`, { input: cmd });
  if (r.status !== 0) {
    throw new GuestSetupError(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`, { input: cmd });
  }
  return r.stdout;
}

/** The versioned package behind linux-image-amd64 (e.g. linux-image-6.1.0-56-amd64). */
function kernelPackage(): string {
  const ask = (): string | undefined => {
    const r = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
    return r.status === 0 ? /Depends:\s*(linux-image-\d\S*)/.exec(r.stdout)?.[1] : undefined;
  };
  let pkg = ask();
  if (pkg === undefined && process.getuid?.() === 0) {
    run('apt-get', ['update', '-qq']);
    pkg = ask();
  }
  if (pkg === undefined) {
    throw new GuestSetupError('apt-cache knows no linux-image-amd64: run `apt-get update` (as root) or scripts/setup.sh', { input: 'apt-cache' });
  }
  return pkg;
}

/**
 * Returns the cached kernel, fetching it first when the cache is empty (one time, about 70 MB
 * download and 400 MB unpacked; `progress` hears what is happening). Safe to call from several
 * processes at once: each unpacks into its own temporary folder and the first rename wins.
 */
export function ensureDebianKernel(progress: (message: string) => void = () => {}): DebianKernel {
  const cache = guestCacheDir();
  const have = findUnpacked(cache);
  if (have !== undefined) return have;
  mkdirSync(cache, { recursive: true });
  const pkg = kernelPackage();
  progress(`fetching Debian ${pkg} into ${cache} (one time: about 70 MB to download, 400 MB unpacked)`);
  const tmp = mkdtempSync(join(cache, `${pkg}.tmp-`));
  try {
    run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pkg], tmp);
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new GuestSetupError(`apt-get download ${pkg} left no .deb`, { input: 'apt-get' });
    progress(`unpacking ${deb}`);
    const root = join(tmp, 'root');
    run('dpkg-deb', ['-x', join(tmp, deb), root]);
    rmSync(join(tmp, deb));
    try {
      renameSync(root, join(cache, pkg));
    } catch (err) {
      // Another process got there first; its copy is as good as ours.
      if (!existsSync(join(cache, pkg))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const got = findUnpacked(cache);
  if (got === undefined) throw new GuestSetupError(`${pkg} holds no boot/vmlinuz-*`, { input: cache });
  progress(`kernel ${got.release} ready`);
  return got;
}

/** A module file with the name the kernel knows it by. */
export interface ModuleFile {
  readonly name: string;
  readonly path: string;
}

/** Module name -> file, per modules folder: walking ~4000 files once per process is enough. */
const moduleIndex = new Map<string, Map<string, string>>();

function walkModules(dir: string, out: Map<string, string>): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walkModules(p, out);
    else if (name.endsWith('.ko')) out.set(name.slice(0, -3).replace(/-/g, '_'), p);
  }
}

/**
 * The module files for `names` and everything they depend on, dependencies first: the order
 * to insmod them in. Dependencies are read from each module's own .modinfo (the package
 * carries no modules.dep); modules built into the kernel are left out.
 */
export function resolveModules(kernel: DebianKernel, names: readonly string[]): ModuleFile[] {
  let files = moduleIndex.get(kernel.modulesDir);
  if (files === undefined) {
    files = new Map<string, string>();
    walkModules(join(kernel.modulesDir, 'kernel'), files);
    moduleIndex.set(kernel.modulesDir, files);
  }
  const index = files;
  const builtinPath = join(kernel.modulesDir, 'modules.builtin');
  const builtin = new Set(
    existsSync(builtinPath)
      ? readFileSync(builtinPath, 'utf8')
          .split('\n')
          .filter((l) => l.endsWith('.ko'))
          .map((l) => l.slice(l.lastIndexOf('/') + 1, -3).replace(/-/g, '_'))
      : [],
  );
  const order: ModuleFile[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, chain: readonly string[]): void => {
    const name = raw.replace(/-/g, '_');
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new GuestSetupError(`module dependency cycle: ${[...chain, name].join(' -> ')}`, { input: kernel.release });
    const path = index.get(name);
    if (path === undefined) {
      if (builtin.has(name)) {
        state.set(name, 'done');
        return;
      }
      throw new GuestSetupError(`no module '${raw}' in ${kernel.release}${chain.length > 0 ? ` (needed by ${chain[chain.length - 1]})` : ''}`, { input: kernel.modulesDir });
    }
    state.set(name, 'visiting');
    for (const dep of readModInfo(new Uint8Array(readFileSync(path)), path).depends) visit(dep, [...chain, name]);
    state.set(name, 'done');
    order.push({ name, path });
  };
  for (const n of names) visit(n, []);
  return order;
}
