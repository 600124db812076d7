import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { PciFunction } from '../../src/hw/pci/function.js';
import { loadSys } from '../../src/native/index.js';
import { loadPlan } from '../../src/plan/schema.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import type { ComposedMachine } from '../../src/platform/compose.js';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { Asm } from '../../tools/guest/asm.js';
import { FLAT32_TABLES, flat32Tables, MICRO_BIOS_BASE, microConfig } from '../../tools/guest/micro.js';
import { Machine } from '../../src/vmm/machine.js';
import type { MachineConfig } from '../../src/platform/machine-config.js';
import { controlBuffer } from '../../src/vmm/vcpu-control.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { acpiexec, type AcpiexecValue } from '../acpi/generate/acpiexec.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessBootFirmware, skipUnlessCommand } from '../helpers/require.js';
import { skipUnlessKvm } from './kvm-helpers.js';

/**
 * An INTx a device raises arrives where the generated tables say. ACPICA's acpiexec (not
 * hvmpt's code) evaluates the DSDT the desktop plan gets — \_PIC, _PRT, the link devices'
 * _SRS against the PIIX3's PIRQ fields — and a micro guest on the desktop plan's composed bus
 * then does what an OS does with the answer:
 * - APIC model: the PIRQ registers as \_PIC (1) sets them, an IOAPIC redirection entry per GSI
 *   the _PRT names (vector 0x30 + GSI), the 8259s masked; each device with a pin raises its
 *   INTx and the guest reports the vector that arrived;
 * - PIC model: each device's _PRT link, given IRQ 5 through its _SRS (and only that link);
 *   the interrupt must arrive on the 8259's IRQ 5.
 * The slot and pin each device reaches at the root bus are computed here with the PCI
 * bridge swizzle, not by the PCI core.
 */

const DESKTOP = join(REPO_ROOT, 'examples', 'desktop.yaml');
const TRIGGER = 0x700;
const COM1 = 0x3f8;
const EXIT = 0xf4;
const FLAG = 0x500;
const VECTOR_BASE = 0x30;
/** Where the APIC model's handler finds the address to resume at, and its stack. */
const RESUME = 0x504;
const STACK = 0x9_0000;
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

interface Wired {
  readonly fn: PciFunction;
  readonly slot: number;
  /** 0 INTA .. 3 INTD, as _PRT writes it. */
  readonly pin: number;
}

/** Every visible function with an interrupt pin, with the root slot and pin the swizzle gives it. */
function wired(c: ComposedMachine): Wired[] {
  const topology = c.pci.topology;
  const out: Wired[] = [];
  for (const { fn } of topology.reachable()) {
    const own = fn.read(0x3d, 1);
    if (own < 1 || own > 4) continue;
    let pin = own - 1;
    let at = fn;
    let bus = topology.busOf(fn);
    while (bus.bridge !== null) {
      pin = (pin + at.device) % 4; // PCI-to-PCI Bridge Architecture, table 9-1
      at = bus.bridge;
      bus = topology.busOf(at);
    }
    out.push({ fn, slot: at.device, pin });
  }
  return out;
}

function composeOrSkip(t: TestContext): ComposedMachine | undefined {
  if (!skipUnlessKvm(t) || !skipUnlessCommand(t, 'acpiexec', 'acpica-tools')) return undefined;
  if (!skipUnlessBootFirmware(t)) return undefined;
  return composePlanFile(DESKTOP);
}

/**
 * acpiexec on the guest's DSDT and SSDTs; what the evaluations that return an object returned,
 * in order (\_PIC, _SRS and _DIS return nothing), checked to come from `returning`.
 */
