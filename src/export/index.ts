import { KUBEVIRT_EXPORTER } from './kubevirt.js';
import { LIBVIRT_EXPORTER } from './libvirt.js';
import type { Exporter } from './model.js';
import { NOVA_EXPORTER } from './nova.js';
import { QEMU_EXPORTER } from './qemu.js';
import { XEN_EXPORTER } from './xen.js';

export { exportModel, type ExportModel, type ExportResult, type ExportFile, type Exporter } from './model.js';
export { ExportNotes, ExportStrictError, formatNote, type ExportNote } from './notes.js';
export { hostPreparation, preparationLines, type HostPreparation } from './host-prep.js';

/** Every target `hvmpt export --to` knows, by name. */
export const EXPORTERS: ReadonlyMap<string, Exporter> = new Map([QEMU_EXPORTER, LIBVIRT_EXPORTER, XEN_EXPORTER, KUBEVIRT_EXPORTER, NOVA_EXPORTER].map((e) => [e.target, e]));
