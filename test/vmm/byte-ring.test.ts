import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ByteRing } from '../../src/vmm/byte-ring.js';

/** Milliseconds `p` took to settle. */
async function took(p: Promise<void>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

test('a consumer sleeps on an empty ring until the producer, in another thread, writes a byte', async () => {
  const ring = new ByteRing(1 << 12);
  // The producer is a worker, as the vCPU thread is: it writes one byte after 200 ms.
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const ctl = new Int32Array(workerData, 0, 4);
     const data = new Uint8Array(workerData, 16);
     setTimeout(() => {
       const head = Atomics.load(ctl, 0);
       data[head % data.length] = 0x41;
       Atomics.store(ctl, 0, head + 1);
       if (Atomics.load(ctl, 3) !== 0 && Atomics.compareExchange(ctl, 3, 1, 0) === 1) Atomics.notify(ctl, 3);
     }, 200);`,
    { eval: true, workerData: ring.shared },
  );
  try {
    const ms = await took(ring.written(10_000));
    assert.ok(ms >= 150 && ms < 5_000, `woke after ${ms.toFixed(0)} ms, not at the byte (200 ms) nor the net (10 s)`);
    assert.deepEqual([...ring.drain()], [0x41]);
  } finally {
    await worker.terminate();
  }
});

test('the same wake-up through ByteRing.push; a ring that holds bytes does not wait; the net and wake() end a wait', async (t) => {
  const ring = new ByteRing(1 << 12);
  // A pending Atomics.waitAsync does not keep node's event loop alive; in a run the vCPU
  // threads do, here this timer.
  const alive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(alive));
  const waiting = ring.written(10_000);
  setTimeout(() => ring.push(0x42), 50);
  assert.ok((await took(waiting)) < 5_000);
  // Not drained yet: nothing to wait for.
  assert.ok((await took(ring.written(10_000))) < 50);
  assert.deepEqual([...ring.drain()], [0x42]);
  // Empty: the net ends it.
  const net = await took(ring.written(100));
  assert.ok(net >= 80 && net < 5_000, `the 100 ms net took ${net.toFixed(0)} ms`);
  const closing = ring.written(10_000);
  setTimeout(() => ring.wake(), 50);
  assert.ok((await took(closing)) < 5_000);
  // A push with nobody waiting only stores the byte.
  ring.push(0x43);
  assert.deepEqual([...ring.drain()], [0x43]);
});
