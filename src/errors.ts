/**
 * Every error hvmpt raises on purpose derives from HvmptError, so the CLI can tell a
 * diagnosed problem (print it, exit 1) from a bug (print the stack, exit 70).
 *
 * `where` names the input and the place inside it (a file and line, a byte offset, a
 * plan path such as `pci.devices[2].bars[0]`), because a message that does not say
 * where is half a message.
 */
export interface ErrorPlace {
  /** The input: a file name, a table signature, a device's BDF. */
  readonly input?: string;
  /** Where inside it: "line 12", "offset 0x1c", "pci.devices[2].size". */
  readonly at?: string;
}

export class HvmptError extends Error {
  readonly where: ErrorPlace;
  /** The message without the place, for a caller that reports the place its own way. */
  readonly detail: string;
  constructor(message: string, where: ErrorPlace = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, where), options);
    this.name = new.target.name;
    this.where = where;
    this.detail = message;
  }
}

function formatMessage(message: string, where: ErrorPlace): string {
  const parts = [where.input, where.at].filter((p): p is string => p !== undefined && p !== '');
  return parts.length > 0 ? `${parts.join(': ')}: ${message}` : message;
}

/**
 * A command line hvmpt cannot act on: an option's value that is not acceptable as given, or
 * options that do not go together. The CLI exits 2 for it, as for the usage errors the option
 * parser finds itself.
 */
export class UsageError extends HvmptError {}

/**
 * An input that is readable but not what the command needs: acpidump text where binary tables
 * were expected, a directory with no tables, an output directory that already holds tables.
 */
export class InputError extends HvmptError {}

/** A file or device that could not be read or written. */
export class IoError extends HvmptError {}
