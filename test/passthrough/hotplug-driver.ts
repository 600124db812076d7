/**
 * The lab host's side of test/passthrough/hotplug-lab.test.ts, run there with node: starts
 * `hvmpt run` with a control socket, follows the probe guest's console for its markers, and
 * drives attach and detach through the socket (and `hvmpt ctl` now and then, the CLI users
 * have), checking the lab host's own drivers between. Prints `@@pt-begin NAME` … `@@pt-end NAME
 * rc=0` sections the test reads; it asserts nothing itself.
 *
 *   node hotplug-driver.js HVMPT PLAN SOCKET NIC NVME EDU2 MATE ROUNDS
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { basename } from 'node:path';

const [hvmpt, plan, sock, nic, nvme, edu2, mate, roundsText] = process.argv.slice(2) as [string, string, string, string, string, string, string, string];
const rounds = Number(roundsText);
let console_ = '';
let stderr = '';
const waiters: Array<() => void> = [];
const child = spawn(process.execPath, [hvmpt, 'run', plan, '--control', `unix:${sock}`], { stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.setEncoding('utf8');
child.stderr.setEncoding('utf8');
child.stdout.on('data', (d: string) => {
  console_ += d.replace(/\r/g, '');
  for (const w of [...waiters]) w();
});
child.stderr.on('data', (d: string) => {
  stderr += d;
});
const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

function section(name: string, body: unknown): void {
  process.stdout.write(`@@pt-begin ${name}\n${typeof body === 'string' ? body : JSON.stringify(body)}\n@@pt-end ${name} rc=0\n`);
}

/** Resolves when the guest's console has printed `marker` (a line of its own). */
function marker(text: string, ms = 900_000): Promise<void> {
  const re = new RegExp(`^${text}$`, 'm');
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!re.test(console_)) return;
      waiters.splice(waiters.indexOf(check), 1);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(check), 1);
      reject(new Error(`the guest never printed ${text}`));
    }, ms);
    waiters.push(check);
    check();
  });
}

/** One request on the control socket, as a client other than hvmpt ctl would send it. */
function request(execute: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = createConnection(sock);
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const m = JSON.parse(l) as Record<string, unknown>;
        if ('hvmpt' in m) s.write(JSON.stringify({ execute, arguments: args, id: 'lab' }) + '\n');
        else if (m['id'] === 'lab') {
          s.end();
          resolve(m);
        }
      }
    });
  });
}

/** `hvmpt ctl` itself (asynchronously: the run's console must keep draining meanwhile). */
function ctl(...args: string[]): Promise<{ status: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [hvmpt, 'ctl', sock, ...args], { encoding: 'utf8' }, (err, stdout) => resolve({ status: err === null ? 0 : Number(err.code), stdout }));
  });
}

const driver = (address: string): string => {
  try {
    return basename(readlinkSync(`/sys/bus/pci/devices/${address}/driver`));
  } catch {
    return '-';
  }
};

/** The lab host's e1000e with NIC again: its driver, and its link (up, carrier) within a minute. */
async function nicBack(): Promise<string> {
  let carrier = '0';
  for (let i = 0; i < 300 && carrier !== '1'; i++) {
    const net = `/sys/bus/pci/devices/${nic}/net`;
    if (existsSync(net)) {
      const iface = readdirSync(net)[0]!;
      await new Promise((r) => execFile('ip', ['link', 'set', iface, 'up'], r));
      try {
        carrier = readFileSync(`/sys/class/net/${iface}/carrier`, 'utf8').trim();
      } catch {
        carrier = '0';
      }
    }
    if (carrier !== '1') await new Promise((r) => setTimeout(r, 200));
  }
  return `${driver(nic)} ${carrier}`;
}

const t0 = Date.now();
try {
  await marker('@@ready', 1_800_000);
  section('status-0', await request('status'));
  section('refuse-dedicated', await ctl('detach', 'edu'));
  section('refuse-mate', await request('attach', { entry: `{ name: edu2, host: "${edu2}" }` }));
  section('mate-driver', `${driver(edu2)} ${driver(mate)}`);
  section('status-refused', await request('status'));
  for (let r = 1; r <= rounds; r++) {
    const a0 = Date.now();
    const attach = r === 1 ? (await ctl('attach', `{ name: nic, host: "${nic}", use: { allocation: dynamic } }`)).stdout : JSON.stringify(await request('attach', { entry: { name: 'nic', host: nic } }));
    section(`attach-${r}`, attach);
    await marker(`@@nic-bound ${r}`);
    section(`attach-ms-${r}`, String(Date.now() - a0));
    if (r === 1) {
      section('refuse-full', await request('attach', { entry: { name: 'disk', host: nvme } }));
      section('full-driver', driver(nvme));
      section('devices-1', await request('devices'));
    }
    await marker(`@@nic-done ${r}`);
    const d0 = Date.now();
    section(`detach-${r}`, await request('detach', { device: r % 2 === 0 ? 'nic' : '00:02.0' }));
    section(`detach-ms-${r}`, String(Date.now() - d0));
    section(`back-${r}`, await nicBack());
    section(`status-${r}`, await request('status'));
  }
  for (const r of [1, 2]) {
    section(`nvme-attach-${r}`, await request('attach', { entry: { name: 'disk', host: nvme } }));
    await marker(`@@nvme-done ${r}`);
    section(`nvme-detach-${r}`, await request('detach', { device: 'disk' }));
    section(`nvme-back-${r}`, driver(nvme));
  }
  section('force-attach', await request('attach', { entry: { name: 'nic', host: nic } }));
  await marker('@@deaf');
  const f0 = Date.now();
  section('force-detach', await request('detach', { device: 'nic', 'force-after': 5 }));
  section('force-ms', String(Date.now() - f0));
  section('force-back', await nicBack());
  await marker('@@hvmpt-done rc=\\d+');
} catch (err) {
  section('driver-error', err instanceof Error ? (err.stack ?? err.message) : String(err));
  child.kill('SIGTERM');
}
section('elapsed-ms', String(Date.now() - t0));
const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 300_000))]);
if (code === 'timeout') child.kill('SIGKILL');
section('run-exit', String(code));
section('run-console', console_);
section('run-stderr', stderr);
