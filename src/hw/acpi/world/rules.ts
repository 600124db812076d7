import { HvmptError } from '../../../errors.js';
import type { StatementSpec } from './spec.js';

/**
 * World-view rules as the engine takes them: plain values (a rules file is validated into
 * these by src/plan/acpi.ts, files named there already read), each with `path`, the place in
 * the rules file that errors name (`acpi.rules[3]`).
 */

/**
 * What happens to a reference to a hidden object that is neither a declaration, an External,
 * a Notify, a CondRefOf nor an element of a reference list (see docs/acpi.md):
 * `refuse` fails the rule naming every such reference; `neutralize`, inside method bodies,
 * makes a read of it read Zero (as the object's absence would: `If (\_SB.PCI0.EC.BSTA (1))`
 * becomes `If (Zero)`) and removes a statement that calls it, writes it or takes it as an
 * object (and still refuses at table level); `keep` leaves it (hide-table only: the OS sees an
 * unresolved name, as with a table it never loaded).
 */
export type ReferencePolicy = 'refuse' | 'neutralize' | 'keep';

export interface HideTableRule {
  readonly action: 'hide-table';
  readonly signature?: string;
  readonly oemId?: string;
  readonly oemTableId?: string;
  /** No error when nothing matches. */
  readonly optional?: boolean;
  readonly references?: ReferencePolicy;
  readonly path: string;
}

/**
 * Exactly one selector: an ACPI path; an _HID/_CID; an _ADR among the children of `under`
 * (default: of every PCI root bridge); or a PCI address `bb:dd.f`, with the bridges on the way
 * for devices behind them (`00:1c.4/00.0`, as DMAR device scopes write them), optionally with a
 * segment (`0001:00:02.0`).
 */
export interface HideDeviceRule {
  readonly action: 'hide-device';
  readonly devicePath?: string;
  readonly hid?: string;
  readonly adr?: number;
  readonly under?: string;
  readonly pci?: string;
  readonly optional?: boolean;
  readonly references?: Exclude<ReferencePolicy, 'keep'>;
  readonly path: string;
}

/** The code a replaced method gets: built from a spec, or a method taken from a compiled AML table. */
export type MethodSource =
  | { readonly kind: 'spec'; readonly body: readonly StatementSpec[] }
  | { readonly kind: 'aml'; readonly file: string; readonly bytes: Uint8Array; readonly method?: string };

export interface ReplaceMethodRule {
  readonly action: 'replace-method';
  readonly method: string;
  readonly source: MethodSource;
  readonly path: string;
}

/** Adds statements before and/or after a method's existing body. */
export interface PatchMethodRule {
  readonly action: 'patch-method';
  readonly method: string;
  readonly prepend?: readonly StatementSpec[];
  readonly append?: readonly StatementSpec[];
  readonly path: string;
}

export type SsdtSource =
  | { readonly kind: 'aml'; readonly file: string; readonly bytes: Uint8Array }
  | {
      readonly kind: 'spec';
      readonly oemId?: string;
      readonly oemTableId?: string;
      readonly oemRevision?: number;
      readonly body: readonly StatementSpec[];
    };

export interface AddSsdtRule {
  readonly action: 'add-ssdt';
  readonly source: SsdtSource;
  readonly path: string;
}

/** One _PRT entry: a slot's INTx pin (0 = INTA) routed to a GSI, a link device, or both (APIC / PIC). */
export interface PrtRouteSpec {
  readonly device: number;
  /** 0-3 for INTA-INTD. */
  readonly pin: number;
  readonly gsi?: number;
  /** A link device path (`\_SB.LNKA`); its resource index is 0. */
  readonly link?: string;
}

export interface RewritePrtRule {
  readonly action: 'rewrite-prt';
  /** The host bridge (default: the one PCI root bridge, or the one on bus 0). */
  readonly bridge?: string;
  readonly routes: readonly PrtRouteSpec[];
  /**
   * The name \_PIC stores the interrupt model in, when routes give both a GSI and a link
   * (default: what the old _PRT tested, or what \_PIC stores its argument in).
   */
  readonly flag?: string;
  readonly path: string;
}

export type WorldRule = HideTableRule | HideDeviceRule | ReplaceMethodRule | PatchMethodRule | AddSsdtRule | RewritePrtRule;

export interface RuleProblem {
  /** The rule's path in the rules file, with a sub-path where one applies (`acpi.rules[2].routes[1]`). */
  readonly path: string;
  readonly message: string;
}

/**
 * A rule that cannot be applied: what it matched (or did not), a reference it would leave
 * dangling, a method it names that is not one. Nothing of the rewrite is returned or written.
 */
export class AcpiRuleError extends HvmptError {
  readonly problems: readonly RuleProblem[];
  constructor(input: string, problems: readonly RuleProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('; '), { input });
    this.problems = problems;
  }
}
