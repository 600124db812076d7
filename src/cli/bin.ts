#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { prestartVcpuThread, vcpuThreadsAbandoned } from '../vmm/runner.js';

// `hvmpt run` boots a machine: start its vCPU thread now, so the thread loads its modules
// while this one loads the CLI and composes the plan (the thread waits, unreferenced). Not
// where the run will go to a lab host instead (HVMPT_KVM=lab, or no /dev/kvm at all).
const runsHere = process.env['HVMPT_KVM'] !== 'lab' || process.argv.includes('--no-lab');
if (process.argv[2] === 'run' && !process.argv.includes('--help') && !process.argv.includes('-h') && runsHere && existsSync('/dev/kvm')) prestartVcpuThread();

// No top-level await: the bundle is CommonJS, for V8's code cache (src/cli/launcher.ts).
import('./main.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
      // A vCPU thread that did not stop (runner.ts, STOP_GRACE_MS) would keep the process alive.
      if (vcpuThreadsAbandoned()) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`hvmpt: internal error: ${String(err)}\n`);
      process.exitCode = 70;
      if (vcpuThreadsAbandoned()) process.exit(70);
    },
  );
