/**
 * `hvmpt export --to qemu`: a `qemu-system-x86_64` command line for the plan — QEMU's `pc`
 * machine (the same i440FX and PIIX3 at 00:00.0 and 00:01.0 hvmpt's monitor has), memory,
 * `pci-bridge` for fake bridges, QEMU's device models for emulated devices, `vfio-pci` for
 * pass-through entries (host=, romfile=/rombar=, x-pci-* ID overrides), the plan's SSDTs and
 * exposed host tables through `-acpitable`, SMBIOS through `-smbios`, and the boot target.
 * One argument per line, or with `--format sh` a runnable script.
 */
import { hostPreparation, preparationLines } from './host-prep.js';
import { hex4, noteUnsupportedMachine, systemStrings, uuidText, type ExportFile, type ExportModel, type ExportOptions, type ExportResult, type Exporter } from './model.js';
import type { ExportNotes } from './notes.js';
import { addedTableFiles, bootSettings, noteMachine } from './qemu-machine.js';
import { planQemuDevices, slotKey, type QemuBus, type QemuDevice } from './qemu-devices.js';

/** QEMU's option syntax: a comma inside a value is written twice. */
export function qemuValue(v: string): string {
  return v.replace(/,/g, ',,');
}

const MiB = 1n << 20n;

function memoryArg(size: bigint): string {
  return size % MiB === 0n ? `${size / MiB}M` : `${size}B`;
}

/** `bus=…,addr=…`; `bridgeId` names a bridge's bus as the QEMU being configured calls it. */
function addrOf(at: QemuBus, bridgeId: (name: string) => string): string {
  return `bus=${at.bridge === undefined ? 'pci.0' : bridgeId(at.bridge)},addr=${at.device.toString(16).padStart(2, '0')}.${at.fn}`;
}

const joinPath = (dir: string, name: string): string => `${dir.replace(/\/+$/, '')}/${name}`;

export function deviceArgs(d: QemuDevice, multifunction: ReadonlySet<string>, bridgeId: (name: string) => string = (name) => name): string[] {
  const mf = d.at.fn === 0 && multifunction.has(slotKey(d.at)) ? ',multifunction=on' : '';
  const addr = addrOf(d.at, bridgeId);
  switch (d.kind) {
    case 'bridge':
      return ['-device', `pci-bridge,id=${d.id},${addr}${mf},chassis_nr=${d.chassis},shpc=off,msi=off`];
    case 'model': {
      const out: string[] = [];
      const props = [...d.model.props];
      if (d.model.nic) {
        out.push('-netdev', `hubport,id=hub-${d.id},hubid=0`);
        props.push(`netdev=hub-${d.id}`);
      }
      if (d.romFile !== undefined) props.push(`romfile=${qemuValue(d.romFile)}`);
      else if (d.noRom) props.push('romfile=');
      out.push('-device', [`${d.model.device},id=${d.id},${addr}${mf}`, ...props].join(','));
      return out;
    }
    case 'vfio': {
      const e = d.pt.placement.entry;
      const props = [`vfio-pci,id=${d.id},host=${d.host},${addr}${mf}`];
      if (e.rom.kind === 'off') props.push('rombar=0');
      if (d.pt.romFile !== undefined) props.push(`romfile=${qemuValue(d.pt.romFile)}`);
      const ids = e.ids;
      if (ids?.vendor !== undefined) props.push(`x-pci-vendor-id=0x${hex4(ids.vendor)}`);
      if (ids?.device !== undefined) props.push(`x-pci-device-id=0x${hex4(ids.device)}`);
      if (ids?.subsystemVendor !== undefined) props.push(`x-pci-sub-vendor-id=0x${hex4(ids.subsystemVendor)}`);
      if (ids?.subsystem !== undefined) props.push(`x-pci-sub-device-id=0x${hex4(ids.subsystem)}`);
      return ['-device', props.join(',')];
    }
  }
}

function serialArg(target: string): string {
  if (target === 'stdout') return 'stdio';
  if (/^(unix|tcp):/.test(target)) return target;
  return `file:${target}`;
}