function evaluate(c: ComposedMachine, commands: string[], returning: string[]): AcpiexecValue[] {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-intx-prt-'));
  try {
    const files = c.acpi.tables
      .filter((x) => x.signature === 'DSDT' || x.signature === 'SSDT')
      .map((x, i) => {
        const f = join(dir, `${x.signature.toLowerCase()}${i}.aml`);
        writeFileSync(f, x.bytes);
        return f;
      });
    const r = acpiexec(commands.map((x) => `evaluate ${x}`).join('; '), files);
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.output, /ACPI Error|AE_[A-Z]/, r.output);
    assert.deepEqual(r.results.map((x) => x.path), returning, r.output);
    return r.results.map((x) => x.value);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The _PRT as acpiexec returned it: slot/pin -> the source (a link's name or 0) and the GSI. */
function prtEntries(v: AcpiexecValue): Map<string, { source: AcpiexecValue; gsi: number }> {
  assert.ok(Array.isArray(v));
  const out = new Map<string, { source: AcpiexecValue; gsi: number }>();
  for (const e of v as readonly AcpiexecValue[]) {
    assert.ok(Array.isArray(e) && e.length === 4);
    const [address, pin, source, gsi] = e as readonly AcpiexecValue[];
    out.set(`${Number(address as bigint) >>> 16}/${Number(pin as bigint)}`, { source: source!, gsi: Number(gsi as bigint) });
  }
  return out;
}

interface TriggerRun {
  readonly reason: unknown;
  /** What the guest wrote on COM1 between raising device i and reporting its wait over. */
  readonly responses: number[][];
  /** What it wrote while no device was raised (before each raise), by the device raised next. */
  readonly strays: number[][];
}

/**
 * Builds the machine in this thread with a port that raises (0x700, value = device index) and
 * drops (0x701) a device's INTx; 0x701 with value 1 also says the guest's wait is over.
 */
function runWithTrigger(c: ComposedMachine, config: MachineConfig, devices: readonly Wired[]): TriggerRun {
  const serial = new ByteRing(1 << 12);
  const machine = new Machine(loadSys(), { ...config, pci: c.config.pci! }, { serial, debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)));
  let current: string | undefined;
  const responses: number[][] = [];
  const strays: number[][] = [];
  machine.ports.register('intx-trigger', TRIGGER, 2, {
    readPort: () => 0,
    writePort: (port, _size, value) => {
      if (port === TRIGGER) {
        strays.push([...serial.drain()]);
        current = devices[value & 0xff]!.fn.id;
        machine.setIntx(current, true);
        return;
      }
      if (current !== undefined) machine.setIntx(current, false);
      if ((value & 0xff) === 1) responses.push([...serial.drain()]);
    },
  });
  try {
    const reason = runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control);
    return { reason, responses, strays };
  } finally {
    machine.close();
  }
}

const out8 = (a: Asm, port: number, value: number): Asm => a.movImm('edx', port, 2).movImm('eax', value, 1).outDx(1);

/** PIIX3 (00:01.0) PIRQ route register 0x60 + n, through CF8/CFC. */
function pirqWrite(a: Asm, n: number, value: number): void {
  a.movImm('edx', 0xcf8, 2).movImm('eax', 0x8000_0860, 4).outDx(4);
  out8(a, 0xcfc + n, value);
}

/**
 * Raise device i's INTx with interrupts on, wait (bounded) for the handler to set FLAG, then
 * drop the line and say the wait is over (0x701, 1). Returns where the wait ends, for a
 * handler that jumps back instead of returning.
 */
function raiseAndWait(a: Asm, i: number): number {
  a.cli().storeImm8(FLAG, 0);
  out8(a, TRIGGER, i);
  a.movImm('ecx', 2_000_000, 4).sti().label(`wait${i}`);
  a.loadAbs(FLAG, 1).testAl(0xff).jnz(`got${i}`).decEcx().jnz(`wait${i}`);
  a.label(`got${i}`);
  const got = a.offset;
  a.cli();
  out8(a, TRIGGER + 1, 1);
  return got;
}

