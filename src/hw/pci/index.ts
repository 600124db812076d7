/**
 * The PCI core's public interface: what the monitor, the ACPI generator, exporters and
 * device plug-ins build on. See docs/pci.md for how the pieces fit.
 */
export { bdf, compareBdf, devfnOf, formatBdf, parseBdf, sameBdf, type Bdf } from './address.js';
export { allocateResources, DEFAULT_WINDOWS, type AllocationResult, type GuestWindows, type PlacedBar, type PlacedBridgeWindows } from './allocator.js';
export { MemoryBackend, type ConfigBackend } from './backend.js';
export { BarSet, checkBarSize, type BarKind, type BarLayout, type BarMapping, type BarMappingEvent, type BarSizeSource } from './bars.js';
export { bridgeWindows, setBridgeWindows, type BridgeWindows, type Window } from './bridge.js';
export {
  capabilityName,
  hideCapabilities,
  knownCapability,
  walkCapabilities,
  type CapabilityInfo,
  type CapabilityWalk,
  type ChainProblem,
} from './capabilities.js';
export type { Capture, CapturedFunction } from './capture.js';
export { CF8_PORT, CF8_PORT_COUNT, CFC_PORT, ConfigMechanism1, type ConfigMechanism1Options } from './cf8.js';
export {
  composePci,
  PciPlanError,
  renumberBuses,
  type ComposedEntry,
  type ComposedPci,
  type ComposeInput,
  type FunctionPolicy,
  type HideRule,
  type Location,
  type PlacedBridge,
  type PlacedEmulated,
  type PlacedReal,
} from './compose.js';
export { EcamWindow, type EcamOptions } from './ecam.js';
export {
  buildEmulatedFunction,
  FAKE_BRIDGE_IDS,
  fakeBridgeSpec,
  msiCapability,
  msixCapability,
  pcieCapability,
  pmCapability,
  type BarSpec,
  type CapabilitySpec,
  type EmulatedFunction,
  type EmulatedFunctionSpec,
  type PcieDeviceType,
  type RegisterSpec,
} from './emulated.js';
export { PciAllocationError, PciComposeError, PciDumpError, PciError } from './errors.js';
export { PciFunction, type ConfigWriteEvent, type ConfigWriteListener, type FunctionKind, type RegisterDescriptor } from './function.js';
export { intxRoute, intxRoutes, swizzle, type IntxPin, type IntxRoute } from './intx.js';
export { buildRealFunction, type BarOverride, type CapabilityPolicy, type RealFunction, type RealFunctionOptions, type UnclaimedPolicy } from './real.js';
export { BusNode, forwardsConfig, isBridge, PciTopology, type ActiveMapping, type MappingListener } from './topology.js';
export { viewJson, writeLspciDump, writeTree } from './view.js';
