import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { formatBdf } from '../../src/hw/pci/address.js';
import { decodeStructures } from '../../src/hw/smbios/index.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';
import { DESKTOP, EVERY_FEATURE, exportIn, P6T6, scratch } from './helpers.js';

/**
 * Xen's own parser is the oracle: libxlutil (Debian libxen-dev), the library `xl` reads its
 * configuration with, called from a small C program built here. `xl -N create` needs a running
 * hypervisor even for a dry run, the library does not. Every `pci=` entry must parse to the
 * planned host BDF, virtual slot and options.
 */

const work = scratch('hvmpt-xen-');

const HARNESS = String.raw`
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <libxlutil.h>

static void str(const char *k, const char *v) {
  printf("\"%s\":\"", k);
  for (const char *p = v; *p; p++) { if (*p == '"' || *p == '\\') putchar('\\'); putchar(*p); }
  printf("\",");
}

int main(int argc, char **argv) {
  FILE *f = fopen(argv[1], "rb");
  static char data[1 << 20];
  int n = (int)fread(data, 1, sizeof data, f);
  fclose(f);
  XLU_Config *cfg = xlu_cfg_init(stderr, argv[1]);
  if (xlu_cfg_readdata(cfg, data, n) != 0) { fprintf(stderr, "xlu_cfg_readdata failed\n"); return 2; }
  printf("{");
  const char *names[] = { "name", "type", "device_model_version", "bios", "bios_override", "vga", "on_reboot", "kernel", "ramdisk", "cmdline", "acpi_firmware", "smbios_firmware", "rdm", 0 };
  for (int i = 0; names[i]; i++) { const char *v; if (xlu_cfg_get_string(cfg, names[i], &v, 1) == 0) str(names[i], v); }
  const char *longs[] = { "memory", "vcpus", "e820_host", "xen_platform_pci", 0 };
  for (int i = 0; longs[i]; i++) { long v; if (xlu_cfg_get_long(cfg, longs[i], &v, 1) == 0) printf("\"%s\":%ld,", longs[i], v); }
  const char *lists[] = { "serial", "device_model_args_hvm", 0 };
  for (int i = 0; lists[i]; i++) {
    XLU_ConfigList *l; int count;
    if (xlu_cfg_get_list(cfg, lists[i], &l, &count, 1) != 0) continue;
    printf("\"%s\":[", lists[i]);
    for (int j = 0; j < count; j++) { printf("%s\"", j ? "," : ""); for (const char *p = xlu_cfg_get_listitem(l, j); *p; p++) { if (*p == '"' || *p == '\\') putchar('\\'); putchar(*p); } printf("\""); }
    printf("],");
  }
  const char *rdm;
  if (xlu_cfg_get_string(cfg, "rdm", &rdm, 1) == 0) {
    libxl_rdm_reserve r; libxl_rdm_reserve_init(&r);
    if (xlu_rdm_parse(cfg, &r, rdm) != 0) { fprintf(stderr, "rdm does not parse\n"); return 3; }
    printf("\"rdmParsed\":{\"strategy\":\"%s\",\"policy\":\"%s\"},", libxl_rdm_reserve_strategy_to_string(r.strategy), libxl_rdm_reserve_policy_to_string(r.policy));
  }
  XLU_ConfigList *pcis; int npci = 0;
  printf("\"pci\":[");
  if (xlu_cfg_get_list(cfg, "pci", &pcis, &npci, 1) == 0) {
    for (int i = 0; i < npci; i++) {
      libxl_device_pci p; libxl_device_pci_init(&p);
      if (xlu_pci_parse_spec_string(cfg, &p, xlu_cfg_get_listitem(pcis, i)) != 0) { fprintf(stderr, "pci entry %d does not parse\n", i); return 4; }
      printf("%s{\"bdf\":\"%04x:%02x:%02x.%x\",\"vdevfn\":%u,\"permissive\":%d,\"seize\":%d,\"msitranslate\":%d,\"power_mgmt\":%d,\"rdm_policy\":\"%s\"}",
        i ? "," : "", p.domain, p.bus, p.dev, p.func, p.vdevfn, p.permissive, p.seize, p.msitranslate, p.power_mgmt, libxl_rdm_reserve_policy_to_string(p.rdm_policy));
    }
  }
  printf("]}\n");
  xlu_cfg_destroy(cfg);
  return 0;
}
`;

interface Parsed {
  readonly [key: string]: unknown;
  readonly pci: Array<{ bdf: string; vdevfn: number; permissive: number; seize: number; msitranslate: number; power_mgmt: number; rdm_policy: string }>;
}

