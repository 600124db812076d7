import { HvmptError } from '../errors.js';

/**
 * What an exporter could not carry over to its target. Nothing is dropped silently: every part
 * of the plan a target cannot express becomes a note, printed on stderr with its reason (and,
 * with `--strict`, an error).
 *
 * - `cannot`: a part of the plan the target does not get, or gets changed (an identity memory
 *   layout on QEMU, a fake bridge on KubeVirt, an ID override on Xen);
 * - `differs`: the target adds or changes something the plan does not mention, with no part of
 *   the plan lost (QEMU's pc machine always has a PIIX3 IDE function at 00:01.1).
 */
export interface ExportNote {
  readonly kind: 'cannot' | 'differs';
  /** The plan path the note is about (`pci.passthrough[1].rom`, `memory.layout`), or a part's name. */
  readonly part: string;
  readonly reason: string;
}

export class ExportNotes {
  private readonly list: ExportNote[] = [];

  cannot(part: string, reason: string): void {
    this.list.push({ kind: 'cannot', part, reason });
  }

  differs(part: string, reason: string): void {
    this.list.push({ kind: 'differs', part, reason });
  }

  get all(): readonly ExportNote[] {
    return this.list;
  }
}

/** `--strict`: the target cannot express parts of the plan. Lists every one. */
export class ExportStrictError extends HvmptError {
  readonly notes: readonly ExportNote[];
  constructor(target: string, planFile: string, notes: readonly ExportNote[]) {
    super(`${target} cannot express ${notes.length} part(s) of the plan (--strict): ${notes.map((n) => `${n.part}: ${n.reason}`).join('; ')}`, { input: planFile });
    this.notes = notes;
  }
}

export function formatNote(target: string, n: ExportNote): string {
  return `${target}: ${n.kind === 'cannot' ? 'cannot express' : 'differs'}: ${n.part}: ${n.reason}`;
}
