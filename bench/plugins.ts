import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildEmulatedFunction } from '../src/hw/pci/emulated.js';
import { buildProbeInitrd, ensureDebianKernel, PROBE_CMDLINE } from '../src/host/guest/index.js';
import type { MmioHandler } from '../src/hw/io.js';
import { loadSys } from '../src/native/index.js';
import type { PciDeviceDefinition } from '../src/plugin/api.js';
import { PluginDevice } from '../src/plugin/device.js';
import { layoutSpec } from '../src/plugin/layout.js';
import { importPlugin } from '../src/plugin/modules.js';
import { attachVfioUser, describeVfioUserServer } from '../src/plugin/vfio-user/client.js';
import { ByteRing } from '../src/vmm/byte-ring.js';
import { Machine } from '../src/vmm/machine.js';
import { runVcpu } from '../src/vmm/vcpu-loop.js';
import { controlBuffer } from '../src/vmm/vcpu-control.js';
import { Asm } from '../tools/guest/asm.js';
import { microConfig } from '../tools/guest/micro.js';

/**
 * `npm run bench -- plugins [--iterations N] [--repeat R]`
 *
 * MMIO register read round trip from the guest, three ways, in one run: a flat 32-bit micro
 * guest loops `mov eax, [BAR0 + 0]` (edu's ID register) against
 *   - builtin: a device model compiled into the monitor (an MmioHandler answering the ID);
 *   - plugin: examples/plugins/edu.js in-process, through hvmpt's plug-in runtime;
 *   - vfio-user: the same plug-in served by `hvmpt serve-device` in another process, reached
 *     over its socket by hvmpt's vfio-user client.
 * Each runs at two loop counts and the per-read time is the difference over the difference
 * in reads, which cancels VM creation. Best of R rounds, taking turns.
 *
 * `npm run bench -- plugins --intx`: INTx round trips per second, in one lab host (a /dev/kvm
 * that pages): tools/guest/c/edu-tool's `intx 10000` in a Linux guest against the edu plug-in
 * on hvmpt's monitor, and against QEMU's own edu under `qemu-system-x86_64 -accel kvm`, the
 * same kernel, initrd and guest program.
 */
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '..', '..');
const BAR = 0xd000_0000;
const EDU = join(REPO, 'examples', 'plugins', 'edu.js');

function arg(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

function loop(iterations: number): Uint8Array {
  const a = new Asm(32);
  a.movImm('ecx', iterations, 4).label('top');
  a.loadAbs(BAR, 4);
  a.decEcx().jnz('top');
  a.movImm('edx', 0xf4, 2).movImm('eax', 0, 1).outDx(1).cli().hlt();
  return a.bytes();
}

/** Runs the loop against `handler` at BAR; returns the vCPU thread's nanoseconds. */
function runOnce(iterations: number, handler: MmioHandler): number {
  const m = new Machine(loadSys(), microConfig(loop(iterations), { flat32: true }), { serial: new ByteRing(1 << 12), debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)));
  try {
    m.mmio.register('bench', BAR, 0x10_0000, handler);
    const reason = runVcpu(m.vcpu, m.ports, m.mmio, m.control);
    if (reason.kind !== 'debug-exit') throw new Error(`the loop ended with ${JSON.stringify(reason)}`);
    if (m.ledger.faults.length > 0) throw new Error(`device fault: ${m.ledger.faults[0]!.message}`);
    return m.control.vcpuNs;
  } finally {
    m.close();
  }
}

