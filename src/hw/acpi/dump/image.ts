/**
 * A table as read from some source, before decoding: its bytes and where they came from. Every
 * reader (acpidump text, a directory of binary tables, one .dat file) produces these.
 */
export interface TableImage {
  /** Where it came from, for messages: "x230.acpidump.txt: line 120", "/sys/firmware/acpi/tables/SSDT3". */
  readonly origin: string;
  /** A short name: acpixtract's file stem for dumps ("ssdt3"), the relative path for directories. */
  readonly name: string;
  /** The signature at the start of the bytes ("RSDP" for the RSD PTR structure). */
  readonly signature: string;
  /** The physical address a dump recorded (often 0 in dumps taken from sysfs). */
  readonly address?: bigint;
  /** Everything the source held for this table; see splitImage for the table proper. */
  readonly data: Uint8Array;
}

/** A file in a tables directory's data/ folder: firmware data (an error log, …), not a table. */
export interface DataBlob {
  readonly origin: string;
  readonly name: string;
  readonly data: Uint8Array;
}
