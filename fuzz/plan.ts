import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HvmptError } from '../src/errors.js';
import { composePlanView } from '../src/cli/pci.js';
import { readE820Input } from '../src/host/mem/read.js';
import { acpiPlanFrom } from '../src/host/plan/acpi.js';
import { loadCapture } from '../src/host/pci/load.js';
import { normalizeE820, type E820Map } from '../src/hw/mem/e820.js';
import { selectMap } from '../src/hw/mem/e820-parse.js';
import { planIdentity } from '../src/hw/mem/identity.js';
import type { Capture } from '../src/hw/pci/capture.js';
import { resolvePlatformInputs } from '../src/host/plan/inputs.js';
import { acpiRules, generatePlanTables, PlanWithAcpiSchema } from '../src/plan/acpi.js';
import { parseStructuredText, validate } from '../src/plan/load.js';
import { identityRequestFromPlan, planMemorySchema } from '../src/plan/memory.js';
import { PlanWithPciSchema } from '../src/plan/pci.js';
import { planSchema } from '../src/plan/schema.js';
import { composeMachine } from '../src/platform/compose.js';
import { mulberry32 } from '../src/util/rng.js';
import { runMutations, type MutationStats } from './_mutations.js';

/**
 * `npm run fuzz -- plan [iterations] [seed]`: mutates the example plans, as YAML text and as
 * parsed trees, and runs each through what `hvmpt run` and `hvmpt acpi generate` do with a
 * plan: loading (YAML, aliases, tags), validation, reading the files it names, and full
 * composition (identity carve, PCI bus, ACPI tables, SMBIOS) with `resolvePlatformInputs` and
 * `composeMachine`, then the ACPI edge (`generatePlanTables`, `acpiRules`). Every input must end
 * in a machine or a typed HvmptError, within the time budget; anything else is an escape,
 * printed with the seed and iteration that replay it.
 */

/** Inputs outside the plan that the commands an example is written for take beside it. */
export interface PlanEdges {
  /** `hvmpt pci view <capture> --plan …`: the captured machine its pci section composes. */
  readonly capture?: Capture;
  /** `hvmpt e820 carve <map> --plan …`: the host map its memory section is carved from. */
  readonly hostMap?: E820Map;
}

export interface PlanSeed {
  /** The example's own path: relative files in a mutated plan resolve beside it. */
  readonly file: string;
  readonly text: string;
  readonly tree: unknown;
  readonly edges: PlanEdges;
}

