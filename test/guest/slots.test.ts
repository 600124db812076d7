import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootGuest } from '../../src/host/guest/boot.js';
import { acquireGuestSlot } from '../../src/host/guest/slots.js';

test('guest slots: N at a time, the next waits until one is freed, a dead owner\'s slot is taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-slots-'));
  const saved = process.env['HVMPT_GUEST_SLOTS'];
  process.env['HVMPT_GUEST_SLOTS'] = '2';
  try {
    const a = await acquireGuestSlot(undefined, dir);
    const b = await acquireGuestSlot(undefined, dir);
    let waited = 0;
    let third = false;
    const c = acquireGuestSlot((n) => (waited = n), dir).then((free) => {
      third = true;
      return free;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(third, false, 'a third boot waits while two run');
    assert.equal(waited, 2);
    a();
    const freeC = await c;
    assert.equal(third, true);
    b();
    freeC();
    // A slot left behind by a process that no longer exists is free.
    writeFileSync(join(dir, 'slot-0'), '999999999');
    writeFileSync(join(dir, 'slot-1'), String(process.pid));
    const d = await acquireGuestSlot(undefined, dir);
    // A stopped boot (Ctrl-C on `hvmpt lab`) stops waiting, with the signal's reason.
    const stop = new AbortController();
    const e = acquireGuestSlot(undefined, dir, stop.signal);
    stop.abort(new Error('stopped by SIGINT'));
    await assert.rejects(e, /stopped by SIGINT/);
    d();
  } finally {
    if (saved === undefined) delete process.env['HVMPT_GUEST_SLOTS'];
    else process.env['HVMPT_GUEST_SLOTS'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('guest slots: waiters are served first come, first served; a dead waiter\'s ticket holds nobody up; a stopped waiter leaves the queue', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-slots-'));
  const saved = process.env['HVMPT_GUEST_SLOTS'];
  process.env['HVMPT_GUEST_SLOTS'] = '1';
  try {
    const held = await acquireGuestSlot(undefined, dir);
    // A ticket older than everyone's, left by a process that no longer exists.
    mkdirSync(join(dir, 'queue'), { recursive: true });
    writeFileSync(join(dir, 'queue', `${'0'.repeat(24)}-0999999999-0`), '999999999');
    const order: string[] = [];
    const stop = new AbortController();
    const gone = acquireGuestSlot(undefined, dir, stop.signal).catch(() => order.push('gone'));
    await new Promise((r) => setTimeout(r, 50));
    const first = acquireGuestSlot(undefined, dir).then((free) => (order.push('first'), free));
    await new Promise((r) => setTimeout(r, 700));
    // The oldest live waiter stops waiting: it leaves the queue, and the next in line is next.
    stop.abort(new Error('stopped'));
    await gone;
    // The slot frees just as a newcomer asks: it is the first waiter's all the same.
    held();
    const second = acquireGuestSlot(undefined, dir).then((free) => (order.push('second'), free));
    const freeFirst = await first;
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(order, ['gone', 'first'], 'the second waiter waits while the first holds the slot');
    freeFirst();
    (await second)();
    assert.deepEqual(order, ['gone', 'first', 'second']);
    assert.deepEqual(readdirSync(join(dir, 'queue')), [], 'no ticket is left behind');
  } finally {
    if (saved === undefined) delete process.env['HVMPT_GUEST_SLOTS'];
    else process.env['HVMPT_GUEST_SLOTS'] = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bootGuest calls onStart only once it holds a slot, so a caller\'s boot timer (the lab\'s) does not count the wait', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-slots-'));
  const saved = { slots: process.env['HVMPT_GUEST_SLOTS'], tmp: process.env['TMPDIR'] };
  // bootGuest's slots live under the temporary directory: a private one, with one slot, held here.
  process.env['HVMPT_GUEST_SLOTS'] = '1';
  process.env['TMPDIR'] = dir;
  try {
    const hold = await acquireGuestSlot(undefined, join(dir, 'hvmpt-guest-slots'));
    let started = false;
    // `false` for QEMU: it exits at once, so the boot fails right after it starts.
    const boot = bootGuest({ kernel: join(dir, 'none'), qemu: 'false', timeoutMs: 10_000, onStart: () => (started = true) }).then(
      () => undefined,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(started, false, 'no start while the only slot is held');
    hold();
    assert.ok((await boot) instanceof Error, 'the fake QEMU fails the boot');
    assert.equal(started, true);
  } finally {
    for (const [k, v] of [['HVMPT_GUEST_SLOTS', saved.slots], ['TMPDIR', saved.tmp]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
