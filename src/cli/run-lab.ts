/**
 * `hvmpt run` where this machine's /dev/kvm cannot run the plan: the same command, run by the
 * same hvmpt inside a default lab host, its output streamed. Files the run writes (--report, --report-html,
 * --serial FILE, --firmware-log, or the plan's machine.serial / machine.firmwareLog) go to a
 * directory shared read-write with the lab and are moved to where they were asked for, so
 * the result is what it would be without the lab.
 */
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IoError, UsageError } from '../errors.js';
import { runLab } from '../host/lab/index.js';
import { hvmptEntry } from '../host/package-root.js';
import type { Plan } from '../plan/schema.js';
import { formatSize } from '../util/format.js';
import { labAccel } from './lab.js';
import type { OutputFile } from './out-file.js';

export interface RunFiles {
  readonly serial?: string;
  readonly timeout?: string;
  readonly firmwareLog?: string;
  readonly reportHtml?: string;
}

/** The lab host's RAM: what the guest needs and room for the lab's own kernel, node and hvmpt. */
const LAB_RESERVE = 1n << 30n;
const LAB_MINIMUM = 2n << 30n;

/** `fs` work on a file the run writes, its failure an IoError naming the file. */
function onFile(file: string, what: string, work: () => void): void {
  try {
    work();
  } catch (err) {
    throw new IoError(`cannot write the ${what}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: file });
  }
}

/** Runs `hvmpt run` in a lab host; returns its exit status. */
export async function runPlanInLab(planFile: string, plan: Plan, opts: RunFiles, report: OutputFile | undefined, why: string): Promise<number> {
  const serial = opts.serial ?? plan.machine.serial;
  if (/^(unix|tcp):/.test(serial)) {
    throw new UsageError(`a socket serial port cannot reach into a lab host; use a file or stdout, or run where /dev/kvm works (HVMPT_KVM=direct)`, { input: serial });
  }
  const accel = labAccel();
  process.stderr.write(`hvmpt: ${why}: running the plan in a lab host (${accel.kind === 'kvm' ? 'KVM' : 'TCG'}; --no-lab to not; docs/lab.md)\n`);
  const outbox = mkdtempSync(join(tmpdir(), 'hvmpt-run-lab-'));
  try {
    const cli = hvmptEntry(import.meta.url);
    // A control socket inside the lab host would be out of everyone's reach.
    const args = [process.execPath, cli, 'run', resolve(planFile), '--no-lab', '--control', 'none'];
    const moves: Array<{ from: string; to: string; what: string }> = [];
    const redirect = (option: string, file: string | undefined, name: string, what: string): void => {
      if (file === undefined) return;
      // Opened (created or truncated) now, as the run itself would, so a bad path fails before the lab boots.
      onFile(file, what, () => closeSync(openSync(file, 'w')));
      args.push(option, join(outbox, name));
      moves.push({ from: join(outbox, name), to: file, what });
    };
    if (serial === 'stdout') args.push('--serial', 'stdout');
    else redirect('--serial', serial, 'serial', 'serial output');
    redirect('--firmware-log', opts.firmwareLog ?? plan.machine.firmwareLog, 'firmware.log', 'firmware log');
    const reportFrom = join(outbox, 'report.json');
    if (report !== undefined) args.push('--report', reportFrom);
    redirect('--report-html', opts.reportHtml, 'report.html', 'HTML report');
    if (opts.timeout !== undefined) args.push('--timeout', opts.timeout);
    const planRam = plan.memory.size;
    const memory = formatSize(planRam + LAB_RESERVE > LAB_MINIMUM ? ((planRam + LAB_RESERVE + (1n << 20n) - 1n) >> 20n) << 20n : LAB_MINIMUM);
    // Two CPUs: the vCPU thread starts (a second node isolate) while the main thread composes.
    const run = await runLab({ command: args, accel, memory, cpus: 2, writable: [outbox], log: (line) => void (line.startsWith('warning:') && process.stderr.write(`hvmpt lab: ${line}\n`)) });
    for (const m of moves) if (existsSync(m.from)) onFile(m.to, m.what, () => copyFileSync(m.from, m.to));
    if (report !== undefined && existsSync(reportFrom)) report.commit(readFileSync(reportFrom));
    return run.status;
  } finally {
    rmSync(outbox, { recursive: true, force: true });
  }
}
