import { AcpiPm, ACPI_PM_BASE, ACPI_PM_LENGTH } from '../hw/chipset/acpi-pm.js';
import { QuietGpeBlock } from '../hw/chipset/quiet-gpe.js';
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
import { composePlatformPci, DEFAULT_ECAM_BASE, type PciMachineConfig } from '../platform/pci-platform.js';
import { PciRuntime, type MappingLogEntry } from './pci-runtime.js';
import { IoLedger, MmioBus, PortBus } from './io-bus.js';
import { Kvm, REQUIRED_CAPS } from './kvm/system.js';
import { CAP } from './kvm/abi.js';
import { guestCpuid } from '../hw/cpu/cpuid.js';
import type { Vcpu } from './kvm/vcpu.js';
import type { Vm } from './kvm/vm.js';
import { MsiRoutes } from './msi-routes.js';
import { PassthroughDevice, type PassthroughDeps } from './passthrough.js';
import { HotplugError, LiveHotplug, liveDevices } from './hotplug.js';
import type { ControlRequest, ControlResult, Removal } from './control-protocol.js';
import { attachDevice, liveConfig } from './attach.js';
import { MonitorPlugin } from './plugins.js';
import type { PciDeviceDefinition } from '../plugin/api.js';
import type { LiveBars } from './pci-runtime.js';
import type { AttachedDevice } from '../hw/pci/backend.js';
import type { PassthroughAttachment } from '../platform/passthrough.js';
import { HvmptError } from '../errors.js';
import { GuestMemory } from './guest-memory.js';
import { ramAbove4G, ramTopBelow4G, ramTotal } from '../hw/mem/ram-layout.js';
import { defaultE820, encodeE820, type MachineConfig } from '../platform/machine-config.js';
import { RunControl } from './vcpu-control.js';
import { CoalescedRing, RING_PAGE } from './coalesced.js';
import { CF8_PORT } from '../hw/pci/cf8.js';
import type { Watchdog } from './vcpu-loop.js';
import { KvmError } from './kvm/errors.js';

/** What the machine reports at the end of a run, besides why it stopped. */
export interface RunReport {
  /** Exits of every vCPU together. */
  readonly exits: number;
  /** Exits per vCPU, by index (the boot vCPU first). */
  readonly vcpuExits: number[];
  /** Writes KVM queued without an exit and the monitor applied (the CF8 address latch); 0 where KVM cannot queue. */
  readonly coalescedWrites: number;
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
  /** Device plug-ins: failed or not, and the DMA their devices asked for that the rules refused. */
  readonly plugins: Array<{ device: string; plugin: string; failed: string | null; dmaRefused: string[] }>;
}

export interface MachineOutputs {
  readonly serial: ByteRing;
  readonly debug: ByteRing;
  /** Bytes typed at the guest's console (COM1's receiver), filled by the main thread. */
  readonly serialIn?: ByteRing;
  /** Lines for the user: what the machine did that matters (passthrough interrupt routes, refusals). */
  readonly note?: (text: string) => void;
  /** A hot-plugged device left the bus on the guest's own eject (the main thread closes and hands it back). */
  readonly removed?: (r: Removal) => void;
}

/** Device plug-ins' definitions and validated options, by device name (the vCPU thread loaded them: src/vmm/worker.ts). */
export type LoadedDevicePlugins = ReadonlyMap<string, { readonly definition: PciDeviceDefinition; readonly options: unknown }>;

/**
 * A PC-compatible machine on KVM, built inside the vCPU thread so device dispatch costs no
 * thread hop: in-kernel PIC/IOAPIC/LAPIC and PIT, an i440FX/PIIX3 chipset (PAM, PIRQ routing,
 * reset control), COM1, CMOS/RTC, i8042 and port 0x92, fw_cfg with DMA, the 0x402 firmware
 * log, an ACPI PM block, and the BIOS image.
 */
