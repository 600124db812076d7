/**
 * The report in the browser it is written for: headless Chromium (Debian chromium) driven by
 * playwright-core, with a fresh profile and no network. The page must load with no console
 * error and no request beyond itself, draw one tree node per function (hidden and passed-through
 * ones included) and a hidden function as hidden (dashed outline), and list every interrupt
 * route the composed bus has. A screenshot goes to docs/report.png when HVMPT_UPDATE_DOCS=1.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { resolvePlatformInputs } from '../../src/host/plan/inputs.js';
import { composeMachine } from '../../src/platform/compose.js';
import { readHostFacts } from '../../src/host/pci/host-facts.js';
import { loadPlan } from '../../src/plan/schema.js';
import { passthroughInfo, platformFunctions } from '../../src/platform/functions.js';
import { renderReport } from '../../src/report/html.js';
import { runRecordSchema } from '../../src/report/run-record.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { hvmpt } from '../helpers/run.js';
import { DESKTOP, EVERY_FEATURE, P6T6 } from '../export/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const work = mkdtempSync(join(tmpdir(), 'hvmpt-report-'));
let browser: BrowserContext | undefined;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  browser = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

function haveChromium(t: TestContext): BrowserContext | undefined {
  if (browser !== undefined) return browser;
  const why = `SKIPPED (no ${CHROMIUM}; install Debian package chromium or run scripts/setup.sh): ${t.name}`;
  process.stdout.write(why + '\n');
  t.skip(why);
  return undefined;
}

interface Loaded {
  readonly errors: string[];
  readonly requests: string[];
  readonly page: Awaited<ReturnType<BrowserContext['newPage']>>;
}

async function load(ctx: BrowserContext, file: string): Promise<Loaded> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.setViewportSize({ width: 1300, height: 900 });
  // A loaded CI machine can take a while to start the first page; a minute or two is no failure.
  await page.goto(`file://${file}`, { waitUntil: 'load', timeout: 180_000 });
  return { errors, requests, page };
}

/** The computed stroke-dasharray of an element, read in the page (this test is compiled without the DOM library). */
function dashes(l: ReturnType<Loaded['page']['locator']>): Promise<string> {
  return l.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { strokeDasharray: string } }).getComputedStyle(el).strokeDasharray);
}

function reportOf(planFile: string, hostPath?: string): { html: string; functions: number; hiddenIds: string[] } {
  const plan = loadPlan(planFile);
  const host = hostPath === undefined ? undefined : readHostFacts(hostPath);
  const inputs = resolvePlatformInputs(plan, planFile, host === undefined ? {} : { host });
  const composed = composeMachine(plan, inputs);
  const functions = platformFunctions(composed.pci, passthroughInfo(plan, inputs));
  const html = renderReport({ plan, planFile, composed, inputs, ...(host === undefined ? {} : { host }) });
  return { html, functions: functions.length, hiddenIds: functions.filter((f) => f.hidden).map((f) => f.id) };
}

test('report: the desktop plan\'s page loads with no console error and no request, one tree node per function, the hidden SMBus drawn hidden', async (t) => {
  const ctx = haveChromium(t);
  if (ctx === undefined) return;
  const r = reportOf(DESKTOP);
  const file = join(work, 'desktop.html');
  writeFileSync(file, r.html);
  const { errors, requests, page } = await load(ctx, file);
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, [`file://${file}`]);
  assert.equal(await page.locator('svg.pcitree g.fn').count(), r.functions);
  assert.deepEqual(r.hiddenIds, ['00:1f.3']);
  const hidden = page.locator('svg.pcitree g.fn[data-hidden="true"]');
  assert.equal(await hidden.count(), 1);
  assert.equal(await hidden.getAttribute('data-id'), '00:1f.3');
  // Drawn as hidden: a dashed outline, where visible functions have a solid one.
  assert.notEqual(await dashes(hidden.locator('rect')), 'none');
  assert.equal(await dashes(page.locator('svg.pcitree g.fn[data-id="nic"] rect')), 'none');
  assert.match(await hidden.locator('text.badge').textContent() ?? '', /hidden/);
  // Memory: the identity region, the carve and the ECAM window are drawn.
  for (const kind of ['identity', 'carve', 'ecam', 'window', 'bar']) assert.ok((await page.locator(`svg.memmap g.region[data-kind="${kind}"]`).count()) > 0, kind);
  // Interrupts: nic at 00:03.0 INTA is PIIX3's PIRQC (slot 3 INTA) on GSI 11, as the DSDT's _PRT says.
  const nicRow = await page.locator('#interrupts + p + table tr', { hasText: 'nic' }).innerText();
  assert.match(nicRow, /00:03\.0\s+INTA\s+PIRQC\s+\\_SB\.LNKC\s+11/);
  const png = process.env.HVMPT_UPDATE_DOCS === '1' ? join(REPO_ROOT, 'docs', 'report.png') : join(work, 'report.png');
  await page.screenshot({ path: png, fullPage: true });
  assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  await page.close();
});

