#!/usr/bin/env node
import { prestartVcpuThread } from '../vmm/runner.js';

// `hvmpt run` boots a machine: start its vCPU thread now, so the thread loads its modules
// while this one loads the CLI and composes the plan (the thread waits, unreferenced).
if (process.argv[2] === 'run' && !process.argv.includes('--help') && !process.argv.includes('-h')) prestartVcpuThread();

const { main } = await import('./main.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`hvmpt: internal error: ${String(err)}\n`);
    process.exitCode = 70;
  },
);