export class Machine implements SystemControl, GsiSink {
  readonly kvm: Kvm;
  readonly vm: Vm;
  /** The boot vCPU, run by this thread. */
  readonly vcpu: Vcpu;
  /** Every vCPU by index (APIC ID); the others run in their own threads (ap-worker.ts). */
  readonly vcpus: readonly Vcpu[];
  readonly cpus: number;
  readonly ledger = new IoLedger();
  readonly ports = new PortBus(this.ledger);
  readonly mmio = new MmioBus(this.ledger);
  readonly control: RunControl;
  readonly memory: GuestMemory;
  readonly fwCfg: FwCfg;
  readonly uart: Uart8250;
  readonly pirq: PirqRouter;
  readonly pci: PciRuntime;
  readonly routes: MsiRoutes;
  /** Real devices driven through their back-ends, by function id. */
  readonly passthrough = new Map<string, PassthroughDevice>();
  /** Device plug-ins running in this thread, by function id. */
  readonly plugins = new Map<string, MonitorPlugin>();
  /** ACPI PCI hot-plug, when the plan declares hot-plug slots (config.hotplug). */
  readonly hotplug: LiveHotplug | undefined;
  private romWritesRefused = 0;
  private lastPostCode: number | undefined;

  constructor(
    sys: Sys,
    readonly config: MachineConfig,
    private readonly outputs: MachineOutputs,
    control: Int32Array,
    loaded: LoadedDevicePlugins = new Map(),
  ) {
    this.control = new RunControl(control);
    const cpus = config.cpus ?? 1;
    if (this.control.cpus !== cpus) throw new RangeError(`control words for ${this.control.cpus} vCPUs, machine of ${cpus}`);
    this.cpus = cpus;
    this.kvm = new Kvm(sys);
    this.kvm.requireExtensions(REQUIRED_CAPS);
    const maxCpus = this.kvm.checkExtension(CAP.MAX_VCPUS);
    if (cpus > maxCpus) throw new KvmError(`${cpus} vCPUs asked, this KVM runs at most ${maxCpus}`, { input: '/dev/kvm' });
    this.vm = this.kvm.createVm();
    this.vm.createIrqchip();
    this.vm.createPit2();
    const protection = config.protection === undefined ? undefined : ProtectionMap.build(config.protection, []);
    this.memory = new GuestMemory(this.vm, config.ram, config.firmware.image, config.firmware.name, config.identityRam === undefined ? undefined : { ranges: config.identityRam, protection });
    // All vCPUs are created together, before any runs: KVM then starts their TSCs in step.
    // With the in-kernel LAPIC, vCPU 0 is the boot processor and the others wait, in KVM, for
    // the INIT and SIPI the guest sends; the vCPU ID is the APIC ID.
    const tscDeadline = this.kvm.checkExtension(CAP.TSC_DEADLINE_TIMER) > 0;
    const supported = this.kvm.supportedCpuid();
    this.vcpus = Array.from({ length: cpus }, (_, index) => {
      const vcpu = this.vm.createVcpu(index);
      vcpu.setCpuid(guestCpuid(supported, { index, cpus, tscDeadline }));
      return vcpu;
    });
    this.vcpu = this.vcpus[0]!;
    this.control.runs = this.vcpus.map((v) => v.runView);
    this.control.coalesced = this.coalesceAddressLatch();
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
    ports.register('cmos', CMOS_INDEX_PORT, 2, new Cmos({ ramBelow4G: ramTopBelow4G(config.ram), ramAbove4G: ramAbove4G(config.ram), cpus, now }));
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
    for (const g of config.quietGpe ?? []) ports.register(`quiet-gpe@0x${g.base.toString(16)}`, g.base, g.length, new QuietGpeBlock(g.base, g.length));
    const pciConfig: PciMachineConfig = config.pci ?? { planFile: 'machine', ecamBase: DEFAULT_ECAM_BASE, roms: [] };
    this.routes = new MsiRoutes(this.vm);
    // The PC's routing from the start (GSI 0 on IOAPIC pin 2, as the MADT's override says).
    this.routes.install();
    // Live devices first: the bus is composed over their config spaces.
    const attached = new Map<string, { device: AttachedDevice; attachment: PassthroughAttachment }>();
    try {
      for (const a of pciConfig.passthrough ?? []) {
        const dead = (why: string): void => this.ledger.noteFault({ device: a.name, space: 'mmio', address: 0, write: false, message: `${a.handle.address}: ${why}` });
        attached.set(a.name, { device: attachDevice(sys, a, { memory: this.memory, dead }), attachment: a });
      }
    } catch (err) {
      for (const { device } of attached.values()) device.close();
      throw err;
    }
    const live = new Map([...attached].map(([name, a]) => [name, liveConfig(a.device, a.attachment)]));
    const pci = composePlatformPci(
      pciConfig,
      {
        pamChanged: (regs) => this.memory.setPam(regs),
        pirqChanged: (pirq, value) => {
          this.pirq.setRoute(pirq, value);
          for (const d of this.passthrough.values()) d.routeIntx();
        },
      },
      live,
    );
    const ram = this.memory.ramRanges();
    const ptDeps: PassthroughDeps = { sys, vm: this.vm, mmio: this.mmio, ports, routes: this.routes, pirq: this.pirq, topology: pci.topology, ram, log: (line) => outputs.note?.(line) };
    for (const [name, a] of attached) {
      const entry = pci.entries.find((e) => e.fn.id === name);
      if (entry === undefined) throw new HvmptError(`passthrough device ${name} is not on the composed bus`, { input: a.attachment.handle.address });
      this.passthrough.set(name, new PassthroughDevice(ptDeps, entry.fn, a.device));
    }
    for (const a of pciConfig.plugins ?? []) {
      const entry = pci.entries.find((e) => e.fn.id === a.name);
      const def = loaded.get(a.name);
      if (entry === undefined || def === undefined) throw new HvmptError(`device plug-in ${a.name} is not ${entry === undefined ? 'on the composed bus' : 'loaded'}`, { input: a.module, at: a.path });
      const deps = { vm: this.vm, mmio: this.mmio, ports, memory: this.memory, protection, ledger: this.ledger, setIntx: (d: string, level: boolean) => this.setIntx(d, level), note: (text: string) => outputs.note?.(text) };
      this.plugins.set(a.name, new MonitorPlugin(deps, a, def.definition, def.options, entry.fn));
    }
    const liveBars = new Map<string, LiveBars>([...this.passthrough, ...this.plugins]);
    this.pci = new PciRuntime({
      pci,
      vm: this.vm,
      ports,
      mmio: this.mmio,
      system: this,
      ram: config.ram.ranges,
      protection,
      roms: new Map(pciConfig.roms.map((r) => [r.device, r.bytes])),
      ecamBase: pciConfig.ecamBase,
      windows: pciConfig.windows,
      passthrough: liveBars,
    });
    // Power-on: the bus was just reset; each plug-in starts from its own reset state too.
    for (const p of this.plugins.values()) p.device.reset();
    this.hotplug =
      config.hotplug === undefined
        ? undefined
        : new LiveHotplug({
            sys,
            vm: this.vm,
            ports,
            memory: this.memory,
            routes: this.routes,
            ledger: this.ledger,
            pci: this.pci,
            gsi: this,
            passthrough: this.passthrough,
            passthroughDeps: ptDeps,
            config: config.hotplug,
            policy: { ...(pciConfig.input?.capabilities === undefined ? {} : { capabilities: pciConfig.input.capabilities }), ...(pciConfig.input?.unclaimed === undefined ? {} : { unclaimed: pciConfig.input.unclaimed }) },
            note: (text) => outputs.note?.(text),
            removed: (r) => outputs.removed?.(r),
            exits: () => this.control.exits,
          });

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

  /**
   * CF8 writes queued in KVM's coalesced ring (docs/vmm.md, "Queued CF8 writes"), where KVM can
   * and `HVMPT_COALESCED_PIO` is not `off`. The zone is CF8's four bytes, so a byte
   * write to 0xCF9 (reset control) queues too: it is applied at the next exit, or at the halt
   * probe's kick when the guest makes none.
   */
  private coalesceAddressLatch(): CoalescedRing | undefined {
    if (process.env['HVMPT_COALESCED_PIO'] === 'off') return undefined;
    const page = this.kvm.checkExtension(CAP.COALESCED_MMIO);
    if (page <= 0 || this.kvm.checkExtension(CAP.COALESCED_PIO) <= 0) return undefined;
    const offset = page * RING_PAGE;
    if (offset + RING_PAGE > this.vcpu.run.length) return undefined;
    this.vm.coalesceWrites(CF8_PORT, 4, 'pio');
    return new CoalescedRing(new DataView(this.vcpu.run.buffer, offset, RING_PAGE));
  }

  private wireEventFds(): void {
    const c = this.config;
    for (const f of c.interruptFds ?? []) if (f.msi !== undefined) this.routes.set(f.gsi, f.msi.address, f.msi.data);
    this.routes.commit();
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
      [FW_CFG.NB_CPUS, le16(this.cpus)],
      [FW_CFG.MAX_CPUS, le16(this.cpus)],
      [FW_CFG.NUMA, le64(0n)],
      [FW_CFG.BOOT_MENU, le16(0)],
      [FW_CFG.ACPI_TABLES, le16(0)],
      [FW_CFG.SMBIOS_ENTRIES, le16(0)],
      [FW_CFG.IRQ0_OVERRIDE, Uint8Array.of(1)],
      [FW_CFG.E820_TABLE, le32(0)],
    ]);
    if (c.linuxBoot !== undefined) {
      const lb = c.linuxBoot;
      for (const [k, v] of linuxBootItems({ kernel: lb.kernel, initrd: lb.initrd, cmdline: lb.cmdline, ramBelow4G: ramTopBelow4G(c.ram), ram: c.ram.ranges, name: lb.name })) items.set(k, v);
    }
    return items;
  }

  private fwCfgFiles(): Array<{ name: string; data: Uint8Array; writable?: boolean }> {
    const c = this.config;
    const files: Array<{ name: string; data: Uint8Array; writable?: boolean }> = [];
    files.push({ name: 'etc/e820', data: encodeE820(c.e820 ?? defaultE820(c.ram)) });
    // What QEMU hands SeaBIOS: the vCPUs present at boot (it waits for that many to check in).
    files.push({ name: 'etc/boot-cpus', data: le16(this.cpus) });
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

  /** The watchdog over plug-in code, when the machine runs any. */
  watchdog(): Watchdog | undefined {
    if (this.plugins.size === 0) return undefined;
    const ms = Math.min(...[...this.plugins.values()].map((p) => p.attachment.watchdogMs));
    return { ms, hung: (device, limit) => this.plugins.get(device)?.device.fail(`watchdog: its code ran longer than ${limit} ms; stopped`) };
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

  /** A request from the main thread's control socket (served in this thread, between exits). */
  serveControl(r: ControlRequest): ControlResult {
    if (this.hotplug !== undefined) return this.hotplug.handle(r);
    if (r.op === 'status') {
      return { op: 'status', status: { exits: this.control.exits, memorySlots: this.vm.memorySlots().length, irqfds: this.vm.irqfdCount, msiGsis: this.routes.inUse, passthrough: this.passthrough.size, hotplug: null, devices: liveDevices(this.pci) } };
    }
    throw new HotplugError('this machine has no hot-plug slots: its plan sets neither pci.hotplug nor a passthrough device with use: { allocation: dynamic }');
  }

  /** Releases the VM (its memory goes with the last fd). */
  close(): void {
    for (const d of this.passthrough.values()) d.close();
    for (const v of this.vcpus) v.close();
    this.vm.close();
    this.kvm.close();
  }

  report(): RunReport {
    return {
      exits: this.control.exits,
      vcpuExits: [this.control.exits],
      coalescedWrites: this.control.coalesced?.applied ?? 0,
      vcpuNs: this.control.vcpuNs,
      unclaimed: this.ledger.summary(),
      deviceFaults: this.ledger.faults.map((f) => ({ device: f.device, message: f.message })),
      fwCfgRefusals: this.fwCfg.refusals.slice(0, 100).map((r) => `${r.what}: ${r.detail}`),
      romWritesRefused: this.romWritesRefused,
      lastPostCode: this.lastPostCode,
      serialBytesDropped: this.outputs.serial.dropped,
      barMappings: this.pci.log,
      acpi: readGuestAcpi((address, length) => this.memory.peek(address, length)),
      plugins: [...this.plugins.values()].map((p) => ({
        device: p.device.name,
        plugin: p.device.definition.name,
        failed: p.device.failed ?? null,
        dmaRefused: p.device.dmaRefusals.map((r) => `${r.write ? 'write' : 'read'} 0x${r.address.toString(16)}+0x${r.length.toString(16)}: ${r.reason}`),
      })),
    };
  }
}
