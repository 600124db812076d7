/**
 * `hvmpt export --to libvirt`: a libvirt domain (QEMU/KVM, machine `pc`) — `<hostdev
 * mode='subsystem' type='pci'>` for pass-through entries with their `<rom>` and guest
 * addresses, `pci-bridge` controllers for fake bridges, `<sysinfo>` for SMBIOS, the boot
 * target in `<os>`. What libvirt 9 has no element for goes through QEMU's own namespace
 * (`<qemu:commandline>`, `<qemu:override>`), each such part noted: the plan's SSDTs (libvirt's
 * `<acpi><table>` takes only a SLIC), device models with no libvirt element, ID overrides.
 */
import { resolve } from 'node:path';
import { hostPreparation, preparationLines } from './host-prep.js';
import { noteUnsupportedMachine, systemStrings, uuidText, type ExportModel, type ExportOptions, type ExportResult, type Exporter } from './model.js';
import type { ExportNotes } from './notes.js';
import { addedTableFiles, bootSettings, noteMachine } from './qemu-machine.js';
import { planQemuDevices, slotKey, type QemuBus, type QemuDevice } from './qemu-devices.js';
import { deviceArgs, qemuValue } from './qemu.js';

const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** An XML comment's text may not hold `--`. */
function xmlComment(s: string): string {
  return `<!-- ${s.replace(/--/g, '- -')} -->`;
}

const h = (n: number, w: number): string => `0x${n.toString(16).padStart(w, '0')}`;

/** A guest address (`type='pci'`), or with `source` a host device's (which takes no type). */
function pciAddress(domain: number, bus: number, slot: number, fn: number, options: { multifunction?: boolean; source?: boolean } = {}): string {
  return `<address${options.source === true ? '' : " type='pci'"} domain='${h(domain, 4)}' bus='${h(bus, 2)}' slot='${h(slot, 2)}' function='${h(fn, 1)}'${options.multifunction === true ? " multifunction='on'" : ''}/>`;
}

function serialXml(target: string): string[] {
  const unix = /^unix:(.+)$/.exec(target);
  const tcp = /^tcp:(?:(.+):)?(\d+)$/.exec(target);
  if (target === 'stdout') return ["<serial type='pty'>", "  <target port='0'/>", '</serial>'];
  if (unix !== null) return ["<serial type='unix'>", `  <source mode='connect' path='${xmlEscape(unix[1]!)}'/>`, "  <target port='0'/>", '</serial>'];
  if (tcp !== null) return ["<serial type='tcp'>", `  <source mode='connect' host='${xmlEscape(tcp[1] ?? '127.0.0.1')}' service='${tcp[2]}'/>`, "  <protocol type='raw'/>", "  <target port='0'/>", '</serial>'];
  return ["<serial type='file'>", `  <source path='${xmlEscape(target)}'/>`, "  <target port='0'/>", '</serial>'];
}

