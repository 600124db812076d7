import { HvmptError } from '../../../errors.js';

/**
 * AML that cannot be parsed: `table` names the input (a signature such as DSDT, or a file),
 * `offset` is the byte offset in that table (the body offset plus the caller's base offset,
 * 36 for a table body), so the message points at the byte a hex dump would show.
 */
export class AmlParseError extends HvmptError {
  readonly table: string;
  readonly offset: number;
  constructor(message: string, table: string, offset: number) {
    super(message, { input: table, at: `offset 0x${offset.toString(16)}` });
    this.table = table;
    this.offset = offset;
  }
}

/** Nesting deeper than the parser's bound: raised instead of exhausting the JS stack. */
export class AmlDepthError extends AmlParseError {}

/** A term tree (usually a hand-built one) that cannot be encoded as AML. */
export class AmlEncodeError extends HvmptError {
  constructor(message: string, at?: string) {
    super(message, { input: 'AML', ...(at === undefined ? {} : { at }) });
  }
}