/** INTx cycles per second: hvmpt with the edu plug-in and QEMU with its edu, in one lab host. */
function intxBench(): void {
  const dir = mkdtempSync(join(REPO, 'dist', 'bench-intx-'));
  try {
    const tool = join(dir, 'edu-tool');
    const cc = spawnSync('gcc', ['-static', '-O2', '-o', tool, join(REPO, 'tools', 'guest', 'c', 'edu-tool.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc: ${cc.stderr}`);
    const script = 'edu=""; for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x1234 ] && edu=$d; done\necho 1234 11e8 > /sys/bus/pci/drivers/uio_pci_generic/new_id\nsection intx /bin/edu-tool $edu intx 10000\n';
    const kernel = ensureDebianKernel();
    const initrd = join(dir, 'initrd');
    writeFileSync(initrd, buildProbeInitrd({ kernel, script, modules: ['uio_pci_generic'], report: false, files: [{ path: 'bin/edu-tool', hostPath: tool }] }));
    writeFileSync(join(dir, 'plan.yaml'), `memory: { size: 256M }\npci:\n  plugins:\n    - { name: edu, module: ${EDU}, at: "00:06.0" }\nmachine:\n  timeout: 1500\n  boot: { kind: probe, report: false, modules: [uio_pci_generic], script: ${JSON.stringify(script)}, files: [{ path: bin/edu-tool, file: ${tool} }] }\n`);
    const qemu = `qemu-system-x86_64 -accel kvm -cpu host -M pc -m 256 -nographic -nodefaults -serial stdio -no-reboot -kernel ${kernel.vmlinuz} -initrd ${initrd} -append '${PROBE_CMDLINE}' -device edu`;
    const lab = [`node ${join(REPO, 'dist', 'hvmpt.mjs')} run ${join(dir, 'plan.yaml')} 2>&1 | sed -n 's/^intx /hvmpt-intx /p'`, `${qemu} 2>&1 | sed -n 's/^intx /qemu-intx /p'`].join('\n');
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'hvmpt.mjs'), 'lab', '--memory', '3G', '--timeout', '3000', '--', lab], { encoding: 'utf8', cwd: dir, maxBuffer: 1 << 26 });
    const per = (who: string): number => Number(new RegExp(`^${who}-intx cycles=10000 lost=0 doubled=0 wrong=0 per_s=(\\d+)`, 'm').exec(r.stdout)?.[1] ?? NaN);
    const hv = per('hvmpt');
    const q = per('qemu');
    if (Number.isNaN(hv) || Number.isNaN(q)) throw new Error(`the lab printed no clean intx line for ${Number.isNaN(hv) ? 'hvmpt' : 'qemu'}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    process.stdout.write(`intx_per_s_plugin: ${hv}\nintx_per_s_qemu_edu: ${q}\nintx_plugin_vs_qemu: ${(hv / q).toFixed(3)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(args: readonly string[]): Promise<void> {
  if (args.includes('--intx')) return intxBench();
  const n2 = arg(args, '--iterations', 20_000);
  const n1 = Math.max(1, Math.floor(n2 / 10));
  const repeat = arg(args, '--repeat', 5);
  const sys = loadSys();

  const builtin: MmioHandler = { readMmio: (o) => (o === 0 ? 0x010000ed : 0xffff_ffff), writeMmio: () => {} };
  const def = (await importPlugin(pathToFileURL(EDU).href, undefined, 'device')) as PciDeviceDefinition;
  const layout = def.layout({ dmaMaskBits: 28 });
  const device = new PluginDevice(def, { dmaMaskBits: 28 }, buildEmulatedFunction(layoutSpec(layout, 'edu')).fn, layout, {
    setIntx: () => {},
    signalMessage: () => {},
    memory: { covers: () => false, read: () => undefined, write: () => false },
    barMemory: (_b, n) => new Uint8Array(n),
    note: () => {},
    fault: (m) => {
      throw new Error(m);
    },
  });
  const bar = device.barAccess(0);
  const plugin: MmioHandler = { readMmio: (o, s) => bar.read(o, s), writeMmio: (o, s, v) => bar.write(o, s, v) };

  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-plugins-'));
  const socket = join(dir, 'edu.sock');
  const server = spawn(process.execPath, [join(REPO, 'dist', 'hvmpt.mjs'), 'serve-device', EDU, '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d: Buffer) => (log += d.toString()));
  try {
    for (let i = 0; i < 600 && !/serving/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
    const described = describeVfioUserServer(socket, { keep: true, timeoutMs: 10_000 });
    if (described.handle?.kind !== 'vfio-user') throw new Error('no connection');
    const remote = attachVfioUser(sys, described.handle, { description: described.description, memory: { covers: () => false, read: () => undefined, write: () => false } }).region(0)!;
    const vfioUser: MmioHandler = { readMmio: (o, s) => remote.read(o, s), writeMmio: (o, s, v) => remote.write(o, s, v) };

    const ways: Array<[string, MmioHandler]> = [['builtin', builtin], ['plugin', plugin], ['vfio_user', vfioUser]];
    const best = new Map<string, number>();
    for (let r = 0; r < repeat; r++) {
      for (const [name, h] of ways) {
        const ns = (runOnce(n2, h) - runOnce(n1, h)) / (n2 - n1);
        best.set(name, Math.min(best.get(name) ?? Infinity, ns));
      }
    }
    const us = (name: string): number => best.get(name)! / 1000;
    for (const [name] of ways) process.stdout.write(`mmio_read_${name}_us: ${us(name).toFixed(2)}\n`);
    process.stdout.write(`mmio_read_plugin_vs_builtin: ${(us('plugin') / us('builtin')).toFixed(3)}\n`);
    process.stdout.write(`mmio_read_vfio_user_vs_builtin: ${(us('vfio_user') / us('builtin')).toFixed(3)}\n`);
    sys.close(described.handle.socket);
  } finally {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}


