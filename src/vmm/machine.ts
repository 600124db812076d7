import { AcpiPm, ACPI_PM_BASE, ACPI_PM_LENGTH } from '../hw/chipset/acpi-pm.js';
import { Cmos, CMOS_INDEX_PORT } from '../hw/chipset/cmos.js';
import { DebugCon, DEBUGCON_PORT, DebugExit, DEBUG_EXIT_PORT, POST_PORT } from '../hw/chipset/debug-ports.js';
import { FW_CFG, FW_CFG_PORT_COUNT, FW_CFG_PORT_SELECTOR, FwCfg, le16, le32, le64 } from '../hw/chipset/fw-cfg.js';
import { AUX_IRQ, I8042, I8042_DATA_PORT, I8042_STATUS_PORT, KBD_IRQ, SYSTEM_CONTROL_PORT_A, SystemControlPortA } from '../hw/chipset/i8042.js';
import { linuxBootItems } from '../hw/chipset/linux-boot.js';
import type { SystemControl } from '../hw/chipset/system.js';
import { COM1_IRQ, COM1_PORT, Uart8250 } from '../hw/chipset/uart8250.js';
import type { AccessSize } from '../hw/io.js';
import { gsiLine, type GsiSink } from '../hw/irq/line.js';
import { PirqRouter } from '../hw/irq/pirq.js';
import { intxRoute } from '../hw/pci/intx.js';
import type { Sys } from '../native/sys.js';
import { readGuestAcpi, type SeenAcpi } from './acpi-readback.js';
import type { ByteRing } from './byte-ring.js';
import { ProtectionMap } from '../hw/mem/protection.js';
import { composePlatformPci, DEFAULT_ECAM_BASE, type PciMachineConfig } from './pci-platform.js';
import { PciRuntime, type MappingLogEntry } from './pci-runtime.js';
import { IoLedger, MmioBus, PortBus } from './io-bus.js';
import { Kvm, REQUIRED_CAPS } from './kvm/system.js';
import type { Vcpu } from './kvm/vcpu.js';
import { defaultPcRouting, type Vm } from './kvm/vm.js';
import { GuestMemory, ramAbove4G, ramTopBelow4G, ramTotal } from './guest-memory.js';
import { defaultE820, encodeE820, VCPU_COUNT, type MachineConfig } from './machine-config.js';
import { RunControl } from './vcpu-loop.js';

/** What the machine reports at the end of a run, besides why it stopped. */
export interface RunReport {
  readonly exits: number;
  /** Time spent in the vCPU loop (KVM_RUN and dispatch), in nanoseconds. */
  readonly vcpuNs: number;
  /** Accesses no device claimed (reads saw all ones, writes were dropped), most frequent first. */
  readonly unclaimed: string[];
  /** Devices that threw and were failed; the guest went on without them. */
  readonly deviceFaults: Array<{ device: string; message: string }>;
  /** Guest requests the fw_cfg device refused (bad DMA addresses, writes to read-only items). */
  readonly fwCfgRefusals: string[];
  /** Guest writes to the BIOS ROM, dropped. */
  readonly romWritesRefused: number;
  /** The last value written to the POST diagnostic port 0x80. */
  readonly lastPostCode: number | undefined;
  readonly serialBytesDropped: number;
  /** Every update-mapping event, in order, with what the monitor did. */
  readonly barMappings: MappingLogEntry[];
  /** The ACPI tables the guest's memory held when the run ended, found from its RSDP. */
  readonly acpi: SeenAcpi;
}

export interface MachineOutputs {
  readonly serial: ByteRing;
  readonly debug: ByteRing;
  /** Bytes typed at the guest's console (COM1's receiver), filled by the main thread. */
  readonly serialIn?: ByteRing;
}

/**
 * A PC-compatible machine on KVM, built inside the vCPU thread so device dispatch costs no
 * thread hop: in-kernel PIC/IOAPIC/LAPIC and PIT, an i440FX/PIIX3 chipset (PAM, PIRQ routing,
 * reset control), COM1, CMOS/RTC, i8042 and port 0x92, fw_cfg with DMA, the 0x402 firmware
 * log, an ACPI PM block, and the BIOS image.
 */
export class Machine implements SystemControl, GsiSink {
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly ledger = new IoLedger();
  readonly ports = new PortBus(this.ledger);
  readonly mmio = new MmioBus(this.ledger);
  readonly control: RunControl;
  readonly memory: GuestMemory;
  readonly fwCfg: FwCfg;
  readonly uart: Uart8250;
  readonly pirq: PirqRouter;
  readonly pci: PciRuntime;
  private romWritesRefused = 0;
  private lastPostCode: number | undefined;

