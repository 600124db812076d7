/**
 * The lab host's side of `npm run bench -- hotplug` (bench/hotplug.ts), run there with node:
 * hot-plugs the lab's e1000e into a running guest and takes it back, ROUNDS times, timing
 *
 * - attach: from the request to the guest's console saying its e1000e driver has the device;
 * - detach: from the request to the lab host's own e1000e bound to it again.
 *
 * `hvmpt`: `hvmpt run --control` and its socket (attach binds to vfio-pci, detach waits for the
 * guest's eject and rebinds e1000e, both inside the one request). `qemu`: QEMU's QMP
 * `device_add vfio-pci` after binding vfio-pci through sysfs, and `device_del`, the
 * DEVICE_DELETED event, then e1000e bound again through sysfs: the same work, QEMU's way.
 * Prints `hvmpt attach_ms N` / `… detach_ms N` lines, one per round.
 *
 *   node hotplug-driver.js hvmpt|qemu NIC ROUNDS HVMPT PLAN SOCKET | QEMU-ARGS…
 */
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { basename } from 'node:path';

const [mode, nic, roundsText, ...rest] = process.argv.slice(2) as [string, string, string, ...string[]];
const rounds = Number(roundsText);
let console_ = '';
const waiters: Array<() => void> = [];
const listen = (d: string): void => {
  console_ += d.replace(/\r/g, '');
  for (const w of [...waiters]) w();
};
const marker = (text: string, ms = 600_000): Promise<void> => {
  const re = new RegExp(`^${text}$`, 'm');
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!re.test(console_)) return;
      waiters.splice(waiters.indexOf(check), 1);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => reject(new Error(`${mode}: the guest never printed ${text}; console ends:\n${console_.slice(-2000)}`)), ms);
    waiters.push(check);
    check();
  });
};
const driver = (): string => {
  try {
    return basename(readlinkSync(`/sys/bus/pci/devices/${nic}/driver`));
  } catch {
    return '-';
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitDriver(want: string): Promise<void> {
  for (let i = 0; i < 30_000 && driver() !== want; i++) await sleep(5);
  if (driver() !== want) throw new Error(`${nic} never bound to ${want}`);
}
/** What `hvmpt bind` / `unbind` do, in sysfs, for QEMU's side. */
function rebind(to: string): void {
  const dir = `/sys/bus/pci/devices/${nic}`;
  writeFileSync(`${dir}/driver_override`, to === 'e1000e' ? '\n' : to);
  if (driver() !== '-') writeFileSync(`${dir}/driver/unbind`, nic);
  writeFileSync('/sys/bus/pci/drivers_probe', nic);
}

/** A line-JSON client (QMP and hvmpt's control socket speak the same way). */
class LineJson {
  private buf = '';
  private readonly queue: Array<Record<string, unknown>> = [];
  private wake: (() => void) | undefined;
  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      const lines = this.buf.split('\n');
      this.buf = lines.pop()!;
      for (const l of lines) if (l.trim() !== '') this.queue.push(JSON.parse(l) as Record<string, unknown>);
      this.wake?.();
    });
  }
  static connect(path: string): Promise<LineJson> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => resolve(new LineJson(s)));
      s.once('error', reject);
    });
  }
  /** The next message that `match` accepts (others are dropped). */
  async next(match: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const i = this.queue.findIndex(match);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      this.queue.length = 0;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
  send(o: unknown): void {
    this.socket.write(JSON.stringify(o) + '\n');
  }
  close(): void {
    this.socket.end();
  }
}

async function connectRetry(path: string): Promise<LineJson> {
  for (let i = 0; ; i++) {
    try {
      return await LineJson.connect(path);
    } catch (err) {
      if (i > 600) throw err;
      await sleep(100);
    }
  }
}

const t = (): number => performance.now();
const report = (what: string, ms: number): void => void process.stdout.write(`${mode} ${what} ${ms.toFixed(0)}\n`);

if (mode === 'hvmpt') {
  const [hvmpt, plan, sock] = rest as [string, string, string];
  const child = spawn(process.execPath, [hvmpt, 'run', plan, '--control', `unix:${sock}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', listen);
  await marker('@@ready');
  const c = await connectRetry(sock);
  await c.next((m) => 'hvmpt' in m);
  for (let r = 1; r <= rounds; r++) {
    const a0 = t();
    c.send({ execute: 'attach', arguments: { entry: { name: 'nic', host: nic } }, id: `a${r}` });
    const a = await c.next((m) => m['id'] === `a${r}`);
    if (!('return' in a)) throw new Error(JSON.stringify(a));
    await marker(`@@nic-bound ${r}`);
    report('attach_ms', t() - a0);
    const d0 = t();
    c.send({ execute: 'detach', arguments: { device: 'nic' }, id: `d${r}` });
    const d = await c.next((m) => m['id'] === `d${r}`);
    if (!('return' in d)) throw new Error(JSON.stringify(d));
    await waitDriver('e1000e');
    report('detach_ms', t() - d0);
    await marker(`@@nic-gone ${r}`);
  }
  c.close();
  await new Promise((r) => child.on('exit', r));
} else {
  const qmpPath = '/tmp/hvmpt-bench-qmp.sock';
  const child = spawn('qemu-system-x86_64', [...rest, '-qmp', `unix:${qmpPath},server=on,wait=off`], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', listen);
  await marker('@@ready');
  const q = await connectRetry(qmpPath);
  await q.next((m) => 'QMP' in m);
  q.send({ execute: 'qmp_capabilities', id: 'caps' });
  await q.next((m) => m['id'] === 'caps');
  for (let r = 1; r <= rounds; r++) {
    const a0 = t();
    rebind('vfio-pci');
    await waitDriver('vfio-pci');
    q.send({ execute: 'device_add', arguments: { driver: 'vfio-pci', host: nic, id: 'nic', bus: 'pci.0', addr: '0x5' }, id: `a${r}` });
    const a = await q.next((m) => m['id'] === `a${r}`);
    if (!('return' in a)) throw new Error(JSON.stringify(a));
    await marker(`@@nic-bound ${r}`);
    report('attach_ms', t() - a0);
    const d0 = t();
    q.send({ execute: 'device_del', arguments: { id: 'nic' }, id: `d${r}` });
    await q.next((m) => m['event'] === 'DEVICE_DELETED' && (m['data'] as { device?: string } | undefined)?.device === 'nic');
    rebind('e1000e');
    await waitDriver('e1000e');
    report('detach_ms', t() - d0);
    await marker(`@@nic-gone ${r}`);
  }
  q.close();
  await new Promise((r) => child.on('exit', r));
}
// The lab host's e1000e has its device back (checked by both sides).
process.stdout.write(`${mode} host_driver ${readFileSync(`/sys/bus/pci/devices/${nic}/uevent`, 'utf8').match(/^DRIVER=(.*)$/m)?.[1] ?? '-'}\n`);
