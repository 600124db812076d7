import type { RunResult } from '../../src/vmm/runner.js';

/**
 * What a hostile-guest run must show: the guest reached its end (the monitor neither crashed
 * nor stopped it), no device model threw, and every read of unmapped space saw all ones
 * (the AND the guest printed last). Returns the problems found, none when it held.
 */
export function checkHostileRun(result: RunResult, serial: Uint8Array): string[] {
  const problems: string[] = [];
  if (result.reason.kind !== 'debug-exit' || result.reason.code !== ((0x77 << 1) | 1)) {
    problems.push(`run ended with ${JSON.stringify(result.reason)}, not the guest's own exit`);
  }
  for (const f of result.report.deviceFaults) problems.push(`device ${f.device} threw: ${f.message}`);
  const tail = serial.subarray(serial.length - 4);
  if (tail.length !== 4 || !tail.every((b) => b === 0xff)) {
    problems.push(`unmapped reads were not all ones: AND = ${[...tail].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  }
  return problems;
}