  constructor(
    sys: Sys,
    readonly config: MachineConfig,
    private readonly outputs: MachineOutputs,
    stopFlag: Int32Array,
  ) {
    this.control = new RunControl(stopFlag);
    this.kvm = new Kvm(sys);
    this.kvm.requireExtensions(REQUIRED_CAPS);
    this.vm = this.kvm.createVm();
    this.vm.createIrqchip();
    this.vm.createPit2();
    this.memory = new GuestMemory(this.vm, config.ram, config.firmware.image, config.firmware.name);
    this.vcpu = this.vm.createVcpu(0);
    this.vcpu.setCpuid(this.kvm.supportedCpuid());
    this.pirq = new PirqRouter(this);

    const ports = this.ports;
    this.uart = new Uart8250(COM1_PORT, (b) => outputs.serial.push(b), gsiLine(this, COM1_IRQ));
    const input = outputs.serialIn;
    if (input === undefined) ports.register('com1', COM1_PORT, 8, this.uart);
    else {
      // Input is picked up whenever the guest looks at the UART, and on every kick of the vCPU
      // (so an interrupt-driven driver idling in HLT hears it within a probe period).
      const uart = this.uart;
      const pull = (): void => {
        const bytes = input.drain();
        if (bytes.length > 0) uart.receive(bytes);
      };
      this.control.onKick = pull;
      ports.register('com1', COM1_PORT, 8, {
        readPort: (p, size) => (pull(), uart.readPort(p, size)),
        writePort: (p, size, v) => uart.writePort(p, size, v),
      });
    }
    const now = (): number => Date.now();
    ports.register('cmos', CMOS_INDEX_PORT, 2, new Cmos({ ramBelow4G: ramTopBelow4G(config.ram), ramAbove4G: ramAbove4G(config.ram), cpus: VCPU_COUNT, now }));
    const i8042 = new I8042(this, gsiLine(this, KBD_IRQ), gsiLine(this, AUX_IRQ));
    ports.register('i8042', I8042_DATA_PORT, 1, i8042);
    ports.register('i8042', I8042_STATUS_PORT, 1, i8042);
    ports.register('port92', SYSTEM_CONTROL_PORT_A, 1, new SystemControlPortA(this));
    ports.register('debugcon', DEBUGCON_PORT, 1, new DebugCon((b) => outputs.debug.push(b)));
    ports.register('post', POST_PORT, 1, {
      readPort: () => this.lastPostCode ?? 0xff,
      writePort: (_p: number, _s: AccessSize, v: number) => {
        this.lastPostCode = v & 0xff;
      },
    });
    if (config.debugExit === true) {
      ports.register('debug-exit', DEBUG_EXIT_PORT, 1, new DebugExit((code) => this.control.request({ kind: 'debug-exit', code })));
    }
    const pmBase = config.acpiPmBase ?? ACPI_PM_BASE;
    const start = process.hrtime.bigint();
    ports.register('acpi-pm', pmBase, ACPI_PM_LENGTH, new AcpiPm(pmBase, this, { s5SleepType: config.s5SleepType ?? 0, nowNs: () => process.hrtime.bigint() - start }));
    const pciConfig: PciMachineConfig = config.pci ?? { planFile: 'machine', ecamBase: DEFAULT_ECAM_BASE, roms: [] };
    const pci = composePlatformPci(pciConfig, {
      pamChanged: (regs) => this.memory.setPam(regs),
      pirqChanged: (pirq, value) => this.pirq.setRoute(pirq, value),
    });
    this.pci = new PciRuntime(
      pci,
      this.vm,
      ports,
      this.mmio,
      this,
      config.ram.ranges,
      config.protection === undefined ? undefined : ProtectionMap.build(config.protection, []),
      new Map(pciConfig.roms.map((r) => [r.device, r.bytes])),
      pciConfig.ecamBase,
      pciConfig.windows,
    );

    this.fwCfg = new FwCfg(this.memory, this.fwCfgItems());
    ports.register('fw_cfg', FW_CFG_PORT_SELECTOR, FW_CFG_PORT_COUNT, this.fwCfg);
    for (const f of this.fwCfgFiles()) this.fwCfg.addFile(f);

    this.mmio.register('pam', 0xc0000, 0x40000, this.memory.pamHandler());
    const romSize = config.firmware.image.length;
    this.mmio.register('bios-rom', 2 ** 32 - romSize, romSize, {
      readMmio: () => 0xffff_ffff,
      writeMmio: () => {
        this.romWritesRefused++;
      },
    });
    this.wireEventFds();
    if (config.start?.mode === 'flat32') this.enterFlat32(config.start.entry);
  }

  private wireEventFds(): void {
    const c = this.config;
    const msi = (c.interruptFds ?? []).filter((f) => f.msi !== undefined);
    if (msi.length > 0) {
      this.vm.setGsiRouting([...defaultPcRouting(), ...msi.map((f) => ({ kind: 'msi' as const, gsi: f.gsi, address: f.msi!.address, data: f.msi!.data }))]);
    }
    for (const f of c.interruptFds ?? []) this.vm.irqfd(f.fd, f.gsi, f.resampleFd);
    for (const e of c.ioEventFds ?? []) {
      this.vm.ioeventfd({ fd: e.fd, address: BigInt(e.port), length: e.length, space: 'pio', datamatch: e.datamatch === undefined ? undefined : BigInt(e.datamatch) });
    }
  }