export type PlanInput = ({ readonly kind: 'text'; readonly text: string } | { readonly kind: 'tree'; readonly tree: unknown }) & { readonly file: string; readonly edges: PlanEdges };

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Every example plan (examples/**.yaml), read and parsed. */
export function planCorpus(dir: string = join(REPO, 'examples')): PlanSeed[] {
  const walk = (d: string): string[] =>
    readdirSync(d)
      .sort()
      .flatMap((n) => {
        const p = join(d, n);
        return statSync(p).isDirectory() ? walk(p) : p.endsWith('.yaml') ? [p] : [];
      });
  return walk(dir).map((file) => {
    const text = readFileSync(file, 'utf8');
    // The commands an example names in its header comment (paths relative to the checkout).
    const pciView = /hvmpt pci view (\S+) --plan/.exec(text);
    const carve = /hvmpt e820 carve (\S+) --plan/.exec(text);
    const edges: PlanEdges = {
      ...(pciView === null ? {} : { capture: loadCapture(resolve(REPO, pciView[1]!)) }),
      ...(carve === null ? {} : { hostMap: normalizeE820(selectMap(readE820Input(resolve(REPO, carve[1]!)), carve[1]!).entries).map }),
    };
    return { file, text, tree: parseStructuredText(text, file), edges };
  });
}

/** Pieces a careless or hostile hand puts into YAML. */
const TOKENS = [
  '&a ', '*a', '*b', '&b [*a, *a, *a, *a]', '!foo ', '!!binary ', '<<: ', '---\n', '...\n', ': ', '- ', '{', '}', '[', ']', ', ', '"', "'", '\n', '\n  ', '\t', '#',
  '~', 'null', 'true', 'false', '.inf', '-.inf', '.nan', '? ', '|', '>', '%YAML 1.1\n', '__proto__', 'constructor', '0x', '0xffffffffffffffff', '18446744073709551616',
  '99999999999999999999', '1e400', '-1', '-0', '0', '4096', '16777215T', '4G', '1T', '17T', '1M', '2.5', '256', '255', '65536', 'ffffffff', '00:1f.3', 'ff:1f.7', 'guestbr/00.0',
  '\\_SB.PCI0', '\\NOPE', 'identity', 'ordinary', 'grub', 'linux', 'hide', '/', '/etc/passwd', '../', '/dev/null', '/dev/zero', 'examples', '\u0000', '\u00e9', '💥',
];

/** Values a tree mutation puts in place of another. */
const VALUES: readonly unknown[] = [
  null, true, false, 0, -1, 1.5, 2 ** 53, Number.MAX_VALUE, '', 'x', '0x', '1T', '16777215T', '00:03.0', 'nope/00.0', '\\_SB', '/', '../no-such-file', [], [1, 2], {}, { x: 1 },
  'a'.repeat(300), 255, 256, 0xffffffff, 2 ** 32, '0xfec00000', '0xb0000000', 'identity', 'dat',
];

type Rnd = () => number;

function mutateText(text: string, rnd: Rnd): string {
  const int = (n: number): number => Math.floor(rnd() * n);
  let s = text;
  for (let k = rnd() < 0.5 ? 1 : 1 + int(6); k > 0; k--) {
    const at = int(s.length + 1);
    switch (int(8)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + int(30));
        break;
      case 1:
      case 2:
        s = s.slice(0, at) + TOKENS[int(TOKENS.length)]! + s.slice(at);
        break;
      case 3:
        s = s.slice(0, at) + String.fromCharCode(int(128)) + s.slice(at + 1);
        break;
      case 4: {
        const from = int(s.length);
        s = s.slice(0, at) + s.slice(from, from + int(120)) + s.slice(at);
        break;
      }
      case 5: // a digit of a number changed
        s = s.slice(0, at) + s.slice(at).replace(/[0-9]/, () => String(int(10)));
        break;
      case 6: // a line's indentation changed
        s = s.slice(0, at) + s.slice(at).replace(/\n( *)/, (_m, sp: string) => `\n${' '.repeat(Math.max(0, sp.length + int(5) - 2))}`);
        break;
      default:
        s = s.slice(0, at);
    }
  }
  return s;
}

/** The container and key of every node of a tree (depth-first), so one can be picked at random. */
function slots(tree: unknown): Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> {
  const out: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ parent: v, key: i });
        walk(x);
      });
    } else if (typeof v === 'object' && v !== null) {
      for (const k of Object.keys(v)) {
        out.push({ parent: v as Record<string, unknown>, key: k });
        walk((v as Record<string, unknown>)[k]);
      }
    }
  };
  walk(tree);
  return out;
}