let harness: string | undefined;
function parseWithXen(t: TestContext, name: string, cfg: string): Parsed | undefined {
  if (!skipUnlessCommand(t, 'gcc', 'gcc')) return undefined;
  if (!existsSync('/usr/include/libxlutil.h')) {
    const why = `SKIPPED (no /usr/include/libxlutil.h; install Debian package libxen-dev or run scripts/setup.sh): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return undefined;
  }
  if (harness === undefined) {
    const src = join(work, 'xlparse.c');
    writeFileSync(src, HARNESS);
    const out = join(work, 'xlparse');
    const r = run('gcc', ['-O1', '-o', out, src, '-lxlutil', '-lxenlight']);
    assert.equal(r.status, 0, r.stderr);
    harness = out;
  }
  const file = join(work, `${name}.cfg`);
  writeFileSync(file, cfg);
  const r = run(harness, [file]);
  assert.equal(r.status, 0, `libxlutil refused ${name}: ${r.stderr}`);
  assert.equal(r.stderr, '', `libxlutil warned about ${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Parsed;
}

test('xen: every pci= entry parses with xl\'s own parser to the planned host BDF, virtual slot and options', (t) => {
  const e = exportIn(EVERY_FEATURE, 'xen', { host: P6T6, filesDir: work });
  const parsed = parseWithXen(t, 'every-feature', e.text);
  if (parsed === undefined) return;
  const expected = e.model.passthrough
    .filter((p) => p.placement.behind === undefined)
    .map((p) => ({
      bdf: formatBdf(p.hostBdf!, true),
      // xl's vdevfn: the virtual slot, function 0; none (0) when the plan's function is not 0.
      vdevfn: p.placement.guest.fn === 0 ? p.placement.guest.device << 3 : 0,
      permissive: 1,
      seize: p.placement.entry.use?.allocation === 'dynamic' ? 1 : 0,
      msitranslate: 0,
      power_mgmt: 0,
      rdm_policy: 'strict',
    }));
  assert.deepEqual(parsed.pci, expected);
  assert.deepEqual(parsed.rdmParsed, { strategy: 'host', policy: 'invalid' });
  assert.equal(parsed.type, 'hvm');
  assert.equal(parsed.memory, 256);
  assert.equal(parsed.e820_host, 1);
  assert.equal(parsed.xen_platform_pci, 0);
  assert.equal(parsed.cmdline, 'console=ttyS0 quiet');
  assert.deepEqual(parsed.serial, ['file:serial.log']);
  assert.equal(parsed.acpi_firmware, join(work, 'acpi-firmware.bin'));
  assert.equal(parsed.smbios_firmware, join(work, 'smbios.bin'));
  assert.ok((parsed.device_model_args_hvm as string[]).includes('edu,id=edu,bus=guestbr,addr=00.0'));
});

test('xen: acpi_firmware holds the plan\'s added tables back to back; smbios_firmware each structure after its 32-bit length', () => {
  const e = exportIn(EVERY_FEATURE, 'xen', { host: P6T6, filesDir: work });
  const acpi = e.files.find((f) => f.name === 'acpi-firmware.bin')!.bytes;
  const tables: string[] = [];
  for (let at = 0; at < acpi.length; ) {
    const v = new DataView(acpi.buffer, acpi.byteOffset + at);
    const length = v.getUint32(4, true);
    tables.push(Buffer.from(acpi.subarray(at, at + 4)).toString('latin1'));
    let sum = 0;
    for (const b of acpi.subarray(at, at + length)) sum = (sum + b) & 0xff;
    assert.equal(sum, 0, `table ${tables.length} checksum`);
    at += length;
  }
  assert.deepEqual(tables, e.model.addedTables.map((t) => t.signature));
  const smbios = e.files.find((f) => f.name === 'smbios.bin')!.bytes;
  const v = new DataView(smbios.buffer, smbios.byteOffset);
  const first = v.getUint32(0, true);
  const second = v.getUint32(4 + first, true);
  assert.equal(4 + first + 4 + second, smbios.length);
  const system = decodeStructures(smbios.subarray(4, 4 + first));
  assert.equal(system[0]?.type, 1);
  assert.equal(decodeStructures(smbios.subarray(8 + first))[0]?.type, 3);
});

test('xen: the desktop example parses too, and a broken pci= entry is refused by the same parser (the oracle can fail)', (t) => {
  const e = exportIn(DESKTOP, 'xen', { filesDir: work });
  const parsed = parseWithXen(t, 'desktop', e.text);
  if (parsed === undefined) return;
  assert.deepEqual(parsed.pci, []);
  assert.ok(harness !== undefined);
  const file = join(work, 'broken.cfg');
  writeFileSync(file, readFileSync(join(work, 'every-feature.cfg'), 'utf8').replace('0000:06:00.0@07', '0000:06:00.9@07'));
  assert.notEqual(run(harness, [file]).status, 0);
});