  private fwCfgItems(): Map<number, Uint8Array> {
    const c = this.config;
    const items = new Map<number, Uint8Array>([
      [FW_CFG.UUID, new Uint8Array(16)],
      [FW_CFG.RAM_SIZE, le64(ramTotal(c.ram))],
      [FW_CFG.NOGRAPHIC, le16(0)],
      [FW_CFG.NB_CPUS, le16(VCPU_COUNT)],
      [FW_CFG.MAX_CPUS, le16(VCPU_COUNT)],
      [FW_CFG.NUMA, le64(0n)],
      [FW_CFG.BOOT_MENU, le16(0)],
      [FW_CFG.ACPI_TABLES, le16(0)],
      [FW_CFG.SMBIOS_ENTRIES, le16(0)],
      [FW_CFG.IRQ0_OVERRIDE, Uint8Array.of(1)],
      [FW_CFG.E820_TABLE, le32(0)],
    ]);
    if (c.linuxBoot !== undefined) {
      const lb = c.linuxBoot;
      for (const [k, v] of linuxBootItems({ kernel: lb.kernel, initrd: lb.initrd, cmdline: lb.cmdline, ramBelow4G: ramTopBelow4G(c.ram), name: lb.name })) items.set(k, v);
    }
    return items;
  }

  private fwCfgFiles(): Array<{ name: string; data: Uint8Array; writable?: boolean }> {
    const c = this.config;
    const files: Array<{ name: string; data: Uint8Array; writable?: boolean }> = [];
    files.push({ name: 'etc/e820', data: encodeE820(c.e820 ?? defaultE820(c.ram)) });
    const order = [...(c.bootOrder ?? [])];
    if (c.linuxBoot !== undefined) {
      files.push({ name: 'genroms/linuxboot_dma.bin', data: c.linuxBoot.optionRom });
      order.unshift('/rom@genroms/linuxboot_dma.bin');
    }
    if (order.length > 0) files.push({ name: 'bootorder', data: new TextEncoder().encode(order.join('\n') + '\nHALT\0') });
    for (const f of c.fwCfgFiles ?? []) files.push({ ...f });
    return files;
  }

  private enterFlat32(entry: number): void {
    const s = this.vcpu.getSpecialRegisters();
    const flat = (type: number) => ({ base: 0n, limit: 0xffff_ffff, selector: type === 0xb ? 0x08 : 0x10, type, present: true, dpl: 0, db: true, s: true, l: false, g: true, avl: false, unusable: false });
    s.cs = flat(0xb);
    s.ds = s.es = s.fs = s.gs = s.ss = flat(0x3);
    s.cr0 = (s.cr0 | 1n) & ~(1n << 31n);
    this.vcpu.setSpecialRegisters(s);
    const r = this.vcpu.getRegisters();
    r.rip = BigInt(entry);
    r.rflags = 2n;
    r.rsp = 0x9_0000n;
    this.vcpu.setRegisters(r);
  }

  /**
   * A PCI function's INTx line: routed up through the bridges' swizzle to a slot and pin on the
   * root bus, then by PIIX's PIRQ registers to an ISA IRQ (shared lines OR together). Device
   * models call this; the route is taken at the time of the call, since firmware renumbers.
   */
  setIntx(device: string, level: boolean): void {
    const entry = this.pci.pci.entries.find((e) => e.fn.id === device);
    if (entry === undefined || entry.fn.hidden) return;
    const route = intxRoute(this.pci.pci.topology, entry.fn);
    if (route === undefined) return;
    this.pirq.setIntx(PirqRouter.pirqOf(route.rootDevice, route.rootPin), device, level);
  }

  setGsi(gsi: number, level: boolean): void {
    this.vm.irqLine(gsi, level);
  }

  reset(source: string): void {
    this.control.request({ kind: 'reset', source });
  }

  powerOff(source: string): void {
    this.control.request({ kind: 'poweroff', source });
  }

  /** Releases the VM (its memory goes with the last fd). */
  close(): void {
    this.vcpu.close();
    this.vm.close();
    this.kvm.close();
  }

  report(): RunReport {
    return {
      exits: this.control.exits,
      vcpuNs: this.control.vcpuNs,
      unclaimed: this.ledger.summary(),
      deviceFaults: this.ledger.faults.map((f) => ({ device: f.device, message: f.message })),
      fwCfgRefusals: this.fwCfg.refusals.slice(0, 100).map((r) => `${r.what}: ${r.detail}`),
      romWritesRefused: this.romWritesRefused,
      lastPostCode: this.lastPostCode,
      serialBytesDropped: this.outputs.serial.dropped,
      barMappings: this.pci.log,
      acpi: readGuestAcpi((address, length) => this.memory.peek(address, length)),
    };
  }
}
