/** The ACPI namespace of a set of tables and the queries on it. See docs/aml.md. */
export { AcpiNamespace, NamespaceError } from './namespace.js';
export type { LoadedTable, NsKind, NsNode } from './namespace.js';
export { readPrt } from './prt.js';
export type { PrtEntry, PrtRouting, PrtSource, PrtTable } from './prt.js';
export { readResources } from './crs.js';
export type { ResourceSettings } from './crs.js';
export { interruptModelFlags } from './evaluate.js';
