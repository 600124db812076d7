/**
 * Command-line front of the guest harness, run by scripts/linux-guest.sh:
 *   fetch                      unpack Debian's kernel into the cache (once)
 *   run [options] [-- qemu…]   boot a guest and stream its console; exits with the script's status
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { HvmptError } from '../../errors.js';
import { bootGuest } from './boot.js';
import { buildInitrd, type GuestFile } from './initramfs.js';
import { ensureDebianKernel } from './kernel.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function hostToGuest(spec: string): GuestFile {
  const i = spec.indexOf(':');
  if (i <= 0) throw new HvmptError(`'${spec}' is not HOST_PATH:GUEST_PATH`, { input: '--file' });
  return { hostPath: spec.slice(0, i), path: spec.slice(i + 1) };
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('linux-guest').description('boot Debian\'s kernel under QEMU (TCG) with a busybox initramfs');
  let code = 0;
  program
    .command('fetch')
    .description('download and unpack Debian\'s linux-image-amd64 into .cache/guest (once)')
    .action(() => {
      const k = ensureDebianKernel((m) => process.stderr.write(`linux-guest: ${m}\n`));
      process.stdout.write(`${k.vmlinuz}\n`);
    });
  program
    .command('run')
    .description('boot a guest, print its serial console, exit with its script\'s status')
    .option('--script <file>', 'shell commands for /init to run (- for stdin); `section NAME cmd` fences output')
    .option('--append <params>', 'extra kernel parameters', collect, [])
    .option('--file <host:guest>', 'copy a file into the initramfs; repeatable', collect, [])
    .option('--early <host:guest>', 'a file for the early uncompressed cpio (kernel/firmware/acpi/x.aml); repeatable', collect, [])
    .option('--module <name>', 'load a module of the Debian kernel (dependencies too); repeatable', collect, [])
    .option('--memory <size>', 'guest RAM', '512M')
    .option('--machine <type>', 'QEMU machine', 'pc')
    .option('--via <how>', 'direct (QEMU loads the kernel) or grub (a GRUB CD does)', 'direct')
    .option('--timeout <seconds>', 'give up after this long', '120')
    .argument('[qemu...]', 'more QEMU arguments, after --')
    .action(async (qemuArgs: string[], o: { script?: string; append: string[]; file: string[]; early: string[]; module: string[]; memory: string; machine: string; via: string; timeout: string }) => {
      const kernel = ensureDebianKernel((m) => process.stderr.write(`linux-guest: ${m}\n`));
      const script = o.script === undefined ? '' : readFileSync(o.script === '-' ? 0 : o.script, 'utf8');
      if (o.via !== 'direct' && o.via !== 'grub') throw new HvmptError(`'${o.via}' is not direct or grub`, { input: '--via' });
      const initrd = buildInitrd({ script, kernel, modules: o.module, files: o.file.map(hostToGuest), early: o.early.map(hostToGuest) });
      const run = await bootGuest({
        initrd,
        append: o.append.flatMap((a) => a.split(/\s+/).filter((x) => x !== '')),
        memory: o.memory,
        machine: o.machine,
        via: o.via,
        qemuArgs,
        timeoutMs: Number(o.timeout) * 1000,
        onOutput: (t) => process.stdout.write(t),
      });
      if (!run.output.endsWith('\n')) process.stdout.write('\n');
      process.stderr.write(`linux-guest: done in ${(run.durationMs / 1000).toFixed(1)} s, script status ${run.rc ?? '?'}\n`);
      code = run.rc ?? 1;
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof HvmptError) {
      process.stderr.write(`linux-guest: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
