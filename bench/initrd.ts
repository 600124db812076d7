import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitrd } from '../src/host/guest/initramfs.js';
import { ensureDebianKernel, resolveModules } from '../src/host/guest/kernel.js';

/**
 * `npm run bench -- initrd [rounds]`: building the guest harness's initramfs (busybox, /init,
 * vfio-pci and 9p with their dependencies) in process with hvmpt's newc writer, against the
 * usual shell way: stage the files in a folder and run `find . | cpio -o -H newc` (GNU cpio).
 */
export async function main(args: readonly string[]): Promise<void> {
  const rounds = Number(args[0] ?? 20);
  const kernel = ensureDebianKernel((m) => process.stderr.write(`bench: ${m}\n`));
  const modules = ['vfio_pci', '9p', '9pnet_virtio'];
  const files = resolveModules(kernel, modules);
  const time = (f: () => void): number => {
    f();
    const t = performance.now();
    for (let i = 0; i < rounds; i++) f();
    return (performance.now() - t) / rounds;
  };
  let size = 0;
  const hvmpt = time(() => {
    size = buildInitrd({ kernel, modules, script: 'true' }).length;
  });
  const gnu = time(() => {
    const dir = mkdtempSync(join(tmpdir(), 'hvmpt-bench-'));
    try {
      for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/modules']) mkdirSync(join(dir, d), { recursive: true });
      copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
      writeFileSync(join(dir, 'init'), '#!/bin/busybox sh\ntrue\n', { mode: 0o755 });
      for (const m of files) copyFileSync(m.path, join(dir, 'lib', 'modules', `${m.name}.ko`));
      const r = spawnSync('sh', ['-c', `find . | cpio -o -H newc --quiet > '${dir}.cpio'`], { cwd: dir });
      if (r.status !== 0) throw new Error('cpio failed');
      readFileSync(`${dir}.cpio`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.cpio`, { force: true });
    }
  });
  process.stdout.write(`initrd size bytes: ${size}\n`);
  process.stdout.write(`hvmpt buildInitrd ms: ${hvmpt.toFixed(2)}\n`);
  process.stdout.write(`GNU cpio (stage + find | cpio) ms: ${gnu.toFixed(2)}\n`);
  process.stdout.write(`ratio (GNU cpio / hvmpt): ${(gnu / hvmpt).toFixed(2)}\n`);
}
