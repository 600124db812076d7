import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ASLEEP_WORDS,
  bootGuest,
  buildInitrd,
  CpioError,
  ensureDebianKernel,
  GuestBootError,
  GuestSetupError,
  needsInterpreter,
  readCpio,
  resolveModules,
  writeCpio,
  type CpioEntry,
} from '../../src/host/guest/index.js';
import { run } from '../helpers/run.js';
import { skipUnlessCommand } from '../helpers/require.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('GNU cpio extracts what writeCpio writes: files, modes, directories, symlinks, device nodes', (t) => {
  if (!skipUnlessCommand(t, 'cpio', 'cpio')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-cpio-'));
  const odd = new Uint8Array(1027).map((_, i) => (i * 7) & 0xff);
  const archive = writeCpio([
    { kind: 'dir', path: 'etc' },
    { kind: 'file', path: 'etc/hello', data: enc('hello\n') },
    { kind: 'file', path: '/bin/tool', data: odd, mode: 0o755 },
    { kind: 'symlink', path: 'etc/link', target: 'hello' },
    { kind: 'dir', path: 'dev' },
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'empty', data: new Uint8Array(0) },
  ]);
  writeFileSync(join(dir, 'a.cpio'), archive);
  mkdirSync(join(dir, 'x'));
  mkdirSync(join(dir, 'x', 'bin'));
  const r = run('sh', ['-c', 'cpio -idm --quiet < ../a.cpio && cpio -itv --quiet < ../a.cpio'], { cwd: join(dir, 'x') });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dir, 'x', 'etc', 'hello'), 'utf8'), 'hello\n');
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'x', 'bin', 'tool'))), odd);
  assert.equal(statSync(join(dir, 'x', 'bin', 'tool')).mode & 0o777, 0o755);
  assert.equal(readlinkSync(join(dir, 'x', 'etc', 'link')), 'hello');
  assert.match(r.stdout, /^crw------- .* 5,\s+1 .* dev\/console$/m);
  assert.match(r.stdout, /empty$/m);
});

test('readCpio reads what GNU cpio writes (newc), and round-trips writeCpio', (t) => {
  if (!skipUnlessCommand(t, 'cpio', 'cpio')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-cpio-'));
  mkdirSync(join(dir, 'd'));
  writeFileSync(join(dir, 'd', 'f'), 'abc');
  chmodSync(join(dir, 'd', 'f'), 0o640);
  symlinkSync('f', join(dir, 'd', 'l'));
  const r = run('sh', ['-c', 'printf "d\\nd/f\\nd/l\\n" | cpio -o -H newc --quiet > a.cpio'], { cwd: dir });
  assert.equal(r.status, 0, r.stderr);
  const entries = readCpio(new Uint8Array(readFileSync(join(dir, 'a.cpio'))));
  assert.deepEqual(entries.map((e) => [e.kind, e.path]), [['dir', 'd'], ['file', 'd/f'], ['symlink', 'd/l']]);
  const f = entries[1]!;
  assert.ok(f.kind === 'file' && new TextDecoder().decode(f.data) === 'abc' && f.mode === 0o640);
  const mine: CpioEntry[] = [{ kind: 'file', path: 'a', data: enc('x'), mode: 0o600 }, { kind: 'symlink', path: 'b', target: 'a' }];
  assert.deepEqual(readCpio(writeCpio(mine)), mine);
});

test('readCpio on mutated archives ends in a CpioError or a value, never anything else', () => {
  const good = writeCpio([{ kind: 'dir', path: 'etc' }, { kind: 'file', path: 'etc/x', data: enc('0123456789') }]);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(good.length), (edits, cut) => {
      const bytes = good.slice(0, cut);
      for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
      try {
        readCpio(bytes);
      } catch (err) {
        assert.ok(err instanceof CpioError, String(err));
      }
    }),
    { numRuns: 500 },
  );
  assert.throws(() => writeCpio([{ kind: 'file', path: '../escape', data: enc('') }]), CpioError);
});

