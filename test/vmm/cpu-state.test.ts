/**
 * What a triple fault's report says of the vCPU, from the registers KVM gives back: where it
 * stood, or, when KVM re-initialised it at the shutdown (KVM on AMD SVM does), that they are lost.
 * A fake vCPU stands in for KVM: the decision is the registers' alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Registers, Segment, SpecialRegisters, Vcpu } from '../../src/vmm/kvm/vcpu.js';
import { cpuState } from '../../src/vmm/vcpu-loop.js';

const segment = (selector: number): Segment => ({ base: BigInt(selector) << 4n, limit: 0xffff, selector, type: 3, present: true, dpl: 0, db: false, s: true, l: false, g: false, avl: false, unusable: false });

function fakeVcpu(rip: bigint, s: Partial<SpecialRegisters>): Vcpu {
  const regs = new Proxy({} as Registers, { get: (_, name) => (name === 'rip' ? rip : name === 'rflags' ? 2n : 0n) });
  const seg = segment(0xf000);
  const sregs: SpecialRegisters = {
    cs: seg, ds: seg, es: seg, fs: seg, gs: seg, ss: seg, tr: seg, ldt: seg,
    gdt: { base: 0n, limit: 0xffff }, idt: { base: 0n, limit: 0xffff },
    cr0: 0x6000_0010n, cr2: 0n, cr3: 0n, cr4: 0n, cr8: 0n, efer: 0n, apicBase: 0xfee0_0900n,
    ...s,
  };
  return { id: 0, getRegisters: () => regs, getSpecialRegisters: () => sregs } as unknown as Vcpu;
}

const LOST = "vCPU 0: its registers are lost: this host's KVM re-initialised the vCPU at the shutdown (KVM on AMD SVM does)";

test('a vCPU KVM re-initialised at the shutdown is reported as lost, whatever CD and NW the guest left (an INIT keeps them)', () => {
  // Before the guest touched CR0 (a micro BIOS), and after SeaBIOS cleared CD and NW: both INIT states.
  assert.equal(cpuState(fakeVcpu(0xfff0n, { cr0: 0x6000_0010n })), LOST);
  assert.equal(cpuState(fakeVcpu(0xfff0n, { cr0: 0x10n })), LOST);
  assert.equal(cpuState(fakeVcpu(0xfff0n, { cr0: 0x2000_0010n })), LOST);
});

test('a vCPU that stood anywhere else is reported where it stood', () => {
  // Protected mode, paging, another RIP or a moved IDT: a real place, not an INIT.
  for (const [rip, s] of [
    [0xfff0n, { cr0: 0x11n }],
    [0xfff0n, { cr0: 0x10n, cr3: 0x1000n }],
    [0xfff0n, { cr0: 0x10n, cr4: 0x20n }],
    [0xfff0n, { cr0: 0x10n, idt: { base: 0n, limit: 0 } }],
    [0xe05bn, { cr0: 0x10n }],
  ] as const) {
    const state = cpuState(fakeVcpu(rip, s));
    assert.notEqual(state, LOST, JSON.stringify({ rip: rip.toString(16), s }, (_, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v)));
    assert.match(state ?? '', new RegExp(`^vCPU 0: rip 0xf000:0x${rip.toString(16)} rsp 0x0 rflags 0x2 cr0 0x`));
  }
});