test('APIC model: each device\'s INTx reaches the IOAPIC pin its _PRT entry names, through the PIRQ routing \\_PIC (1) sets', (t) => {
  const c = composeOrSkip(t);
  if (c === undefined) return;
  const devices = wired(c);
  assert.ok(devices.length >= 4 && devices.some((d) => c.pci.topology.busOf(d.fn).bridge !== null), 'devices behind bridges too');
  const reads = ['\\_SB.PCI0._PRT', '\\_SB.PCI0.ISA.PRQA', '\\_SB.PCI0.ISA.PRQB', '\\_SB.PCI0.ISA.PRQC', '\\_SB.PCI0.ISA.PRQD'];
  const v = evaluate(c, ['\\_PIC 1', ...reads], reads);
  const prt = prtEntries(v[0]!);
  const pirqs = v.slice(1).map((x) => Number(x as bigint));
  const expected = devices.map((d) => {
    const e = prt.get(`${d.slot}/${d.pin}`);
    assert.ok(e !== undefined, `the _PRT has an entry for slot ${d.slot} pin ${d.pin} (${d.fn.id})`);
    assert.equal(e.source, 0n, 'APIC model: a GSI, no link');
    return e.gsi;
  });
  const gsis = [...new Set(expected)];

  // Flat 32-bit guest: GDT and IDT in the ROM image; stubs for vectors 0x30-0x47 load the
  // vector into AL and jump to one handler, which records it, reports it on COM1, drops the
  // line, EOIs the LAPIC and returns.
  const a = new Asm(32);
  a.lgdt(MICRO_BIOS_BASE + FLAT32_TABLES.gdtr).lidt(MICRO_BIOS_BASE + FLAT32_TABLES.idtr);
  a.storeImm(0xfee0_00f0, 0x1ff, 4); // LAPIC on, spurious vector 0xFF
  out8(a, 0x21, 0xff);
  out8(a, 0xa1, 0xff); // only the IOAPIC delivers
  pirqs.forEach((value, n) => pirqWrite(a, n, value));
  for (const g of gsis) {
    a.storeImm(0xfec0_0000, 0x10 + 2 * g, 4).storeImm(0xfec0_0010, (VECTOR_BASE + g) | (1 << 13) | (1 << 15), 4); // level, active low, unmasked
    a.storeImm(0xfec0_0000, 0x11 + 2 * g, 4).storeImm(0xfec0_0010, 0, 4); // to APIC ID 0
  }
  // Under this nested KVM a protected-mode IRET ends in KVM's instruction emulator, which
  // handles IRET in real mode only (the run stops with an emulation failure), so
  // the handler resumes the loop it interrupted by a jump through RESUME, with a fresh stack.
  // Before each raise, interrupts are on for a while with every line low: a level interrupt
  // KVM delivers again after its EOI arrives there (a stray), not in the next device's wait.
  const resumes: Array<{ at: number; to: number }> = [];
  const resumeAt = (): number => {
    a.storeImm(RESUME, 0, 4);
    return resumes.push({ at: a.offset - 4, to: 0 }) - 1;
  };
  devices.forEach((_, i) => {
    const drain = resumeAt();
    resumes[drain]!.to = a.offset;
    a.movImm('ecx', 200_000, 4).sti().label(`drain${i}`).decEcx().jnz(`drain${i}`).cli();
    const wait = resumeAt();
    resumes[wait]!.to = raiseAndWait(a, i);
  });
  a.movImm('edx', EXIT, 2).movImm('eax', 0x21, 1).outDx(1).cli().hlt();
  const stubs: number[] = [];
  for (let g = 0; g < 24; g++) {
    stubs.push(a.offset);
    a.movImm('eax', VECTOR_BASE + g, 1).jmp('common');
  }
  a.label('common');
  a.storeAbs(FLAG, 1).movImm('edx', COM1, 2).outDx(1);
  out8(a, TRIGGER + 1, 0);
  a.storeImm(0xfee0_00b0, 0, 4); // LAPIC EOI
  a.movImm('esp', STACK, 4).raw(0xff, 0x25, ...le32(RESUME)); // jmp [RESUME]

  const code = a.bytes();
  for (const r of resumes) new DataView(code.buffer, code.byteOffset).setUint32(r.at, MICRO_BIOS_BASE + r.to, true);
  const config = microConfig(code, { flat32: true, data: flat32Tables(new Map(stubs.map((off, g) => [VECTOR_BASE + g, off]))) });
  const r = runWithTrigger(c, config, devices);
  assert.deepEqual(r.reason, { kind: 'debug-exit', code: (0x21 << 1) | 1 });
  const plan = devices.map((d, i) => `${d.fn.id} slot ${d.slot} pin ${'ABCD'[d.pin]}: _PRT GSI ${expected[i]}`).join('; ');
  assert.deepEqual(r.responses.map((v) => v.map((x) => x - VECTOR_BASE)), expected.map((g) => [g]), plan);
  // A stray is only ever a GSI some earlier device raised, delivered again after its EOI.
  r.strays.forEach((v, i) => {
    for (const x of v) assert.ok(expected.slice(0, i).includes(x - VECTOR_BASE), `before ${devices[i]!.fn.id}: vector 0x${x.toString(16)} with every line low; ${plan}`);
  });
});

