import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Asm, microBios } from '../../tools/guest/asm.js';
import { CLI } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitS } from '../helpers/limits.js';

test('hvmpt run --serial unix:PATH: COM1 output reaches a socket, the socket types back, ACPI power-off exits 0', async (t) => {
  if (!skipUnlessKvm(t)) return;
  // A 64 KiB "firmware": print "hello", wait for a byte on COM1, echo it, power off through PM1a_CNT.
  const a = new Asm(16);
  a.movImm('edx', 0x3f8, 2);
  for (const ch of new TextEncoder().encode('hello\n')) a.movImm('eax', ch, 1).outDx(1);
  a.label('wait').movImm('edx', 0x3fd, 2).inDx(1).testAl(0x01).jz('wait'); // LSR.DR
  a.movImm('edx', 0x3f8, 2).inDx(1).outDx(1);
  a.movImm('edx', 0x604, 2).movImm('eax', 0x2000, 2).outDx(2).cli().hlt();
  const code = a.bytes();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-sock-'));
  try {
    writeFileSync(join(dir, 'micro.bin'), microBios(code));
    writeFileSync(join(dir, 'plan.yaml'), `memory: { size: 16M }\nmachine:\n  firmware: micro.bin\n  timeout: ${limitS(60)}\n`);
    const sockPath = join(dir, 'com1.sock');
    let received = '';
    const server = createServer((c) => {
      c.on('data', (d) => {
        received += d.toString('latin1');
        if (received.includes('hello')) c.write('x');
      });
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    const child = spawn(process.execPath, [CLI, 'run', join(dir, 'plan.yaml'), '--serial', `unix:${sockPath}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const status = await new Promise<number | null>((r) => child.on('exit', r));
    server.close();
    assert.equal(status, 0, stderr);
    assert.match(stderr, /guest powered off/);
    assert.equal(received, 'hello\nx');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});


test('hvmpt run --serial stdout: piped stdin is typed at the guest\'s console', (t) => {
  if (!skipUnlessKvm(t)) return;
  const a = new Asm(16).movImm('edx', 0x3f8, 2);
  for (const ch of new TextEncoder().encode('ready\n')) a.movImm('eax', ch, 1).outDx(1);
  a.label('wait').movImm('edx', 0x3fd, 2).inDx(1).testAl(0x01).jz('wait');
  a.movImm('edx', 0x3f8, 2).inDx(1).outDx(1);
  a.movImm('edx', 0x604, 2).movImm('eax', 0x2000, 2).outDx(2).cli().hlt();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-stdin-'));
  try {
    writeFileSync(join(dir, 'fw.bin'), microBios(a.bytes()));
    writeFileSync(join(dir, 'plan.yaml'), `memory: { size: 16M }\nmachine:\n  firmware: fw.bin\n  timeout: ${limitS(60)}\n`);
    const r = hvmpt(['run', join(dir, 'plan.yaml')], { input: 'q' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ready\nq');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hvmpt run with onReset: restart boots again after each reset, until --timeout stops it (exit 1)', (t) => {
  if (!skipUnlessKvm(t)) return;
  // Firmware that prints "boot" and resets through 0xCF9.
  const a = new Asm(16).movImm('edx', 0x3f8, 2);
  for (const ch of new TextEncoder().encode('boot\n')) a.movImm('eax', ch, 1).outDx(1);
  a.movImm('edx', 0xcf9, 2).movImm('eax', 0x06, 1).outDx(1).cli().hlt();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-reset-'));
  try {
    writeFileSync(join(dir, 'fw.bin'), microBios(a.bytes()));
    writeFileSync(join(dir, 'plan.yaml'), 'memory: { size: 16M }\nmachine:\n  firmware: fw.bin\n  onReset: restart\n');
    const r = hvmpt(['run', join(dir, 'plan.yaml'), '--timeout', String(limitS(3))]);
    assert.equal(r.status, 1);
    const boots = r.stdout.split('boot\n').length - 1;
    assert.ok(boots >= 2, `booted ${boots} times`);
    assert.match(r.stderr, /guest reset \(port 0xcf9 hard reset\); booting again/);
    assert.match(r.stderr, /guest stopped: timeout/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hvmpt run: a log that fails mid-run (/dev/full) is an error naming it, not a crash; the report is still written whole', (t) => {
  if (!skipUnlessKvm(t)) return;
  // Firmware that writes its debug log (port 0x402), prints on COM1 and powers off.
  const a = new Asm(16).movImm('edx', 0x402, 2);
  for (const ch of new TextEncoder().encode('firmware log line\n')) a.movImm('eax', ch, 1).outDx(1);
  a.movImm('edx', 0x3f8, 2).movImm('eax', 0x21, 1).outDx(1);
  a.movImm('edx', 0x604, 2).movImm('eax', 0x2000, 2).outDx(2).cli().hlt();
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-full-'));
  try {
    writeFileSync(join(dir, 'fw.bin'), microBios(a.bytes()));
    writeFileSync(join(dir, 'plan.yaml'), 'memory: { size: 16M }\nmachine:\n  firmware: fw.bin\n  timeout: 60\n');
    const report = join(dir, 'report.json');
    writeFileSync(report, 'the old report');
    const r = hvmpt(['run', join(dir, 'plan.yaml'), '--firmware-log', '/dev/full', '--report', report]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^hvmpt: \/dev\/full: cannot write the firmware log: ENOSPC$/m);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    assert.match(r.stderr, /guest powered off/);
    assert.equal((JSON.parse(readFileSync(report, 'utf8')) as { reason: { kind: string } }).reason.kind, 'poweroff');
    // Nothing of the report's temporary file is left beside it.
    assert.deepEqual(readdirSync(dir).sort(), ['fw.bin', 'plan.yaml', 'report.json']);
    const s = hvmpt(['run', join(dir, 'plan.yaml'), '--serial', '/dev/full']);
    assert.equal(s.status, 1, s.stderr);
    assert.match(s.stderr, /^hvmpt: \/dev\/full: cannot write the serial output: ENOSPC$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