test('the initrd: early cpio first, then busybox, /init, /dev/console and the given files', () => {
  const bytes = buildInitrd({
    script: 'echo hi',
    files: [{ path: '/etc/plan.json', data: '{}' }, { path: 'usr/bin/tool', data: 'x' }],
    early: [{ path: 'kernel/firmware/acpi/dsdt.aml', data: new Uint8Array([1, 2, 3]) }],
  });
  const entries = readCpio(bytes);
  // Linux looks for the table upgrade in the first archive only, so it must come first.
  assert.deepEqual(entries.slice(0, 4).map((e) => e.path), ['kernel', 'kernel/firmware', 'kernel/firmware/acpi', 'kernel/firmware/acpi/dsdt.aml']);
  const paths = entries.map((e) => e.path);
  for (const p of ['bin/busybox', 'init', 'dev/console', 'etc/plan.json', 'usr/bin/tool']) assert.ok(paths.includes(p), p);
  assert.ok(paths.indexOf('etc') < paths.indexOf('etc/plan.json'));
  const init = entries.find((e) => e.path === 'init');
  assert.ok(init?.kind === 'file' && init.mode === 0o755 && new TextDecoder().decode(init.data).includes('echo hi'));
  const tool = entries.find((e) => e.path === 'usr/bin/tool');
  assert.ok(tool?.kind === 'file' && tool.mode === 0o755);
  assert.throws(() => buildInitrd({ busybox: '/bin/sh' }), (err: unknown) => err instanceof GuestSetupError && /dynamically linked.*busybox-static/.test(err.message));
  assert.equal(needsInterpreter(new Uint8Array(readFileSync('/bin/busybox')), 'busybox'), false);
  assert.throws(() => buildInitrd({ modules: ['vfio'] }), /modules need the kernel/);
});

test('modules resolve with their dependencies first, from the modules\' own .modinfo', () => {
  const kernel = ensureDebianKernel((m) => process.stderr.write(`guest: ${m}\n`));
  const order = resolveModules(kernel, ['vfio-pci', '9p', 'uio_pci_generic']).map((m) => m.name);
  const before = (a: string, b: string): void => assert.ok(order.indexOf(a) >= 0 && order.indexOf(a) < order.indexOf(b), `${a} before ${b} in ${order.join(' ')}`);
  before('vfio', 'vfio_pci_core');
  before('irqbypass', 'vfio_pci_core');
  before('vfio_pci_core', 'vfio_pci');
  before('9pnet', '9p');
  before('uio', 'uio_pci_generic');
  assert.equal(new Set(order).size, order.length);
  assert.throws(() => resolveModules(kernel, ['no_such_module']), /no module 'no_such_module'/);
  // busybox insmod reads no /proc/cmdline: a module's parameters go on its own insmod line.
  const init = readCpio(buildInitrd({ kernel, modules: ['uio_pci_generic'], moduleParams: { uio: 'x=1' } })).find((e) => e.path === 'init');
  const text = init?.kind === 'file' ? new TextDecoder().decode(init.data) : '';
  assert.match(text, /^insmod \/lib\/modules\/uio\.ko x=1 \|\| /m);
  assert.match(text, /^insmod \/lib\/modules\/uio_pci_generic\.ko \|\| /m);
});

