import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import type { Command } from 'commander';
import { HvmptError, UsageError } from '../errors.js';
import { loadPlan } from '../plan/schema.js';
import { composeMachine } from '../vmm/compose.js';
import { startMachine, type RunResult } from '../vmm/runner.js';
import type { StopReason } from '../vmm/vcpu-loop.js';

/** The guest did not end the way a finished guest does (power-off or halt). */
export class GuestRunError extends HvmptError {}

interface RunOptions {
  serial?: string;
  timeout?: string;
  firmwareLog?: string;
  report?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      "boot a plan on hvmpt's own KVM monitor: SeaBIOS, then the plan's boot target, with the guest's serial port on stdout " +
        '(or a file). Exits 0 when the guest powers off or halts, 1 when it resets, crashes or runs past --timeout.',
    )
    .argument('<plan>', 'the plan (YAML or JSON): memory, machine (firmware, boot target, serial)')
    .option('--serial <stdout|FILE>', "where the guest's COM1 goes (overrides machine.serial)")
    .option('--timeout <seconds>', 'stop the guest after this long (overrides machine.timeout)')
    .option('--firmware-log <FILE>', "write the firmware's port-0x402 log (SeaBIOS's debug output) here")
    .option('--report <FILE>', 'write the run report (why it ended, exits, refused accesses, device faults) as JSON')
    .action(async (planFile: string, opts: RunOptions) => {
      const plan = loadPlan(planFile);
      const timeoutS = opts.timeout === undefined ? plan.machine.timeout : Number(opts.timeout);
      if (timeoutS !== undefined && !(timeoutS > 0)) throw new UsageError(`--timeout '${opts.timeout}' is not a positive number of seconds`);
      const composed = composeMachine(plan, planFile);
      for (const line of composed.summary) process.stderr.write(`hvmpt: ${line}\n`);
      const serialTarget = opts.serial ?? plan.machine.serial;
      const serial: WriteStream | undefined = serialTarget === 'stdout' ? undefined : createWriteStream(serialTarget);
      const firmwareLogFile = opts.firmwareLog ?? plan.machine.firmwareLog;
      const firmwareLog = firmwareLogFile === undefined ? undefined : createWriteStream(firmwareLogFile);
      const deadline = timeoutS === undefined ? undefined : Date.now() + timeoutS * 1000;
      let result: RunResult;
      let boots = 0;
      for (;;) {
        boots++;
        const running = startMachine(composed.config, {
          onSerial: (b) => (serial === undefined ? process.stdout.write(b) : serial.write(b)),
          onDebug: (b) => firmwareLog?.write(b),
          onFault: (f) => process.stderr.write(`hvmpt: device ${f.device} failed (contained, the guest goes on): ${f.message}\n`),
          timeoutMs: deadline === undefined ? undefined : Math.max(1, deadline - Date.now()),
        });
        const interrupt = (): void => running.stop('interrupted');
        process.once('SIGINT', interrupt);
        try {
          result = await running.done;
        } finally {
          process.removeListener('SIGINT', interrupt);
        }
        if (result.reason.kind === 'reset' && plan.machine.onReset === 'restart') {
          process.stderr.write(`hvmpt: guest reset (${result.reason.source}); booting again\n`);
          continue;
        }
        break;
      }
      await Promise.all([serial, firmwareLog].map((s) => (s === undefined ? undefined : new Promise((r) => s.end(r)))));
      if (opts.report !== undefined) writeFileSync(opts.report, JSON.stringify({ reason: result.reason, boots, wallMs: result.wallMs, ...result.report }, null, 2) + '\n');
      const r = result.report;
      process.stderr.write(
        `hvmpt: ${describe(result.reason)} after ${(result.wallMs / 1000).toFixed(1)} s, ${r.exits} exits; ` +
          `${r.unclaimed.length} unclaimed port/address kinds, ${r.deviceFaults.length} device faults, ${r.fwCfgRefusals.length} fw_cfg refusals\n`,
      );
      if (result.reason.kind !== 'poweroff' && result.reason.kind !== 'halt') {
        throw new GuestRunError(describe(result.reason), { input: planFile });
      }
    });
}

function describe(reason: StopReason): string {
  switch (reason.kind) {
    case 'poweroff':
      return `guest powered off (${reason.source})`;
    case 'halt':
      return 'guest halted with interrupts off';
    case 'reset':
      return `guest reset (${reason.source})`;
    case 'debug-exit':
      return `guest wrote isa-debug-exit (status ${reason.code})`;
    case 'stopped':
      return `guest stopped: ${reason.why}`;
    case 'triple-fault':
      return 'guest triple-faulted (KVM shutdown exit)';
    case 'error':
      return `monitor error: ${reason.message}`;
  }
}
