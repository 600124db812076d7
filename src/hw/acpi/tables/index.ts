/**
 * The ACPI table codec: typed models for the tables hvmpt reads, rewrites and generates, with
 * decode (bytes → model) and encode (model → bytes, lengths and checksums computed).
 */
export * from './binary.js';
export * from './header.js';
export * from './table.js';
export * from './present.js';
export type { UnknownSubtable } from './subtables.js';
export * from './rsdp.js';
export * from './sdt.js';
export * from './fadt.js';
export * from './facs.js';
export * from './madt.js';
export * from './mcfg.js';
export * from './hpet.js';
export * from './dmar.js';
export * from './ivrs.js';
export * from './srat.js';
export * from './slit.js';
export * from './definition-block.js';
