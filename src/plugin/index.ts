/**
 * hvmpt's public API: the only module a plug-in imports (`import { definePciDevice,
 * definePolicy, z } from 'hvmpt'`). It holds definitions and types, nothing that runs a
 * machine, so loading it costs a plug-in nothing. See docs/plugins.md.
 */
export {
  definePciDevice,
  definePolicy,
  isDmaRefused,
  PLUGIN_API_VERSION,
  type AccessSize,
  type BarDeclaration,
  type BarHandlers,
  type DeviceBehaviour,
  type DeviceContext,
  type DeviceLayout,
  type DmaAccess,
  type DmaRefusal,
  type OptionsOf,
  type OptionsSchema,
  type PciDeviceDefinition,
  type PlainData,
  type PolicyChange,
  type PolicyContext,
  type PolicyDefinition,
  type PolicyPciFunction,
} from './api.js';
export type { CapabilitySpec, RegisterSpec } from '../hw/pci/emulated.js';
/** zod 4, for option schemas (any Standard Schema library will do). */
export { z } from 'zod';
