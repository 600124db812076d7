import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { HvmptError, IoError } from '../errors.js';

/** A path a plan names: relative paths are relative to the plan file's directory. */
export function planRelative(planFile: string, path: string): string {
  return resolve(dirname(planFile), path);
}

/** A plan, rules file or other structured input that failed parsing or validation. */
export class PlanError extends HvmptError {
  /** Every problem found, each with its path; the message carries them all. */
  readonly problems: readonly PlanProblem[];
  constructor(input: string, problems: readonly PlanProblem[]) {
    super(problems.map((p) => `${p.path === '' ? '(top level)' : p.path}: ${p.message}`).join('; '), {
      input,
    });
    this.problems = problems;
  }
}

export interface PlanProblem {
  /** Dotted path with [index] for arrays, e.g. `pci.devices[2].bars[0].size`. */
  readonly path: string;
  readonly message: string;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Parses YAML (a superset of JSON) text and reports syntax errors with line and column. */
export function parseStructuredText(text: string, input: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new PlanError(input, [
        { path: pos ? `line ${pos.line} column ${pos.col}` : '', message: err.message.split('\n')[0] ?? err.message },
      ]);
    }
    throw err;
  }
}

/** Validates already-parsed data against a schema; every problem is reported with its path. */
export function validate<S extends z.ZodType>(schema: S, data: unknown, input: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new PlanError(
    input,
    result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  );
}

/** Reads a YAML or JSON file and validates it. */
export function loadStructuredFile<S extends z.ZodType>(schema: S, file: string): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new IoError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: file }, { cause: err });
  }
  return validate(schema, parseStructuredText(text, file), file);
}