export const LIBVIRT_EXPORTER: Exporter = {
  target: 'libvirt',
  summary: 'a libvirt domain XML (QEMU/KVM, machine pc) with <hostdev> pass-through, bridge controllers and <sysinfo>',
  run(model: ExportModel, notes: ExportNotes, options: ExportOptions): ExportResult {
    const target = 'libvirt';
    const plan = model.plan;
    noteMachine(model, notes, target);
    const devicePlan = planQemuDevices(model, notes, target);
    const boot = bootSettings(model, options.filesDir);
    const files = [...boot.files];
    const dir = options.filesDir.replace(/\/+$/, '');
    const out: string[] = [];
    const dev: string[] = [];
    const qemuArgs: string[] = [];
    const overrides: string[] = [];

    // Controller indexes are libvirt's bus numbers: the root bus is 0, each bridge its own.
    const index = new Map<string, number>();
    devicePlan.devices.forEach((d) => d.kind === 'bridge' && index.set(d.id, index.size + 1));
    const busNumber = (at: QemuBus): number => (at.bridge === undefined ? 0 : index.get(at.bridge)!);
    const address = (d: QemuDevice): string => pciAddress(0, busNumber(d.at), d.at.device, d.at.fn, { multifunction: d.at.fn === 0 && devicePlan.multifunction.has(slotKey(d.at)) });

    dev.push("<controller type='usb' model='none'/>", "<controller type='pci' index='0' model='pci-root'/>");
    for (const d of devicePlan.devices) {
      if (d.kind !== 'bridge') continue;
      dev.push(`<controller type='pci' index='${index.get(d.id)}' model='pci-bridge'>`, "  <model name='pci-bridge'/>", `  <target chassisNr='${d.chassis}'/>`, `  <alias name='ua-${d.id}'/>`, `  ${address(d)}`, '</controller>');
    }
    for (const d of devicePlan.devices) {
      if (d.kind === 'vfio') {
        const e = d.pt.placement.entry;
        const [domain, bus, rest] = d.host.split(':');
        const [slot, fn] = rest!.split('.');
        const managed = d.pt.use.allocation === 'dedicated' ? 'no' : 'yes';
        dev.push(`<hostdev mode='subsystem' type='pci' managed='${managed}'>`, "  <driver name='vfio'/>", `  <source>`, `    ${pciAddress(parseInt(domain!, 16), parseInt(bus!, 16), parseInt(slot!, 16), Number(fn), { source: true })}`, '  </source>');
        if (e.rom.kind === 'off') dev.push("  <rom bar='off'/>");
        if (d.pt.romFile !== undefined) dev.push(`  <rom file='${xmlEscape(d.pt.romFile)}'/>`);
        dev.push(`  <alias name='ua-${d.id}'/>`, `  ${address(d)}`, '</hostdev>');
        const ids = e.ids;
        const props: Array<[string, number | undefined]> = [
          ['x-pci-vendor-id', ids?.vendor],
          ['x-pci-device-id', ids?.device],
          ['x-pci-sub-vendor-id', ids?.subsystemVendor],
          ['x-pci-sub-device-id', ids?.subsystem],
        ];
        const set = props.filter((p): p is [string, number] => p[1] !== undefined);
        if (set.length > 0) {
          notes.differs(`${d.pt.placement.path}.ids`, `libvirt has no element for a hostdev's ID overrides: they go to QEMU through <qemu:override> on device ua-${d.id}, which libvirt does not check`);
          overrides.push(`<qemu:device alias='ua-${d.id}'>`, '  <qemu:frontend>', ...set.map(([k, v]) => `    <qemu:property name='${k}' type='unsigned' value='${v}'/>`), '  </qemu:frontend>', '</qemu:device>');
        }
      } else if (d.kind === 'model') {
        if (d.model.device === 'ich9-ahci') {
          dev.push(`<controller type='sata' index='${dev.filter((l) => l.startsWith("<controller type='sata'")).length}'>`, `  <alias name='ua-${d.id}'/>`, `  ${address(d)}`, '</controller>');
          continue;
        }
        notes.differs(d.fn.source, `libvirt has no element for ${d.model.nic ? `a NIC with no network to join (QEMU's ${d.model.device} on an isolated QEMU hub)` : `QEMU's ${d.model.device}`}: ${d.id} goes to QEMU through <qemu:commandline>, outside libvirt's management`);
        // libvirt names each bridge's QEMU device by its alias.
        qemuArgs.push(...deviceArgs(d, devicePlan.multifunction, (name) => `ua-${name}`));
      }
    }
    // libvirtd runs elsewhere: a relative path means the one `hvmpt run` would use, from here.
    const serial = /^(unix|tcp):|^stdout$/.test(plan.machine.serial) ? plan.machine.serial : resolve(plan.machine.serial);
    dev.push(...serialXml(serial), "<memballoon model='none'/>");

    const tables = addedTableFiles(model, notes, target);
    files.push(...tables);
    if (tables.length > 0) notes.differs('acpi', `libvirt 9's <acpi><table> takes only a SLIC: ${tables.map((t) => t.what).join(', ')} go to QEMU as -acpitable through <qemu:commandline>`);
    for (const t of tables) {
      qemuArgs.push('-acpitable', `file=${qemuValue(`${dir}/${t.name}`)}`);
    }
    if (plan.machine.firmwareLog !== undefined) {
      notes.differs('machine.firmwareLog', 'libvirt has no element for the firmware\'s debug port: it goes to QEMU through <qemu:commandline>');
      qemuArgs.push('-chardev', `file,id=firmware-log,path=${qemuValue(resolve(plan.machine.firmwareLog))}`, '-device', 'isa-debugcon,iobase=0x402,chardev=firmware-log');
    }
    noteUnsupportedMachine(model, notes, { timeout: 'libvirt has no time limit for a domain' });
    const oem = plan.acpi?.generate?.oem;
    if (oem?.oemId !== undefined || oem?.oemTableId !== undefined) notes.cannot('acpi.generate.oem', 'libvirt has no element for the ACPI OEM IDs of the tables QEMU builds');

    const prep = preparationLines(hostPreparation(model, 'libvirt'));
    out.push(`<domain type='kvm' xmlns:qemu='${QEMU_NS}'>`);
    out.push(`  ${xmlComment(`${model.name}: exported by hvmpt from ${model.planFile}`)}`);
    for (const l of prep) out.push(`  ${xmlComment(l)}`);
    out.push(`  <name>${xmlEscape(model.name)}</name>`);
    const uuid = model.smbios === false ? undefined : uuidText(model.smbios.system.uuid);
    if (uuid !== undefined) out.push(`  <uuid>${uuid}</uuid>`);
    out.push(`  <memory unit='KiB'>${plan.memory.size / 1024n}</memory>`, `  <vcpu>${plan.machine.cpus}</vcpu>`);
    // One package of N cores, as hvmpt's CPUID, MADT and SMBIOS describe the vCPUs.
    out.push('  <cpu>', `    <topology sockets='1' cores='${plan.machine.cpus}' threads='1'/>`, '  </cpu>');
    if (model.smbios !== false) {
      out.push("  <sysinfo type='smbios'>", '    <system>');
      for (const [k, v] of systemStrings(model.smbios.system)) out.push(`      <entry name='${k}'>${xmlEscape(v)}</entry>`);
      if (uuid !== undefined) out.push(`      <entry name='uuid'>${uuid}</entry>`);
      out.push('    </system>', '    <chassis>', `      <entry name='manufacturer'>${xmlEscape(model.smbios.chassis.manufacturer)}</entry>`);
      if (model.smbios.chassis.version !== '') out.push(`      <entry name='version'>${xmlEscape(model.smbios.chassis.version)}</entry>`);
      out.push('    </chassis>', '  </sysinfo>');
    }
    out.push('  <os>', "    <type arch='x86_64' machine='pc'>hvm</type>");
    if (model.firmware !== undefined) out.push(`    <loader type='rom'>${xmlEscape(model.firmware)}</loader>`);
    out.push(`    <kernel>${xmlEscape(boot.kernel)}</kernel>`);
    if (boot.initrd !== undefined) out.push(`    <initrd>${xmlEscape(boot.initrd)}</initrd>`);
    if (boot.cmdline !== '') out.push(`    <cmdline>${xmlEscape(boot.cmdline)}</cmdline>`);
    if (model.smbios !== false) out.push("    <smbios mode='sysinfo'/>");
    out.push('  </os>', '  <features>', '    <acpi/>', '  </features>');
    if (plan.machine.onReset === 'exit') out.push('  <on_reboot>destroy</on_reboot>');
    out.push('  <devices>', ...dev.map((l) => `    ${l}`), '  </devices>');
    if (qemuArgs.length > 0) out.push('  <qemu:commandline>', ...qemuArgs.map((a) => `    <qemu:arg value='${xmlEscape(a)}'/>`), '  </qemu:commandline>');
    if (overrides.length > 0) out.push('  <qemu:override>', ...overrides.map((l) => `    ${l}`), '  </qemu:override>');
    out.push('</domain>');
    return { text: out.join('\n') + '\n', files };
  },
};
