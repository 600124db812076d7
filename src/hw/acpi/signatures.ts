/**
 * Table signatures hvmpt knows by name. The RSDP's 8-byte signature ("RSD PTR ") is shortened
 * to "RSDP" everywhere in hvmpt, as acpixtract and Linux do.
 */
export const SIGNATURE_NAMES: Readonly<Record<string, string>> = {
  RSDP: 'Root System Description Pointer',
  RSDT: 'Root System Description Table',
  XSDT: 'Extended System Description Table',
  FACP: 'Fixed ACPI Description Table (FADT)',
  FACS: 'Firmware ACPI Control Structure',
  DSDT: 'Differentiated System Description Table',
  SSDT: 'Secondary System Description Table',
  PSDT: 'Persistent System Description Table',
  OSDT: 'Override System Description Table',
  APIC: 'Multiple APIC Description Table (MADT)',
  MCFG: 'PCI Express Memory-mapped Configuration',
  HPET: 'High Precision Event Timer',
  DMAR: 'DMA Remapping (Intel VT-d)',
  IVRS: 'I/O Virtualization Reporting Structure (AMD-Vi)',
  SRAT: 'System Resource Affinity Table',
  SLIT: 'System Locality Information Table',
  'ASF!': 'Alert Standard Format',
  BERT: 'Boot Error Record Table',
  BGRT: 'Boot Graphics Resource Table',
  CDIT: 'Component Distance Information Table',
  CRAT: 'Component Resource Attribute Table',
  DBG2: 'Debug Port Table 2',
  DBGP: 'Debug Port Table',
  ECDT: 'Embedded Controller Boot Resources Table',
  EINJ: 'Error Injection Table',
  ERST: 'Error Record Serialization Table',
  FPDT: 'Firmware Performance Data Table',
  GTDT: 'Generic Timer Description Table',
  HEST: 'Hardware Error Source Table',
  HMAT: 'Heterogeneous Memory Attribute Table',
  IORT: 'I/O Remapping Table',
  LPIT: 'Low Power Idle Table',
  MSDM: 'Microsoft Data Management (OEM product key)',
  NFIT: 'NVDIMM Firmware Interface Table',
  PPTT: 'Processor Properties Topology Table',
  SLIC: 'Software Licensing Description Table',
  SPCR: 'Serial Port Console Redirection',
  SPMI: 'Server Platform Management Interface',
  TCPA: 'Trusted Computing Platform Alliance',
  TPM2: 'Trusted Platform Module 2',
  UEFI: 'UEFI Boot Optimization',
  VFCT: 'Video BIOS Content (AMD)',
  WAET: 'Windows ACPI Emulated Devices',
  WDAT: 'Watchdog Action Table',
  WDDT: 'Watchdog Timer Description',
  WDRT: 'Watchdog Resource Table',
  WPBT: 'Windows Platform Binary Table',
  WSMT: 'Windows SMM Security Mitigations',
  XENV: 'Xen Environment',
};

/** Signatures whose body is AML (a definition block). */
export const DEFINITION_BLOCK_SIGNATURES: ReadonlySet<string> = new Set(['DSDT', 'SSDT', 'PSDT', 'OSDT']);

export function signatureName(signature: string): string | undefined {
  return SIGNATURE_NAMES[signature];
}

/**
 * A signature as text fit for messages and file names: printable ASCII kept, anything else
 * shown as `\xNN`.
 */
export function printableSignature(signature: string): string {
  let out = '';
  for (const ch of signature) {
    const c = ch.charCodeAt(0);
    out += c >= 0x20 && c < 0x7f ? ch : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}