function mutateTree(seed: unknown, donors: readonly unknown[], rnd: Rnd): unknown {
  const int = (n: number): number => Math.floor(rnd() * n);
  const tree: unknown = structuredClone(seed);
  for (let k = rnd() < 0.5 ? 1 : 1 + int(4); k > 0; k--) {
    const all = slots(tree);
    if (all.length === 0) return VALUES[int(VALUES.length)];
    const { parent, key } = all[int(all.length)]!;
    const get = (): unknown => (parent as Record<string | number, unknown>)[key];
    const set = (v: unknown): void => {
      (parent as Record<string | number, unknown>)[key] = v;
    };
    switch (int(7)) {
      case 0: // remove it
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key as string];
        break;
      case 1:
      case 2:
        set(structuredClone(VALUES[int(VALUES.length)]));
        break;
      case 3: {
        // a subtree from another plan, or from elsewhere in this one
        const donor = rnd() < 0.5 ? tree : donors[int(donors.length)];
        const from = slots(donor);
        if (from.length > 0) {
          const f = from[int(from.length)]!;
          set(structuredClone((f.parent as Record<string | number, unknown>)[f.key]));
        }
        break;
      }
      case 4: // an element repeated, or a key added
        if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(get()));
        else parent[`extra${int(3)}`] = structuredClone(VALUES[int(VALUES.length)]);
        break;
      case 5: {
        // a number nudged to an edge
        const v = get();
        if (typeof v === 'number') set([v + 1, v - 1, v * 4096, -v, v / 3, 2 ** 64][int(6)]);
        else if (typeof v === 'string') set(v + ['0', 'T', ' ', '.0', ':'][int(5)]);
        break;
      }
      default: // wrapped one level deeper
        set(rnd() < 0.5 ? [get()] : { value: get() });
    }
  }
  return tree;
}

/** JSON writes Infinity and NaN as null and -0 as 0; a memo key must tell them apart. */
function exactNumbers(_key: string, v: unknown): unknown {
  return typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)) ? `\u0000${Object.is(v, -0) ? '-0' : String(v)}` : v;
}

/**
 * One plan through every command that reads one: `run` (validation, the files it names, full
 * composition), `acpi generate` and `acpi rewrite` (their reading of the plan), and `pci view` or
 * `e820 carve` where the example is written for them. Each step runs even when an earlier
 * one refused the plan; the first refusal is thrown at the end, anything else at once.
 *
 * `memo` remembers each step's outcome by what the step reads (the whole plan for `run`, the
 * acpi and pci sections for the ACPI commands, …): a mutation that leaves a step's part of the
 * plan as it was (a comment, another section) gets the outcome that part had, without the
 * step running again. Every step is a function of its part and the files it names.
 */
export function runPlan(input: PlanInput, tally: Map<string, number> = new Map(), memo?: Map<string, HvmptError | null>): void {
  const data = input.kind === 'text' ? parseStructuredText(input.text, input.file) : input.tree;
  const { file, edges } = input;
  const part = (key: string): unknown => (typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>)[key] : undefined);
  const steps: Array<[string, unknown, () => void]> = [
    [
      'run (composeMachine)',
      data,
      () => {
        const plan = validate(planSchema, data, file);
        composeMachine(plan, resolvePlatformInputs(plan, file));
      },
    ],
    [
      'acpi generate/rewrite',
      [part('acpi'), part('pci')],
      () => {
        const loaded = acpiPlanFrom(validate(PlanWithAcpiSchema, data, file), file);
        generatePlanTables(loaded);
        acpiRules(loaded);
      },
    ],
  ];
  if (edges.capture !== undefined) steps.push(['pci view --plan', part('pci'), () => composePlanView(edges.capture!, validate(PlanWithPciSchema, data, file).pci ?? {}, file)]);
  if (edges.hostMap !== undefined) {
    steps.push([
      'e820 carve --plan',
      part('memory'),
      () => {
        const memory = validate(planMemorySchema, data, file).memory;
        if (memory !== undefined) planIdentity(edges.hostMap!, identityRequestFromPlan(memory));
      },
    ]);
  }
  let refused: HvmptError | undefined;
  for (const [name, reads, step] of steps) {
    const key = memo === undefined ? undefined : `${name}\n${file}\n${JSON.stringify(reads, exactNumbers) ?? 'undefined'}`;
    let outcome = key === undefined ? undefined : memo!.get(key);
    if (outcome === undefined) {
      try {
        step();
        outcome = null;
      } catch (err) {
        if (!(err instanceof HvmptError)) throw err;
        outcome = err;
      }
      if (key !== undefined) {
        if (memo!.size >= 50_000) memo!.clear();
        memo!.set(key, outcome);
      }
    }
    if (outcome === null) tally.set(name, (tally.get(name) ?? 0) + 1);
    else refused ??= outcome;
  }
  if (refused !== undefined) throw refused;
}