test('a guest that never prints the marker is stopped with an error naming the timeout and its last lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-fakeqemu-'));
  const fake = join(dir, 'qemu');
  writeFileSync(fake, '#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do echo "line $i\\r"; done\nexec sleep 30\n');
  chmodSync(fake, 0o755);
  // From when QEMU starts: the wait for a guest slot (other boots on this machine) is not the guest's.
  let started = Number.NaN;
  await assert.rejects(
    bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake, timeoutMs: 1500, onStart: () => (started = Date.now()) }),
    (err: unknown) => {
      assert.ok(err instanceof GuestBootError);
      assert.match(err.message, /^linux guest: serial console: no \/\^@@hvmpt-done rc=\\d\+\$\/m within 1\.5 s; the console ended with:\nline 6\n/);
      assert.match(err.message, /line 30$/);
      assert.doesNotMatch(err.message, /line 5\n/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 10_000);
  writeFileSync(fake, '#!/bin/sh\necho "Kernel panic - not syncing: VFS: Unable to mount root fs"\necho "qemu: bad option" >&2\nexit 3\n');
  await assert.rejects(
    bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake }),
    /stopped \(exit 3\) before .*; it said: qemu: bad option; the console ended with:\nKernel panic/,
  );
  // A guest that resets under -no-reboot: QEMU exits 0 with nothing on stderr, and says so.
  writeFileSync(fake, '#!/bin/sh\necho "[  521.0] rcu: INFO: rcu_sched self-detected stall on CPU"\nexit 0\n');
  await assert.rejects(bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake }), (err: unknown) => {
    assert.ok(err instanceof GuestBootError);
    assert.equal(err.failure, 'stopped');
    assert.equal(err.qemuEnded, 'exit 0');
    assert.equal(err.qemuSaid, '');
    assert.match(err.message, /stopped \(exit 0\) before .*; the console ended with:\n.*rcu_sched self-detected stall/);
    return true;
  });
  await assert.rejects(bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: join(dir, 'missing') }), /cannot run .*missing/);
  // A custom marker ends the wait as soon as it appears.
  writeFileSync(fake, '#!/bin/sh\necho "booting"\necho "READY 42"\nexec sleep 30\n');
  const r = await bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake, marker: /READY \d+/ });
  assert.match(r.output, /READY 42/);
  assert.equal(r.rc, undefined);
});

test('a TCG guest whose QEMU uses no CPU is stopped as asleep for good; one that works is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-fakeqemu-'));
  try {
    const fake = join(dir, 'qemu');
    // Asleep: the last console line, then a QEMU that never runs again (a kernel that lost its timer).
    writeFileSync(fake, '#!/bin/sh\necho "kvm [278]: vcpu0, guest rIP: 0xffffffff Unhandled WRMSR"\nexec sleep 60\n');
    chmodSync(fake, 0o755);
    let started = Number.NaN;
    await assert.rejects(
      bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake, timeoutMs: 50_000, asleepMs: 2_000, onStart: () => (started = Date.now()) }),
      (err: unknown) => {
        assert.ok(err instanceof GuestBootError);
        assert.equal(err.failure, 'asleep');
        assert.ok(err.message.includes(ASLEEP_WORDS), err.message);
        assert.match(err.message, /used no CPU for 2 s.*the console ended with:\nkvm \[278\]: vcpu0, guest rIP: 0xffffffff Unhandled WRMSR$/s);
        return true;
      },
    );
    assert.ok(Date.now() - started < 20_000, 'found asleep long before the timeout');
    // Busy without a word for twice the asleep limit, then done: not asleep.
    writeFileSync(fake, `#!${process.execPath}\nconst end = Date.now() + 4000;\nwhile (Date.now() < end);\nconsole.log('@@hvmpt-done rc=0');\nsetTimeout(() => {}, 30000);\n`);
    const r = await bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake, timeoutMs: 50_000, asleepMs: 2_000 });
    assert.equal(r.rc, 0);
    // Under KVM QEMU's idle says nothing: the same silent QEMU runs to its timeout.
    writeFileSync(fake, '#!/bin/sh\nexec sleep 60\n');
    await assert.rejects(bootGuest({ kernel: '/dev/null', initrd: new Uint8Array(4), qemu: fake, accel: 'kvm', timeoutMs: 6_000, asleepMs: 2_000 }), (err: unknown) => err instanceof GuestBootError && err.failure === 'timeout');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