test('PIC model: each device\'s INTx arrives on the IRQ its _PRT link is given through _SRS, and on no other link', (t) => {
  const c = composeOrSkip(t);
  if (c === undefined) return;
  const devices = wired(c);
  const links = ['LNKA', 'LNKB', 'LNKC', 'LNKD'];
  // IRQ 5, level, active low, shared: the descriptor a link's _PRS offers and _SRS takes.
  const irq5 = '(23 20 00 18 79 00)';
  const fields = ['PRQA', 'PRQB', 'PRQC', 'PRQD'];
  const fieldPaths = fields.map((f) => `\\_SB.PCI0.ISA.${f}`);
  const v = evaluate(
    c,
    ['\\_PIC 0', '\\_SB.PCI0._PRT', ...links.flatMap((l) => [`\\_SB.${l}._SRS ${irq5}`, ...fieldPaths, `\\_SB.${l}._DIS`])],
    ['\\_SB.PCI0._PRT', ...links.flatMap(() => fieldPaths)],
  );
  const prt = prtEntries(v[0]!);
  // Which PIIX3 register each link's _SRS wrote IRQ 5 into (every other one untouched).
  const register = new Map<string, number>();
  links.forEach((l, k) => {
    const after = v.slice(1 + k * 4, 1 + k * 4 + 4).map((x) => Number(x as bigint));
    assert.equal(after.filter((x) => x === 5).length, 1, `${l}._SRS routes one PIRQ: ${after.join(', ')}`);
    register.set(l, after.indexOf(5));
  });
  const linkOf = devices.map((d) => {
    const e = prt.get(`${d.slot}/${d.pin}`);
    assert.ok(e !== undefined && typeof e.source === 'object' && 'ref' in e.source, `slot ${d.slot} pin ${d.pin}: a link`);
    // acpiexec gives the name as the package holds it: relative (LNKA) or a full path (\_SB_.LNKA).
    const name = (e.source as { ref: string }).ref.split('.').pop()!.replace(/^\\/, '');
    assert.ok(register.has(name), `slot ${d.slot} pin ${d.pin}: link ${name}`);
    return register.get(name)!;
  });

  // Real mode: the 8259 with IRQ 5 alone unmasked and level triggered (ELCR), its handler sets
  // FLAG, drops the line and EOIs. For each device only its link's register routes to IRQ 5.
  const a = new Asm(16);
  a.cli().zeroDs();
  a.storeImm((0x08 + 5) * 4, 0xdead, 2);
  const vectorAt = a.offset - 2;
  a.storeImm((0x08 + 5) * 4 + 2, 0xf000, 2);
  for (const [port, value] of [[0x20, 0x11], [0x21, 0x08], [0x21, 0x04], [0x21, 0x01], [0x21, 0xdf], [0xa1, 0xff], [0x4d0, 0x20]] as const) out8(a, port, value);
  devices.forEach((_, i) => {
    for (let n = 0; n < 4; n++) pirqWrite(a, n, n === linkOf[i] ? 5 : 0x80);
    raiseAndWait(a, i);
  });
  a.movImm('edx', EXIT, 2).movImm('eax', 0x22, 1).outDx(1).cli().hlt();
  const handler = a.offset;
  a.raw(0x60).storeImm8(FLAG, 1);
  out8(a, COM1, 1);
  out8(a, TRIGGER + 1, 0);
  out8(a, 0x20, 0x20);
  a.raw(0x61, 0xcf); // popa; iret
  const code = a.bytes();
  code[vectorAt] = handler & 0xff;
  code[vectorAt + 1] = handler >> 8;
  const r = runWithTrigger(c, microConfig(code), devices);
  assert.deepEqual(r.reason, { kind: 'debug-exit', code: (0x22 << 1) | 1 });
  assert.deepEqual(r.responses, devices.map(() => [1]), devices.map((d, i) => `${d.fn.id} slot ${d.slot} pin ${'ABCD'[d.pin]} -> PIRQ${'ABCD'[linkOf[i]!]}`).join('; '));
  assert.deepEqual(r.strays, devices.map(() => []), 'no IRQ 5 while its line is low');
});
