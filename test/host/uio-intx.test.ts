/**
 * The uio INTx bridge's life cycle on this machine's own kernel, with no device: a config file
 * in a temporary directory stands in for sysfs `config`, a FIFO for /dev/uioN (4 bytes written
 * into it: an interrupt uio_pci_generic counted), and eventfds for KVM's irqfds. Each connect
 * starts the bridge thread, which must carry an interrupt to the trigger, keep the device masked
 * until the resample and unmask it then; each disconnect must end it and leave the process's
 * fds as they were (hot-plug counts them after every detach).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { attachUio } from '../../src/host/uio/attached.js';
import { loadSys } from '../../src/native/index.js';
import { EFD_CLOEXEC, O_CLOEXEC, O_RDWR, POLLIN } from '../../src/native/sys.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** The fd count once it is back to `want`, or what it is after 5 s (a worker thread's own event loop closes its fds just after it ends). */
async function settledFds(want: number): Promise<number> {
  for (let i = 0; i < 100 && openFds() !== want; i++) await new Promise((r) => setTimeout(r, 50));
  return openFds();
}

test('the uio INTx bridge ends on disconnect and leaves no fd behind, connect after connect', async () => {
  const sys = loadSys();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-uio-intx-'));
  try {
    const configFile = join(dir, 'config');
    writeFileSync(configFile, new Uint8Array(256));
    const config = sys.open(configFile, O_RDWR | O_CLOEXEC);
    execFileSync('mkfifo', [join(dir, 'uio0')]);
    // Read-write, so opening a FIFO does not wait for a writer; the test writes into it as the kernel would.
    const uio = sys.open(join(dir, 'uio0'), O_RDWR | O_CLOEXEC);
    const trigger = sys.eventfd(0, EFD_CLOEXEC);
    const resample = sys.eventfd(0, EFD_CLOEXEC);
    const device = attachUio(
      sys,
      { kind: 'uio', address: 'test:00.0', config, configLength: 256, uio, resources: [], reset: undefined },
      { description: { backend: 'uio', source: 'test:00.0 (uio_pci_generic)', regions: [], interrupts: { intx: 1, msi: 0, msix: 0 }, reset: ['none'] } },
    );
    const masked = (): boolean => (readFileSync(configFile)[0x05]! & 0x04) !== 0;
    const before = openFds();
    const counts: number[] = [];
    for (let round = 0; round < 5; round++) {
      device.interrupts.connectIntx(trigger, resample);
      assert.ok(openFds() > before, 'a connect opens the bridge\'s stop eventfd');
      // An interrupt: the guest is told, and the device stays masked (Interrupt Disable) until its EOI.
      sys.write(uio, new Uint8Array([round + 1, 0, 0, 0]));
      assert.deepEqual(sys.poll([{ fd: trigger, events: POLLIN }], 5000), [POLLIN], `round ${round}: the interrupt reached the trigger`);
      assert.equal(sys.eventfdRead(trigger), 1n);
      assert.equal(masked(), true, 'masked while in flight');
      assert.equal(device.config.read(0x04, 2) & 0x0400, 0, 'the guest\'s own bit is untouched');
      sys.eventfdWrite(resample, 1n);
      for (let i = 0; i < 100 && masked(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(masked(), false, 'unmasked at the EOI');
      device.interrupts.disconnectIntx();
      counts.push(await settledFds(before));
    }
    assert.deepEqual(counts, [before, before, before, before, before], 'each disconnect closes it again');
    // The bridge's own config accesses left the guest's Interrupt Disable bit clear and the device unmasked.
    assert.equal(device.config.read(0x04, 2) & 0x0400, 0);
    device.close();
    assert.throws(() => device.interrupts.setVectors('msi', []), /INTx only/);
    for (const fd of [config, uio, trigger, resample]) sys.close(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
