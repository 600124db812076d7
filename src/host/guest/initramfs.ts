/**
 * Builds a guest's initrd: an optional uncompressed "early" cpio first (where Linux looks for
 * kernel/firmware/acpi/*.aml table upgrades and microcode), then an initramfs holding Debian's
 * static busybox, the caller's files, kernel modules with their dependencies, and an /init
 * that mounts the usual filesystems, loads the modules, runs the caller's script and powers off.
 *
 * What /init prints reaches the serial console. The harness's markers, each on its own line:
 *   @@hvmpt-ready                 modules loaded, about to run the script
 *   @@hvmpt-begin NAME            start of a section (see `section` below)
 *   @@hvmpt-end NAME rc=N         its end and exit status
 *   @@hvmpt-done rc=N             the script finished with status N
 * The script may call `section NAME command…` to fence a command's output so the host can pick
 * it out of the console stream (kernel messages may come in between otherwise).
 */
import { readFileSync } from 'node:fs';
import { GuestSetupError, resolveModules, type DebianKernel } from './kernel.js';
import { concat, writeCpio, type CpioEntry } from './cpio.js';
import { needsInterpreter } from './elf.js';

export interface GuestFile {
  /** Path inside the guest, e.g. `etc/plan.json` or `/kernel/firmware/acpi/dsdt.aml`. */
  readonly path: string;
  /** Contents, or `hostPath` to copy a file from this machine. */
  readonly data?: Uint8Array | string;
  readonly hostPath?: string;
  /** Permission bits; default 0644 (0755 for files under bin/). */
  readonly mode?: number;
}

export interface InitrdOptions {
  /** Shell commands /init runs after setup; their output goes to the console. */
  readonly script?: string;
  /** A whole /init of your own (run by busybox sh); replaces the default and ignores `script` and `modules`. */
  readonly init?: string;
  /** Extra files for the initramfs (parent directories are created). */
  readonly files?: readonly GuestFile[];
  /** Kernel modules to load, by name; their dependencies come too, loaded first. Needs `kernel`. */
  readonly modules?: readonly string[];
  /** Parameters for modules /init loads, by module name (`{ kvm_amd: 'vgif=0' }`): busybox insmod reads no /proc/cmdline. */
  readonly moduleParams?: Readonly<Record<string, string>>;
  readonly kernel?: DebianKernel;
  /** Files for the uncompressed early cpio placed ahead of the initramfs (kernel/firmware/acpi/*.aml). */
  readonly early?: readonly GuestFile[];
  /** The busybox to use; it must be statically linked. Default /bin/busybox (Debian busybox-static). */
  readonly busybox?: string;
}

export const MARKER_READY = '@@hvmpt-ready';
export const MARKER_DONE = '@@hvmpt-done';

/** The directories every initrd built here has, and the files it always holds itself. */
const BASE_DIRS = ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'lib', 'lib/modules', 'mnt'];
const OWN_FILES = ['init', 'bin/busybox', 'dev/console'];

/**
 * Why a caller's file cannot go at `path` (relative) in an initrd built here: it would replace
 * one of the initrd's own directories or files, or sit under one of its files. Undefined when it can.
 */
export function initrdPathConflict(path: string): string | undefined {
  if (BASE_DIRS.includes(path)) return `'${path}' is one of the initrd's own directories`;
  if (OWN_FILES.includes(path)) return `'${path}' is the initrd's own ${path === 'init' ? '/init (the script runs from it)' : `/${path}`}`;
  const under = OWN_FILES.find((f) => path.startsWith(`${f}/`));
  return under === undefined ? undefined : `'${path}' would be inside the initrd's own file /${under}`;
}

function fileBytes(f: GuestFile): Uint8Array {
  if (f.data !== undefined) return typeof f.data === 'string' ? new TextEncoder().encode(f.data) : f.data;
  if (f.hostPath !== undefined) {
    try {
      return new Uint8Array(readFileSync(f.hostPath));
    } catch (err) {
      throw new GuestSetupError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: f.hostPath });
    }
  }
  throw new GuestSetupError(`file ${f.path} has neither data nor hostPath`);
}

/** Members for `files`, with every parent directory before its children and no duplicates. */
function withParents(files: ReadonlyArray<{ path: string; data: Uint8Array; mode: number }>, have: Set<string>): CpioEntry[] {
  const out: CpioEntry[] = [];
  for (const f of files) {
    const parts = f.path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!have.has(dir)) {
        have.add(dir);
        out.push({ kind: 'dir', path: dir });
      }
    }
    out.push({ kind: 'file', path: parts.join('/'), data: f.data, mode: f.mode });
  }
  return out;
}

function defaultInit(script: string, modules: readonly string[], params: Readonly<Record<string, string>>): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
section() {
  __name=$1; shift
  echo "@@hvmpt-begin $__name"
  "$@" 2>&1
  __rc=$?
  echo "@@hvmpt-end $__name rc=$__rc"
  return $__rc
}
${modules.map((m) => `insmod /lib/modules/${m}.ko${params[m] === undefined ? '' : ` ${params[m]}`} || echo "@@hvmpt-insmod-failed ${m}"`).join('\n')}
echo ${MARKER_READY}
(
${script}
)
echo "${MARKER_DONE} rc=$?"
poweroff -f
`;
}

/** The initrd bytes: [early cpio] + initramfs cpio (both uncompressed; Linux takes them concatenated). */
export function buildInitrd(options: InitrdOptions = {}): Uint8Array {
  const busyboxPath = options.busybox ?? '/bin/busybox';
  let busybox: Uint8Array;
  try {
    busybox = new Uint8Array(readFileSync(busyboxPath));
  } catch (err) {
    throw new GuestSetupError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)} (Debian package busybox-static)`, { input: busyboxPath });
  }
  if (needsInterpreter(busybox, busyboxPath)) {
    throw new GuestSetupError('is dynamically linked and cannot run alone in an initramfs: install Debian busybox-static', { input: busyboxPath });
  }
  const modules = options.modules ?? [];
  if (modules.length > 0 && options.kernel === undefined) throw new GuestSetupError('modules need the kernel they were built for (options.kernel)');
  const moduleFiles = modules.length > 0 ? resolveModules(options.kernel!, modules) : [];

  const have = new Set(BASE_DIRS);
  const base: CpioEntry[] = [...have].map((path) => ({ kind: 'dir', path }));
  // Linux opens /dev/console for init's stdio before anything is mounted.
  base.push({ kind: 'char', path: 'dev/console', major: 5, minor: 1 });
  base.push({ kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 });
  const init = options.init ?? defaultInit(options.script ?? '', moduleFiles.map((m) => m.name), options.moduleParams ?? {});
  const files = [
    { path: 'init', data: new TextEncoder().encode(init), mode: 0o755 },
    ...moduleFiles.map((m) => ({ path: `lib/modules/${m.name}.ko`, data: new Uint8Array(readFileSync(m.path)), mode: 0o644 })),
    ...(options.files ?? []).map((f) => ({
      path: f.path.replace(/^\/+/, ''),
      data: fileBytes(f),
      mode: f.mode ?? (/^\/?(s?bin|usr\/s?bin)\//.test(f.path) ? 0o755 : 0o644),
    })),
  ];
  const main = writeCpio([...base, ...withParents(files, have)]);
  if (options.early === undefined || options.early.length === 0) return main;
  const early = writeCpio(
    withParents(
      options.early.map((f) => ({ path: f.path.replace(/^\/+/, ''), data: fileBytes(f), mode: f.mode ?? 0o644 })),
      new Set(),
    ),
  );
  return concat([early, main]);
}
