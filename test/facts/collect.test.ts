/**
 * The collector on this machine, a real host nobody here wrote: it runs read-only without
 * errors, names every PCI function lspci names, and writes nothing but its output (checked
 * with strace). Then the same without root, under dash and busybox sh, and in a mount
 * namespace whose /sys is empty (a container without PCI).
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { readFacts } from '../../src/host/facts/archive.js';
import { collectorScriptPath } from '../../src/host/facts/collector.js';
import { readSnapshot } from '../../src/hw/facts/snapshot.js';
import { analyze } from '../../src/hw/facts/analyze.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import { monitorWindows } from '../../src/cli/facts-analysis.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { loadPlan } from '../../src/plan/schema.js';
import { CLI } from '../helpers/paths.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { hvmpt, run } from '../helpers/run.js';

const SCRIPT = collectorScriptPath();

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-collect-'));
  chmodSync(dir, 0o777);
  return dir;
}

/** This machine's functions and IDs as pciutils reads them (`lspci -Dn`): the oracle. */
function lspciFunctions(): Map<string, string> {
  const r = run('lspci', ['-Dn']);
  assert.equal(r.status, 0, r.stderr);
  return new Map(
    r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const [bdf, , ids] = l.split(/\s+/);
        return [bdf!, ids!];
      }),
  );
}

/** The paths a system call writes (creates, truncates, removes, renames), resolved with strace -y's descriptor paths. */
function writtenPaths(trace: string): { paths: string[]; unresolved: string[] } {
  const paths: string[] = [];
  const unresolved: string[] = [];
  const WRITE_OPEN = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/;
  for (const line of trace.split('\n')) {
    const m = /^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(line);
    if (m === null) continue;
    const [, call, args] = m;
    if ((call === 'openat' || call === 'open') && !WRITE_OPEN.test(args!)) continue;
    if (call === 'chdir' || call === 'fchdir') continue;
    // dirfd<path>, "name" or "/absolute"
    const at = /^(?:(?:AT_FDCWD|\d+)<([^>]*)>,\s*)?"([^"]*)"/.exec(args!);
    if (at === null) {
      unresolved.push(line);
      continue;
    }
    const name = at[2]!;
    if (name.startsWith('/')) paths.push(name);
    else if (at[1] !== undefined) paths.push(resolve(at[1], name));
    else unresolved.push(line);
    // rename(old, new) and friends: the second path too.
    const second = /,\s*(?:(?:AT_FDCWD|\d+)<([^>]*)>,\s*)?"([^"]*)"/.exec(args!.slice(at[0].length));
    if ((call === 'rename' || call === 'renameat' || call === 'renameat2' || call === 'link' || call === 'linkat' || call === 'symlink' || call === 'symlinkat') && second !== null) {
      paths.push(second[2]!.startsWith('/') ? second[2]! : resolve(second[1] ?? '/', second[2]!));
    }
  }
  return { paths, unresolved };
}

