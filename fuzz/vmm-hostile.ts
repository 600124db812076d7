import { hostileGuest } from '../tools/guest/hostile.js';
import { checkHostileRun } from '../tools/guest/hostile-check.js';
import { runMachine } from '../src/vmm/runner.js';

/**
 * `npm run fuzz -- vmm-hostile [--seeds N] [--ops N] [--from SEED]`: runs the hostile micro
 * guest with many seeds on the real monitor (needs /dev/kvm) and stops at the first run that
 * crashes the monitor, leaks non-all-ones data from unmapped space or fails a device.
 */
function arg(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

export async function main(args: readonly string[]): Promise<void> {
  const seeds = arg(args, '--seeds', 200);
  const ops = arg(args, '--ops', 2000);
  const from = arg(args, '--from', 1);
  for (let seed = from; seed < from + seeds; seed++) {
    const guest = hostileGuest(seed, ops);
    const serial: Buffer[] = [];
    const result = await runMachine(guest.config, { onSerial: (b) => serial.push(Buffer.from(b)), timeoutMs: 120_000 });
    const problems = checkHostileRun(result, Buffer.concat(serial));
    if (problems.length > 0) {
      process.stdout.write(`seed ${seed}: FAILED\n  ${problems.join('\n  ')}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`seed ${seed}: ok (${result.report.exits} exits, ${result.report.fwCfgRefusals.length} fw_cfg refusals)\n`);
  }
  process.stdout.write(`vmm-hostile: ${seeds} seeds passed\n`);
}
