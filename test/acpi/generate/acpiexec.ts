import { spawnSync } from 'node:child_process';

/**
 * Running ACPICA's `acpiexec` in batch mode and reading back what it returns: each
 * "Evaluation of \PATH returned object" is followed by the object printed one item per line,
 * nested by indentation; this turns that into JS values.
 */

/** An object acpiexec printed: an integer, a reference (the name of what it names), a buffer, a package. */
export type AcpiexecValue = bigint | { readonly ref: string } | { readonly buffer: readonly number[] } | readonly AcpiexecValue[];

export interface AcpiexecRun {
  readonly status: number | null;
  readonly output: string;
  /** What each evaluated path returned, in order (a path evaluated twice appears twice). */
  readonly results: ReadonlyArray<{ readonly path: string; readonly value: AcpiexecValue }>;
}

interface Line {
  readonly indent: number;
  readonly text: string;
}

function parseValue(lines: readonly Line[], at: { i: number }): AcpiexecValue {
  const line = lines[at.i++]!;
  const pkg = /^\[Package\] Contains (\d+) Elements:/.exec(line.text);
  if (pkg !== null) {
    const out: AcpiexecValue[] = [];
    for (let k = 0; k < Number(pkg[1]); k++) out.push(parseValue(lines, at));
    return out;
  }
  const int = /^\[Integer\] = ([0-9A-F]+)/.exec(line.text);
  if (int !== null) return BigInt(`0x${int[1]}`);
  const ref = /^\[Object Reference\] = .*Name (\S+)/.exec(line.text);
  if (ref !== null) return { ref: ref[1]! };
  const buf = /^\[Buffer\] Length [0-9A-F]+ =\s+0000: ((?:[0-9A-F]{2} ?)+)/.exec(line.text);
  if (buf !== null) return { buffer: buf[1]!.trim().split(' ').map((h) => parseInt(h, 16)) };
  throw new Error(`acpiexec printed an object this reader does not know: ${line.text}`);
}

/** `acpiexec -b "<commands>" <tables…>` and the objects its evaluations returned. */
export function acpiexec(commands: string, tables: readonly string[]): AcpiexecRun {
  const r = spawnSync('acpiexec', ['-b', commands, ...tables], { encoding: 'utf8', timeout: 60_000 });
  const output = r.stdout + r.stderr;
  const lines = output.split('\n').map((l) => ({ indent: l.length - l.trimStart().length, text: l.trim() }));
  const results: { path: string; value: AcpiexecValue }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^Evaluation of (\S+) returned object/.exec(lines[i]!.text);
    if (m === null) continue;
    const at = { i: i + 1 };
    results.push({ path: m[1]!, value: parseValue(lines, at) });
    i = at.i - 1;
  }
  return { status: r.status, output, results };
}
