import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_DIR_OPS, writeTableSet, type DirOps, type TableFile } from '../../src/cli/out-dir.js';
import { HvmptError } from '../../src/errors.js';
import { fixture } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';

/** Output directories written all or nothing (issue 9, items 3, 7 and 8). */

const NEW: TableFile[] = ['dsdt', 'facp', 'apic', 'ssdt1'].map((n, i) => ({ file: `${n}.dat`, bytes: new Uint8Array([i + 1, 2, 3]) }));

/** name -> contents of every entry (directories as `<dir>`). */
function snapshot(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    out[n] = statSync(p).isDirectory() ? '<dir>' : readFileSync(p).toString('hex');
  }
  return out;
}

/** Node's operations, with the `failAt`-th mkdir, write, rename or chmod failing as a full disk would. */
function failing(failAt: number): { ops: DirOps; calls: () => number } {
  let n = 0;
  const step = (): void => {
    if (++n === failAt) throw Object.assign(new Error('injected'), { code: 'ENOSPC' });
  };
  return {
    ops: {
      mkdir: (p) => (step(), NODE_DIR_OPS.mkdir(p)),
      writeFile: (p, b) => (step(), NODE_DIR_OPS.writeFile(p, b)),
      rename: (a, b) => (step(), NODE_DIR_OPS.rename(a, b)),
      chmod: (p, m) => (step(), NODE_DIR_OPS.chmod(p, m)),
      remove: (p) => NODE_DIR_OPS.remove(p),
    },
    calls: () => n,
  };
}

const SETUPS: Record<string, { force: boolean; make(dir: string): void }> = {
  'a missing directory (and parent)': { force: false, make: () => {} },
  'an empty directory': { force: false, make: (d) => mkdirSync(d, { recursive: true }) },
  'a directory of old tables, --force': {
    force: true,
    make: (d) => {
      mkdirSync(d, { recursive: true });
      for (const n of ['dsdt', 'facp', 'hpet', 'ssdt1', 'ssdt2']) writeFileSync(join(d, `${n}.dat`), `old ${n}`);
      chmodSync(d, 0o750);
    },
  },
  'a directory of other files': {
    force: false,
    make: (d) => {
      mkdirSync(join(d, 'notes'), { recursive: true });
      writeFileSync(join(d, 'README'), 'mine');
    },
  },
};

/** A fresh scratch directory for `body`, removed afterwards. */
function scratch(body: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'hvmpt-outdir-'));
  try {
    body(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a write that fails at any step leaves the output directory exactly as it was, and no staging directory behind', () => {
  scratch((root) => {
    for (const [name, setup] of Object.entries(SETUPS)) {
      const dir = join(root, name.replace(/\W+/g, '-'), 'out');
      // A clean run counts the steps and shows the result; then each step fails in turn.
      setup.make(dir);
      const before = snapshot(dir);
      const counter = failing(0);
      writeTableSet(dir, NEW, { force: setup.force }, counter.ops);
      const steps = counter.calls();
      const written = snapshot(dir);
      for (const f of NEW) assert.equal(written[f.file], Buffer.from(f.bytes).toString('hex'), `${name}: ${f.file}`);
      assert.equal(Object.keys(written).length, NEW.length + Object.keys(before).filter((k) => !k.endsWith('.dat')).length, `${name}: old tables gone, other files kept`);
      if (setup.force) assert.equal(statSync(dir).mode & 0o777, 0o750, 'the directory keeps its mode');
      for (let k = 1; k <= steps; k++) {
        rmSync(join(root, name.replace(/\W+/g, '-')), { recursive: true, force: true });
        setup.make(dir);
        assert.throws(() => writeTableSet(dir, NEW, { force: setup.force }, failing(k).ops), (e: unknown) => e instanceof HvmptError && /ENOSPC/.test(e.message), `${name}: step ${k}`);
        assert.deepEqual(snapshot(dir), before, `${name}: step ${k} of ${steps} failed, the directory is as it was`);
        const parent = join(dir, '..');
        if (existsSync(parent)) assert.deepEqual(readdirSync(parent).filter((n) => n.includes('hvmpt-')), [], `${name}: step ${k}: no staging left`);
      }
    }
  });
});

test('acpi rewrite --force into a directory that also holds something else is refused before anything is deleted', () => {
  scratch((root) => {
    const q35 = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');
    const rules = join(root, 'rules.yaml');
    writeFileSync(rules, 'acpi:\n  rules:\n    - { action: hide-table, signature: WAET }\n');
    const out = join(root, 'out');
    assert.equal(hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out]).status, 0);
    const tables = snapshot(out);
    assert.ok(Object.keys(tables).length >= 4);
    mkdirSync(join(out, 'zz.dat'));
    const r = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out, '--force']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^hvmpt: ${out}: holds zz\\.dat besides its tables, which --force does not replace`, 'm'));
    assert.deepEqual(snapshot(out), { ...tables, 'zz.dat': '<dir>' }, 'every old table is still there');
    rmSync(join(out, 'zz.dat'), { recursive: true });
    const again = hvmpt(['acpi', 'rewrite', q35, '--rules', rules, '--out', out, '--force']);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(snapshot(out), tables);
  });
});

test('acpi extract refuses a truncated dump and an occupied directory (--force replaces), and a /proc target ends at once', () => {
  scratch((root) => {
    const x230 = fixture('acpi', 'laptop-lenovo-thinkpad-x230-intel.acpidump.txt');
    const text = readFileSync(x230, 'latin1');
    const cut = join(root, 'cut.txt');
    writeFileSync(cut, text.slice(0, text.indexOf('DSDT @') + 40_000), 'latin1');
    const out = join(root, 'out');
    const t = hvmpt(['acpi', 'extract', cut, '--out', out]);
    assert.equal(t.status, 1);
    assert.match(t.stderr, /cut\.txt: line \d+: offset 0x4: table declares length 70531, only \d+ bytes there/);
    assert.equal(existsSync(out), false, 'nothing written');

    const q35 = fixture('acpi', 'qemu-kvm-q35-bochs.acpidump.txt');
    mkdirSync(out);
    writeFileSync(join(out, 'dsdt.dat'), 'another machine');
    writeFileSync(join(out, 'ssdt7.dat'), 'another machine');
    const busy = hvmpt(['acpi', 'extract', q35, '--out', out]);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /out: already holds tables \(dsdt\.dat, ssdt7\.dat\): give a new or empty directory, or --force to replace them/);
    assert.equal(readFileSync(join(out, 'dsdt.dat'), 'utf8'), 'another machine');
    const forced = hvmpt(['acpi', 'extract', q35, '--out', out, '--force']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['apic.dat', 'dsdt.dat', 'facp.dat', 'facs.dat', 'mcfg.dat', 'waet.dat'], 'the stale ssdt7 is gone');

    // Node's recursive mkdir spins on procfs; the walk here answers at once.
    const proc = hvmpt(['acpi', 'extract', q35, '--out', '/proc/hvmpt-nope/x'], { timeout: 60_000 });
    assert.equal(proc.status, 1);
    assert.match(proc.stderr, /^hvmpt: \/proc\/hvmpt-nope\/x: cannot create \/proc\/hvmpt-nope: ENOENT/);
  });
});
