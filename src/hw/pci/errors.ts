import { HvmptError } from '../../errors.js';

/** A PCI model was asked to do something its inputs do not allow (bad spec, bad placement). */
export class PciError extends HvmptError {}

/** A captured config space (lspci dump, sysfs `config`) that cannot be read. */
export class PciDumpError extends HvmptError {}

/** The plan asks for a composition that cannot be built; `where.at` is the plan path. */
export class PciComposeError extends HvmptError {}

/** A BAR or bridge window does not fit the guest's windows; the message names device, BAR, size, window. */
export class PciAllocationError extends HvmptError {}