export interface PlanFuzzStats extends MutationStats {
  /** How many inputs each command took all the way (the rest it refused with a typed error). */
  readonly passed: ReadonlyMap<string, number>;
}

/** The inputs of a campaign, in order: the same seed gives the same inputs. */
export function planInputs(seeds: readonly PlanSeed[], seed: number): () => PlanInput {
  const rnd = mulberry32(seed);
  const trees = seeds.map((s) => s.tree);
  return () => {
    const s = seeds[Math.floor(rnd() * seeds.length)]!;
    return rnd() < 0.6
      ? { kind: 'text', file: s.file, edges: s.edges, text: mutateText(s.text, rnd) }
      : { kind: 'tree', file: s.file, edges: s.edges, tree: mutateTree(s.tree, trees, rnd) };
  };
}

function describe(input: PlanInput): string {
  return `${input.file} (${input.kind}):\n${input.kind === 'text' ? input.text.slice(0, 4000) : JSON.stringify(input.tree, null, 1).slice(0, 4000)}`;
}

/**
 * Runs `body` with process warnings turned into thrown errors: a library that warns through
 * process.emitWarning (the YAML library does) prints a raw `(node:PID) Warning` line the user
 * cannot place, so a warning counts as an escape, raised where it was emitted.
 */
function warningsEscape<T>(body: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error) => {
    throw new Error(`a process warning escaped: ${warning instanceof Error ? warning.message : warning}`);
  }) as typeof process.emitWarning;
  try {
    return body();
  } finally {
    process.emitWarning = emit;
  }
}

export function fuzzPlans(seeds: readonly PlanSeed[], iterations: number, seed: number, budgetMs = 30_000): PlanFuzzStats {
  const passed = new Map<string, number>();
  const memo = new Map<string, HvmptError | null>();
  const stats = runMutations<PlanInput>({
    iterations,
    seed,
    budgetMs,
    make: planInputs(seeds, seed),
    run: (input) => warningsEscape(() => runPlan(input, passed, memo)),
    typed: (err) => err instanceof HvmptError,
    describe,
  });
  return { ...stats, passed };
}

/** `[iterations] [seed] [--case I]`: a campaign, or with --case the one input it had at iteration I, shown and run. */
export async function main(args: readonly string[]): Promise<void> {
  const at = args.indexOf('--case');
  const only = at < 0 ? undefined : Number(args[at + 1]);
  const [iterations, seed] = [Number(args[0] ?? 100_000), Number(args[1] ?? Date.now() % 1_000_000)];
  if (only !== undefined) {
    const make = planInputs(planCorpus(), seed);
    for (let i = 0; i < only; i++) make();
    const input = make();
    process.stdout.write(describe(input) + '\n');
    const started = performance.now();
    try {
      warningsEscape(() => runPlan(input));
      process.stdout.write('every command took it');
    } catch (err) {
      process.stdout.write(err instanceof HvmptError ? `refused: ${err.message}` : `ESCAPE: ${err instanceof Error ? err.stack : String(err)}`);
    }
    process.stdout.write(` (${(performance.now() - started).toFixed(0)} ms)\n`);
    return;
  }
  const started = performance.now();
  const stats = fuzzPlans(planCorpus(), iterations, seed);
  process.stdout.write(
    `seed: ${seed}\ninputs: ${stats.inputs}\nevery command took it: ${stats.accepted}\nsome command refused it (HvmptError): ${stats.rejected}\nescapes: 0\n` +
      [...stats.passed].map(([name, n]) => `passed ${name}: ${n}\n`).join('') +
      `slowest ms: ${stats.slowestMs.toFixed(1)}\ntotal s: ${((performance.now() - started) / 1000).toFixed(0)}\n`,
  );
}
