/**
 * The ACPI world view: a machine's tables as typed models and AML trees, and the rules that
 * expose, hide, change and add to them for a guest. See docs/acpi.md ("World view").
 */
export { applyRules, encodeWorld } from './apply.js';
export type { OutputTable, RewriteResult, RuleOutcome } from './apply.js';
export { hiddenClosure, hideObjects, pathForms } from './hide.js';
export type { DanglingReference, HideReport, HideResult } from './hide.js';
export { pruneDmar } from './iommu.js';
export { prtAddress, prtPackage } from './prt.js';
export { DROP, POISON, rewriteTable, bodyScope } from './rewrite.js';
export type { RewriteContext, Slot, Visitor } from './rewrite.js';
export { AcpiRuleError } from './rules.js';
export type {
  AddSsdtRule,
  HideDeviceRule,
  HideTableRule,
  MethodSource,
  PatchMethodRule,
  PrtRouteSpec,
  ReferencePolicy,
  ReplaceMethodRule,
  RewritePrtRule,
  RuleProblem,
  SsdtSource,
  WorldRule,
} from './rules.js';
export { devicesAtPciPath, formatPciPath, parsePciPath, pciPathOf, rootBridges, PCI_ROOT_IDS } from './select.js';
export type { PciPath, RootBridge } from './select.js';
export { AmlSpecError, idValue, specResource, specStatement, specStatements, specValue, EXTERNAL_TYPES, BINARY_OPS } from './spec.js';
export type { DeviceSpec, ExternalType, ResourceSpec, StatementSpec, ValueSpec } from './spec.js';
export { loadWorld, worldNamespace, ROOT_SIGNATURES } from './tables.js';
export type { World, WorldTable } from './tables.js';
