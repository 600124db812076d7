/**
 * hvmpt's vfio-user client against `hvmpt serve-device`, without a guest: the main thread's
 * description (config space as the server reports it, regions, interrupts), the attached
 * device's config and BAR access, the server's DMA into "guest memory" answered by the client
 * inside what it mapped (and refused outside), INTx through an eventfd, and a server killed
 * under it: reported once, all ones after, never an exception into the caller.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DmaMemory } from '../../src/hw/chipset/fw-cfg.js';
import { loadSys } from '../../src/native/index.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, POLLIN } from '../../src/native/sys.js';
import { attachVfioUser, describeVfioUserServer } from '../../src/plugin/vfio-user/client.js';
import { REPO_ROOT } from '../helpers/paths.js';

async function serve(socket: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'hvmpt.mjs'), 'serve-device', join(REPO_ROOT, 'examples', 'plugins', 'edu.js'), '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 600 && !/serving/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(log, /serving edu/);
  return p;
}

test('the vfio-user client: describe, config and BARs, the server\'s DMA answered inside the mapped RAM only, INTx, and a server that dies', async () => {
  const sys = loadSys();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-vfio-user-client-'));
  const socket = join(dir, 'edu.sock');
  const server = await serve(socket);
  const trigger = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const resample = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  try {
    const d = describeVfioUserServer(socket, { keep: true, timeoutMs: 10_000 });
    assert.equal(d.description.backend, 'vfio-user');
    assert.deepEqual(d.description.interrupts, { intx: 1, msi: 1, msix: 0 });
    assert.equal(d.capture.bytes.length, 256);
    assert.equal(d.capture.bytes[0], 0x34, 'config space as the server has it');
    assert.equal(d.capture.barSizes.get(0), 1n << 20n);
    assert.ok(d.handle?.kind === 'vfio-user');

    const ram = new Uint8Array(0x10000);
    const base = 0x100000n;
    const inside = (a: bigint, n: number): boolean => a >= base && a + BigInt(n) <= base + BigInt(ram.length);
    const memory: DmaMemory = {
      covers: inside,
      read: (a, n) => (inside(a, n) ? ram.slice(Number(a - base), Number(a - base) + n) : undefined),
      write: (a, b) => (inside(a, b.length) ? (ram.set(b, Number(a - base)), true) : false),
    };
    const deaths: string[] = [];
    const dev = attachVfioUser(sys, d.handle, { description: d.description, memory, onDead: (why) => void deaths.push(why) });
    assert.equal(dev.config.read(0, 4), 0x11e81234);
    const bar = dev.region(0)!;
    assert.equal(bar.read(0, 4), 0x010000ed);
    dev.config.write(4, 2, 0x0006);
    dev.dma.map(base, BigInt(ram.length), 0n);
    for (let i = 0; i < 64; i++) ram[0x100 + i] = i ^ 0x5a;
    const dma = (src: bigint, dst: bigint, len: number, cmd: number): void => {
      bar.write(0x80, 4, Number(src & 0xffff_ffffn));
      bar.write(0x88, 4, Number(dst & 0xffff_ffffn));
      bar.write(0x90, 4, len);
      bar.write(0x98, 4, cmd | 1);
    };
    dma(base + 0x100n, 0x40000n, 64, 0);
    dma(0x40000n, base + 0x800n, 64, 2);
    assert.deepEqual([...ram.subarray(0x800, 0x840)], [...ram.subarray(0x100, 0x140)], 'the round trip through the server');

    dev.interrupts.connectIntx(trigger, resample);
    bar.write(0x04, 4, 7);
    dev.reset();
    assert.equal(bar.read(0x04, 4), 0xffff_ffff, 'DEVICE_RESET: liveness back to ~0');
    dev.config.write(4, 2, 0x0006);
    bar.write(0x60, 4, 1);
    assert.equal(sys.poll([{ fd: trigger, events: POLLIN }], 5000)[0]! & POLLIN, POLLIN, 'INTx fired');

    dma(0x40000n, 0x300000n, 64, 2); // outside what the client mapped: the server's device fails, the client is fine
    assert.equal(bar.read(0, 4), 0xffff_ffff, 'the server failed its device on the refused DMA');
    assert.deepEqual(deaths, [], 'the connection itself is alive');

    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    assert.equal(bar.read(0, 4), 0xffff_ffff);
    assert.equal(dev.config.read(0, 4), 0xffff_ffff);
    bar.write(0x60, 4, 1);
    assert.equal(deaths.length, 1, deaths.join('\n'));
    assert.match(deaths[0]!, /server is gone/);
    dev.close();
    sys.close(d.handle.socket);
  } finally {
    server.kill('SIGKILL');
    sys.close(trigger);
    sys.close(resample);
    rmSync(dir, { recursive: true, force: true });
  }
});
