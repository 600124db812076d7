import { HvmptError } from '../../errors.js';

/**
 * ACPI input that does not hold what it claims: a table shorter than its header, a subtable
 * whose length field is 0 or runs past the table, a dump line with a bad offset. `where.input`
 * names the table (and the file it came from), `where.at` the byte offset or line.
 */
export class AcpiParseError extends HvmptError {}

/**
 * A table model that cannot be written: a value out of its field's range, a subtable too long
 * for an 8-bit length field. `where.at` is the model path of the bad value (`entries[3].apicId`).
 */
export class AcpiEncodeError extends HvmptError {}