/** QEMU's -smbios fields from the guest's system and chassis strings. */
function smbiosArgs(model: ExportModel): string[] {
  if (model.smbios === false) return [];
  const s = model.smbios.system;
  const uuid = uuidText(s.uuid);
  const type1 = systemStrings(s).map(([k, v]) => `${k}=${qemuValue(v)}`);
  if (uuid !== undefined) type1.push(`uuid=${uuid}`);
  const c = model.smbios.chassis;
  const type3 = [`manufacturer=${qemuValue(c.manufacturer)}`, ...(c.version === '' ? [] : [`version=${qemuValue(c.version)}`])];
  return ['-smbios', ['type=1', ...type1].join(','), '-smbios', ['type=3', ...type3].join(',')];
}

/** The argument list, and the files it names. */
export function qemuArguments(model: ExportModel, notes: ExportNotes, filesDir: string, target = 'QEMU'): { args: string[]; files: ExportFile[] } {
  const plan = model.plan;
  noteMachine(model, notes, target);
  const devices = planQemuDevices(model, notes, target);
  const oem = plan.acpi?.generate?.oem;
  const machine = ['pc', ...(oem?.oemId === undefined ? [] : [`x-oem-id=${qemuValue(oem.oemId)}`]), ...(oem?.oemTableId === undefined ? [] : [`x-oem-table-id=${qemuValue(oem.oemTableId)}`])].join(',');
  const args = ['-machine', machine, '-accel', 'kvm', '-smp', `${plan.machine.cpus},sockets=1,cores=${plan.machine.cpus},threads=1`, '-m', memoryArg(plan.memory.size), '-nodefaults', '-no-user-config', '-display', 'none'];
  args.push('-serial', serialArg(plan.machine.serial));
  if (plan.machine.onReset === 'exit') args.push('-no-reboot');
  if (model.firmware !== undefined) args.push('-bios', model.firmware);
  if (plan.machine.firmwareLog !== undefined) args.push('-chardev', `file,id=firmware-log,path=${qemuValue(plan.machine.firmwareLog)}`, '-device', 'isa-debugcon,iobase=0x402,chardev=firmware-log');
  noteUnsupportedMachine(model, notes, { timeout: `${target} has no time limit of its own (run it under timeout ${plan.machine.timeout})` });
  const boot = bootSettings(model, filesDir);
  const files: ExportFile[] = boot.files;
  args.push('-kernel', boot.kernel);
  if (boot.initrd !== undefined) args.push('-initrd', boot.initrd);
  if (boot.cmdline !== '') args.push('-append', boot.cmdline);
  args.push(...smbiosArgs(model));
  const tables = addedTableFiles(model, notes, target);
  for (const t of tables) args.push('-acpitable', `file=${qemuValue(joinPath(filesDir, t.name))}`);
  files.push(...tables);
  for (const d of devices.devices) args.push(...deviceArgs(d, devices.multifunction));
  return { args, files };
}

/** Single-quotes a word for sh. */
function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const QEMU_EXPORTER: Exporter = {
  target: 'qemu',
  summary: 'a qemu-system-x86_64 command line (one argument per line; --format sh for a script)',
  run(model: ExportModel, notes: ExportNotes, options: ExportOptions): ExportResult {
    const { args, files } = qemuArguments(model, notes, options.filesDir);
    if (options.format !== 'sh') return { text: args.join('\n') + '\n', files };
    const prep = preparationLines(hostPreparation(model, 'qemu'));
    const lines = ['#!/bin/sh', `# ${model.name}: exported by hvmpt from ${model.planFile}`, ...prep.map((l) => `# ${l}`), 'exec qemu-system-x86_64 \\'];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const v = args[i + 1];
      if (a.startsWith('-') && v !== undefined && !v.startsWith('-')) {
        lines.push(`  ${a} ${shQuote(v)} \\`);
        i++;
      } else lines.push(`  ${shQuote(a)} \\`);
    }
    lines.push('  "$@"');
    return { text: lines.join('\n') + '\n', files };
  },
};