test('report: the every-feature plan, with the host\'s facts: pass-through nodes with back-end and host function, a hidden capture function, no errors', async (t) => {
  const ctx = haveChromium(t);
  if (ctx === undefined) return;
  const r = reportOf(EVERY_FEATURE, P6T6);
  const file = join(work, 'every-feature.html');
  writeFileSync(file, r.html);
  const { errors, requests, page } = await load(ctx, file);
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, [`file://${file}`]);
  assert.equal(await page.locator('svg.pcitree g.fn').count(), r.functions);
  assert.equal(await page.locator('svg.pcitree g.fn[data-kind="passthrough"]').count(), 5);
  const gpu = await page.locator('svg.pcitree g.fn[data-id="gpu"]').textContent();
  assert.match(gpu ?? '', /back-end vfio/);
  assert.match(gpu ?? '', /host 0000:06:00\.0 10de:0a65/);
  // The ID override is what the guest sees; the host's own IDs stay on the back-end line.
  const usb = await page.locator('svg.pcitree g.fn[data-id="usb"]').textContent();
  assert.match(usb ?? '', /8086:3a37 class 0c0300 .* subsystem 1af4:1100/);
  assert.equal(await page.locator('svg.pcitree g.fn[data-id="00:1f.3"]').getAttribute('data-hidden'), 'true');
  await page.close();
});

test('hvmpt report: a run record that is not one is refused with its file and field (exit 1)', () => {
  const bad = join(work, 'bad-run.json');
  writeFileSync(bad, JSON.stringify({ reason: 'poweroff' }));
  const r = hvmpt(['report', DESKTOP, '--run', bad, '--out', join(work, 'x.html')]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bad-run\.json: reason: /);
});

test('report: a run record\'s IOMMU faults (what hvmpt run --report writes for a passed-through device\'s blocked DMA) are listed in the run section', () => {
  const plan = loadPlan(DESKTOP);
  const inputs = resolvePlatformInputs(plan, DESKTOP);
  const composed = composeMachine(plan, inputs);
  const run = runRecordSchema.parse({ reason: { kind: 'poweroff' }, iommuFaults: [{ device: '0000:00:03.0', access: 'write', address: '0x30000000', reason: 'PTE Write access is not set' }] });
  const html = renderReport({ plan, planFile: DESKTOP, composed, inputs, run });
  assert.match(html, /<h3>IOMMU faults of passed-through devices<\/h3><table>.*<td class="mono">0000:00:03\.0<\/td><td>write<\/td><td class="mono">0x30000000<\/td><td>PTE Write access is not set<\/td>/);
  assert.equal(runRecordSchema.parse({ reason: { kind: 'poweroff' } }).iommuFaults.length, 0, 'a record from before the field reads as none');
});

test('hvmpt report <collection>: the plan hvmpt plan --from writes for it, every function\'s findings from its analysis, in a page that loads with no error', async (t) => {
  const ctx = haveChromium(t);
  if (ctx === undefined) return;
  const archive = join(work, 'me.tar');
  const c = hvmpt(['collect', '--out', archive]);
  assert.equal(c.status, 0, c.stderr);
  const html = join(work, 'collection.html');
  const r = hvmpt(['report', archive, '--out', html]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /the plan hvmpt plan --from .*me\.tar writes, \d+ devices passed/);
  // The same plan, written by hvmpt plan, composes to the same bus the page draws.
  const plan = join(work, 'from-me.yaml');
  const p = hvmpt(['plan', '--from', archive, '--out', plan]);
  assert.equal(p.status, 0, p.stderr);
  const expected = reportOf(plan, archive);
  const { errors, requests, page } = await load(ctx, html);
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, [`file://${html}`]);
  assert.equal(await page.locator('svg.pcitree g.fn').count(), expected.functions);
  // Every function's facts that rule it out, warn or need a host change, for the layout the plan has.
  const a = hvmpt(['analyze', archive, '--json']);
  assert.equal(a.status, 0, a.stderr);
  const analysis = JSON.parse(a.stdout) as { devices: Array<{ device: string; common: Fact[]; iommu: { facts: Fact[] }; identity: { facts: Fact[] } }> };
  const verdict = loadPlan(plan).memory.layout === 'identity' ? 'identity' : 'iommu';
  const items = await page.locator('#readiness ~ ul li, #readiness ~ h3 + ul li').allInnerTexts();
  const text = items.join('\n');
  let count = 0;
  for (const d of analysis.devices) {
    for (const f of [...d.common, ...d[verdict].facts].filter((x) => ['block', 'warn', 'change'].includes(x.level))) {
      count++;
      assert.ok(text.includes(`${d.device}: `) && text.includes(f.text), `${d.device}: ${f.text}`);
    }
  }
  assert.ok(count > 0, 'this machine\'s collection has findings to show');
  // A collection is the host already.
  const both = hvmpt(['report', archive, '--host', archive, '--out', join(work, 'y.html')]);
  assert.equal(both.status, 2, both.stderr);
  assert.match(both.stderr, /is a collection: it is the host already \(drop --host\)/);
  await page.close();
});

interface Fact {
  readonly level: string;
  readonly text: string;
}