test('hvmpt collect on this machine writes nothing outside its output (strace), and names every PCI function lspci names', (t) => {
  if (!skipUnlessCommand(t, 'strace', 'strace') || !skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const dir = scratch();
  try {
    const out = join(dir, 'facts.tar');
    const trace = join(dir, 'trace.txt');
    const calls = 'openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat,symlink,symlinkat,truncate,chmod,fchmodat,chown,fchownat,mknod,mknodat';
    const r = run('strace', ['-f', '-qq', '-y', '-e', `trace=${calls}`, '-o', trace, process.execPath, CLI, 'collect', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const { paths, unresolved } = writtenPaths(readFileSync(trace, 'utf8'));
    assert.deepEqual(unresolved, [], 'every write is to a path the trace names');
    assert.ok(paths.some((p) => p === out), 'the archive is written');
    const outside = paths.filter((p) => p !== '/dev/null' && p !== out && !p.startsWith(`${out}.tmp.`));
    assert.deepEqual(outside, [], 'nothing is written outside the archive and its staging folder');
    assert.deepEqual(readdirSync(dir).sort(), ['facts.tar', 'trace.txt'], 'the staging folder is gone');

    const s = readSnapshot(readFacts(out));
    assert.equal(s.collector.root, process.getuid?.() === 0);
    const lspci = lspciFunctions();
    assert.deepEqual(s.pci.functions.map((f) => formatBdf(f.bdf, true)).sort(), [...lspci.keys()].sort());
    for (const f of s.pci.functions) {
      const ids = `${f.vendorId!.toString(16).padStart(4, '0')}:${f.deviceId!.toString(16).padStart(4, '0')}`;
      assert.equal(ids, lspci.get(formatBdf(f.bdf, true)), `${formatBdf(f.bdf, true)}: IDs`);
      // The config space is the kernel's, byte for byte (root reads it all).
      const live = readFileSync(`/sys/bus/pci/devices/${formatBdf(f.bdf, true)}/config`);
      assert.deepEqual(Buffer.from(f.config!.bytes), live);
    }
    assert.deepEqual(s.unreadable.filter((u) => u.why === 'denied'), [], 'root reads everything');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analyze --live on this machine: every function named, the root disk and the default-route NIC as the system says', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils') || !skipUnlessCommand(t, 'findmnt', 'util-linux')) return;
  const r = hvmpt(['analyze', '--live', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const a = JSON.parse(r.stdout) as { devices: Array<{ device: string; role: string; hostUse: Array<{ kind: string; device: string }>; iommu: { outcome: string }; identity: { outcome: string } }> };
  assert.deepEqual(a.devices.map((d) => d.device).sort(), [...lspciFunctions().keys()].sort());
  for (const d of a.devices) assert.ok(['yes', 'after-changes', 'no'].includes(d.iommu.outcome) && ['yes', 'after-changes', 'no'].includes(d.identity.outcome));
  // The oracle: findmnt's source for /, and the PCI function sysfs puts that disk under.
  // The PCI function a sysfs device sits under, by coreutils' realpath.
  const pciOf = (sysfs: string): string | undefined =>
    run('realpath', [sysfs]).stdout.trim().split('/').filter((p) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(p)).pop();
  const source = run('findmnt', ['-no', 'SOURCE', '/']).stdout.trim();
  const disk = /^\/dev\/([a-z0-9]+)/.exec(source)?.[1];
  const diskFn = disk === undefined || !existsSync(`/sys/class/block/${disk}`) ? undefined : pciOf(`/sys/class/block/${disk}`);
  if (diskFn !== undefined) assert.ok(a.devices.find((d) => d.device === diskFn)?.hostUse.some((u) => u.kind === 'boot-disk'), `${diskFn} holds / (${source})`);
  const route = /dev (\S+)/.exec(run('ip', ['route', 'show', 'default']).stdout)?.[1];
  const nicFn = route === undefined || !existsSync(`/sys/class/net/${route}/device`) ? undefined : pciOf(`/sys/class/net/${route}/device`);
  if (nicFn !== undefined) assert.ok(a.devices.find((d) => d.device === nicFn)?.hostUse.some((u) => u.kind === 'default-route'), `${nicFn} carries the default route (${route})`);
  process.stdout.write(`# this machine: / on ${source} (${diskFn ?? 'not PCI'}), default route via ${route ?? 'none'} (${nicFn ?? 'not PCI'})\n`);
  const text = hvmpt(['analyze', '--live']);
  assert.equal(text.status, 0, text.stderr);
  for (const d of a.devices) assert.ok(text.stdout.includes(d.device), `${d.device} in the text report`);
  assert.match(text.stdout, /host-side changes/);
});

function runAsNobody(t: TestContext, args: readonly string[]): ReturnType<typeof run> | undefined {
  if (process.getuid?.() !== 0) {
    process.stdout.write(`SKIPPED (not root: a collection as another user needs root to switch to it): ${t.name}\n`);
    t.skip('not root');
    return undefined;
  }
  return run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...args]);
}

test('without root the collector takes what it may, lists what it could not read, and the analysis says what is unknown', (t) => {
  const dir = scratch();
  try {
    const out = join(dir, 'nobody.tar');
    // The checkout may sit below a directory only root can enter (mktemp -d makes those): the
    // other user runs a copy of the script from the scratch directory it may read.
    const script = join(dir, 'collect.sh');
    copyFileSync(SCRIPT, script);
    chmodSync(script, 0o644);
    const r = runAsNobody(t, ['sh', script, '--out', out]);
    if (r === undefined) return;
    assert.equal(r.status, 0, r.stderr);
    const s = readSnapshot(readFacts(out));
    assert.equal(s.collector.root, false);
    assert.equal(s.collector.uid, 65534);
    assert.ok(s.pci.functions.length > 0);
    for (const f of s.pci.functions) assert.equal(f.config?.bytes.length, 64, 'the kernel gives non-root readers the 64-byte header');
    const denied = s.unreadable.filter((u) => u.why === 'denied').map((u) => u.path);
    assert.ok(denied.some((p) => p.startsWith('/sys/firmware/acpi/tables/')), `ACPI tables listed as unreadable: ${denied.join(', ')}`);
    assert.equal(s.acpi.images.length, 0);
    const a = analyze(s, { windows: monitorWindows(1n << 30n), memory: 1n << 30n });
    assert.ok(a.machine.facts.some((f) => /without root/.test(f.text)));
    assert.equal(a.devices.length, s.pci.functions.length);
    const cli = hvmpt(['analyze', out]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /collected without root/);
    assert.match(cli.stdout, /unknown \(its capabilities are beyond the 64 bytes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a machine with no PCI and no firmware files (a container\'s empty /sys): clear findings, not a crash', (t) => {
  if (process.getuid?.() !== 0 || !skipUnlessCommand(t, 'unshare', 'util-linux')) {
    if (process.getuid?.() !== 0) {
      process.stdout.write(`SKIPPED (not root: a private mount namespace needs root): ${t.name}\n`);
      t.skip('not root');
    }
    return;
  }
  const dir = scratch();
  try {
    const out = join(dir, 'container.tar');
    // A private mount namespace (unshare fails, and nothing runs, if it cannot make one): /sys is an empty tmpfs there, and only there.
    const r = run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o size=1m,ro hvmpt-empty /sys && exec sh "$0" --out "$1"', SCRIPT, out]);
    assert.equal(r.status, 0, r.stderr);
    const s = readSnapshot(readFacts(out));
    assert.equal(s.pci.functions.length, 0);
    assert.ok(s.unreadable.some((u) => u.path === '/sys/bus/pci/devices' && u.why === 'absent'));
    assert.ok(s.unreadable.some((u) => u.path === '/sys/firmware/acpi/tables' && u.why === 'absent'));
    const cli = hvmpt(['analyze', out]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /no PCI functions: this is a machine or container without a PCI bus/);
    assert.match(cli.stdout, /host-side changes: none/);
    const show = hvmpt(['snapshot', 'show', out]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /PCI functions \(0\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the script hvmpt prints is the one it runs, and dash and busybox sh collect the same files with it', (t) => {
  const printed = hvmpt(['collect', '--print-script']);
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal(printed.stdout, readFileSync(SCRIPT, 'utf8'));
  if (!skipUnlessCommand(t, 'dash', 'dash') || !skipUnlessCommand(t, 'busybox', 'busybox-static')) return;
  const dir = scratch();
  try {
    const list = (shell: readonly string[], name: string): string[] => {
      const out = join(dir, name);
      const r = run(shell[0]!, [...shell.slice(1), SCRIPT, '--out', out]);
      assert.equal(r.status, 0, `${shell.join(' ')}: ${r.stderr}`);
      return readFacts(out).paths().filter((p) => !p.startsWith('proc/') && p !== 'collector').sort();
    };
    const viaDash = list(['dash'], 'dash.tar');
    const viaBusybox = list(['busybox', 'sh'], 'busybox.tar');
    assert.deepEqual(viaBusybox, viaDash);
    // Standard output works too, for piping from a machine without hvmpt.
    const piped = run('sh', ['-c', `sh "${SCRIPT}" --out - > "${join(dir, 'piped.tar')}"`]);
    assert.equal(piped.status, 0, piped.stderr);
    assert.ok(readFacts(join(dir, 'piped.tar')).has('MANIFEST'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a plan from this machine\'s collection: what the analysis allows (here nothing: no IOMMU, and no INTx pins on its virtio functions), identity memory from its own E820, and it composes', () => {
  const dir = scratch();
  try {
    const out = join(dir, 'facts.tar');
    assert.equal(run('sh', [SCRIPT, '--out', out]).status, 0);
    const s = readSnapshot(readFacts(out));
    const a = analyze(s, { windows: monitorWindows(1n << 30n), memory: 1n << 30n });
    const plan = join(dir, 'plan.yaml');
    const r = hvmpt(['plan', '--from', out, '--out', plan, '--memory', '256M']);
    assert.equal(r.status, 0, r.stderr);
    const p = loadPlan(plan);
    const passable = a.devices.filter((d) => d.role === 'endpoint' && d.hostUse.length === 0 && (a.machine.iommu.on ? d.iommu : d.identity).outcome !== 'no');
    assert.equal((p.pci?.passthrough ?? []).length, passable.length);
    if (!a.machine.iommu.on && s.memory.memmap !== undefined) {
      assert.equal(p.memory.layout, 'identity');
      assert.match(composePlanFile(plan).summary.join('\n'), /identity layout/);
    }
    // Without --out a plan that names files is refused as a usage error; the schema check runs on what was written.
    const noOut = hvmpt(['plan', '--from', out]);
    assert.equal(noOut.status, p.machine.hostMap === undefined ? 0 : 2, noOut.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
