import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlRequestError, openControlSocket, type ControlVerb } from '../../src/cli/control-socket.js';
import { controlRequest } from '../../src/cli/ctl.js';
import { ControlRefusal, HotplugHost } from '../../src/cli/hotplug-host.js';
import { CLI } from '../helpers/paths.js';

/**
 * The control socket's protocol (QMP's shape: a greeting, one JSON object per line, replies by
 * id, errors with a class and a description) and `hvmpt ctl` as its client, against a server
 * whose verbs answer from a table: no machine needed.
 */
function hvmptAsync(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

async function withServer(body: (path: string, calls: Array<[ControlVerb, Record<string, unknown>]>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-ctl-'));
  const path = join(dir, 'c.sock');
  const calls: Array<[ControlVerb, Record<string, unknown>]> = [];
  const server = await openControlSocket(path, { version: 'test' }, async (verb, args) => {
    calls.push([verb, args]);
    if (verb === 'detach') throw new ControlRefusal(`${String(args['device'])} is dedicated (pci.passthrough[0].use): it stays with the guest for the run`);
    if (verb === 'attach' && typeof args['entry'] !== 'string') throw new ControlRequestError('attach: arguments.entry');
    return { verb, args };
  });
  try {
    await body(path, calls);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('requests get replies by id; a refusal and a bad request come back as errors naming what was wrong', async () => {
  await withServer(async (path, calls) => {
    assert.deepEqual(await controlRequest(path, 'status', {}, 10_000), { return: { verb: 'status', args: {} }, id: 1 });
    const refused = await controlRequest(path, 'detach', { device: 'nic' }, 10_000);
    assert.deepEqual(refused, { error: { class: 'ControlRefusal', desc: 'nic is dedicated (pci.passthrough[0].use): it stays with the guest for the run' }, id: 1 });
    const bad = await controlRequest(path, 'frob', {}, 10_000);
    assert.match(String((bad['error'] as { desc: string }).desc), /execute: "frob" is not a verb \(status, devices, attach, detach, stop\)/);
    assert.equal((bad['error'] as { class: string }).class, 'BadRequest');
    assert.deepEqual(calls.map((c) => c[0]), ['status', 'detach']);
  });
});

test('a line that is not JSON is answered with an error and the connection goes on', async () => {
  await withServer(async (path) => {
    const { createConnection } = await import('node:net');
    const lines = await new Promise<string[]>((resolve) => {
      const s = createConnection(path);
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        const got = buf.split('\n').filter((l) => l !== '');
        if (got.length === 1) s.write('{nope\n{"execute":"status","id":7}\n');
        if (got.length >= 3) {
          s.end();
          resolve(got);
        }
      });
    });
    assert.deepEqual(JSON.parse(lines[0]!), { hvmpt: { version: 'test' } });
    assert.equal(JSON.parse(lines[1]!).error.class, 'BadRequest');
    assert.match(JSON.parse(lines[1]!).error.desc, /^not JSON: /);
    assert.deepEqual(JSON.parse(lines[2]!), { return: { verb: 'status', args: {} }, id: 7 });
  });
});

test('hvmpt ctl prints the reply as JSON, exits 1 on an error reply and 2 on a usage error; --force-after goes with detach', async () => {
  await withServer(async (path, calls) => {
    const ok = await hvmptAsync(['ctl', `unix:${path}`, 'attach', '{ host: "8086:10d3", name: nic }']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).return, { verb: 'attach', args: { entry: '{ host: "8086:10d3", name: nic }' } });
    const refused = await hvmptAsync(['ctl', path, 'detach', 'disk', '--force-after', '5']);
    assert.equal(refused.status, 1);
    assert.match(JSON.parse(refused.stdout).error.desc, /^disk is dedicated/);
    assert.deepEqual(calls.at(-1), ['detach', { device: 'disk', 'force-after': 5 }]);
    const usage = await hvmptAsync(['ctl', path, 'frob']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /'frob' is not a verb/);
    const noArg = await hvmptAsync(['ctl', path, 'detach']);
    assert.equal(noArg.status, 2);
  });
  const gone = await hvmptAsync(['ctl', join(tmpdir(), 'hvmpt-no-such.sock'), 'status']);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /cannot reach the control socket: ENOENT/);
});

test('a socket left by a dead run is taken over; one another run listens on is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-ctl-'));
  try {
    const path = join(dir, 'c.sock');
    const other = createServer(() => {});
    await new Promise<void>((r) => other.listen(path, r));
    await assert.rejects(openControlSocket(path, {}, async () => ({})), /in use/);
    await new Promise<void>((r) => other.close(() => r()));
    writeFileSync(join(dir, 'plain'), 'x');
    await assert.rejects(openControlSocket(join(dir, 'plain'), {}, async () => ({})), /in use \(another run listens there, or it is not a socket\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an attach entry is checked by the plan schema, problems named by entry path, before anything is touched', () => {
  const host = new HotplugHost({ plan: { memory: { size: 1n << 28n } } as never, sys: undefined as never, inputs: undefined as never, uses: [], machine: () => undefined, note: () => {} });
  assert.throws(() => host.parseEntry('{ host: "8086:10d3", backend: floppy }'), (e: unknown) => e instanceof ControlRefusal && /^entry\.backend: /.test(e.message));
  assert.throws(() => host.parseEntry({ nam: 'x', host: '8086:10d3' }), (e: unknown) => e instanceof ControlRefusal && /entry: Unrecognized key: "nam"/.test(e.message));
  assert.deepEqual(host.parseEntry('{ host: "8086:10d3", name: nic, use: { allocation: dynamic } }').use, { allocation: 'dynamic' });
});
