/** Readers of table containers that need no I/O: acpidump text, acpixtract names, table images. */
export * from './image.js';
export * from './acpidump.js';
export * from './names.js';
