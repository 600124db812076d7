import { performance } from 'node:perf_hooks';
import { loadCapture } from '../src/host/pci/load.js';
import { ConfigMechanism1 } from '../src/hw/pci/cf8.js';
import { composePci } from '../src/hw/pci/compose.js';
import { EcamWindow } from '../src/hw/pci/ecam.js';
import { fixture } from '../test/helpers/paths.js';

/**
 * Dword config reads through the composed bus, in process, on one core: the whole machine
 * of tree-asus-p6t6 (53 functions, 4 KiB each, replayed), every reachable function's first
 * 256 bytes read in a shuffled order. Each CF8/CFC read is what a guest does: a 32-bit write
 * of the address to 0xCF8, then a 32-bit read of 0xCFC. The peer reads the same dwords
 * from a flat Uint32Array snapshot indexed by the same address: the cost of storage alone.
 */

const SECONDS = 1.0;

function measure(label: string, body: () => number): number {
  // Warm up so the JIT has compiled the loop before the clock starts.
  for (let i = 0; i < 3; i++) body();
  let ops = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < SECONDS * 1000) {
    sink ^= body();
    ops++;
    now = performance.now();
  }
  if (sink === 0x1234_5678) process.stdout.write(`${label}: (sink)\n`);
  return ops / ((now - start) / 1000);
}

export async function main(args: readonly string[]): Promise<void> {
  const file = args[0] ?? fixture('pci', 'pciutils-tests', 'tree-asus-p6t6');
  const composed = composePci({ base: loadCapture(file) });
  const topology = composed.topology;
  const targets = topology.reachable();

  // Addresses: every dword of the standard config space of every reachable function.
  const addrs: number[] = [];
  for (const { bdf } of targets) for (let reg = 0; reg < 0x100; reg += 4) addrs.push((0x8000_0000 | (bdf.bus << 16) | (bdf.device << 11) | (bdf.fn << 8) | reg) >>> 0);
  // A fixed shuffle, so neither path benefits from a sequential pattern the other does not.
  let seed = 12345;
  for (let i = addrs.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [addrs[i], addrs[j]] = [addrs[j]!, addrs[i]!];
  }
  const address = Uint32Array.from(addrs);
  const n = address.length;

  const cf8 = new ConfigMechanism1(topology);
  const cf8Reads = (): number => {
    let x = 0;
    for (let i = 0; i < n; i++) {
      cf8.writePort(0xcf8, 4, address[i]!);
      x ^= cf8.readPort(0xcfc, 4);
    }
    return x;
  };

  const ecam = new EcamWindow(topology, { base: 0xb000_0000n });
  const ecamOffset = Uint32Array.from(addrs.map((a) => ((a >>> 16) & 0xff) << 20 | ((a >>> 8) & 0xff) << 12 | (a & 0xfc)));
  const ecamReads = (): number => {
    let x = 0;
    for (let i = 0; i < n; i++) x ^= ecam.readMmio(ecamOffset[i]!, 4);
    return x;
  };

  // The peer: the same dwords from a flat snapshot, indexed by bus/devfn/register.
  const flat = new Uint32Array(65536 * 64);
  for (const { fn, bdf } of targets) {
    const base = ((bdf.bus << 8) | (bdf.device << 3) | bdf.fn) * 64;
    for (let reg = 0; reg < 0x100; reg += 4) flat[base + reg / 4] = fn.read32(reg);
  }
  const rawReads = (): number => {
    let x = 0;
    for (let i = 0; i < n; i++) {
      const a = address[i]!;
      x ^= flat[((a >>> 8) & 0xffff) * 64 + ((a & 0xfc) >>> 2)]!;
    }
    return x;
  };

  // The two paths must agree before their speeds mean anything.
  for (let i = 0; i < n; i++) {
    cf8.writePort(0xcf8, 4, address[i]!);
    const a = cf8.readPort(0xcfc, 4);
    const b = ecam.readMmio(ecamOffset[i]!, 4);
    const c = flat[((address[i]! >>> 8) & 0xffff) * 64 + ((address[i]! & 0xfc) >>> 2)]!;
    if (a !== b || a !== c) throw new Error(`paths disagree at address 0x${address[i]!.toString(16)}: cf8 0x${a.toString(16)} ecam 0x${b.toString(16)} raw 0x${c.toString(16)}`);
  }

  const cf8PerS = measure('cf8', cf8Reads) * n;
  const ecamPerS = measure('ecam', ecamReads) * n;
  const rawPerS = measure('raw', rawReads) * n;
  const out = [
    `pci_functions: ${targets.length}`,
    `pci_cf8cfc_dword_reads_per_s: ${Math.round(cf8PerS)}`,
    `pci_ecam_dword_reads_per_s: ${Math.round(ecamPerS)}`,
    `peer_uint32array_dword_reads_per_s: ${Math.round(rawPerS)}`,
    `ratio_cf8cfc_to_uint32array: ${(cf8PerS / rawPerS).toFixed(3)}`,
    `ratio_ecam_to_uint32array: ${(ecamPerS / rawPerS).toFixed(3)}`,
    `target_cf8cfc_dword_reads_per_s: 20000000`,
    `meets_target: ${cf8PerS >= 20_000_000 ? 'yes' : 'no'}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}
