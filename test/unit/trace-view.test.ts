/**
 * `lguest-ts trace-view` as a user meets it: real traces (`run hello --trace all`, `run smp --cpus 2
 * --trace all`) made into pages, opened from file:// in a real headless browser (Debian's chromium, driven
 * by playwright-core), and checked for what a user sees: one timeline row per vCPU, the per-kind counts
 * equal to the trace's, hovering a mark shows its event and clicking it shows every field (the raw line is
 * the trace's own line), the instruction axis, wheel zoom, the filter hiding a lane, no console errors and
 * no network requests. Bad input to trace-view is one line and exit status 2 (no browser needed).
 *
 * The browser: CHROMIUM (default /usr/bin/chromium); playwright-core is resolved from the repository or
 * NODE_PATH. Outside CI a missing one skips the browser suite; in CI (CI=true) it fails.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../tools/cli.ts';
import { probe, skipUnless } from '../tools/require-tool.ts';

const ROOT = resolve(__dirname, '../..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'lguest-trace-view-'));

// ---------------------------------------------------------------------------------------------------------
describe('trace-view: bad input is one line and exit status 2', () => {
  const notJson = join(tmp, 'not-json.jsonl');
  const notTrace = join(tmp, 'not-trace.jsonl');
  const empty = join(tmp, 'empty.jsonl');
  writeFileSync(notJson, '{"t":1,"vcpu":0,"insn":5,"event":"kick","addr":4096}\nGuest killed: oops\n');
  writeFileSync(notTrace, '{"host":{"hypercalls":{"SET_PTE":3}}}\n');
  writeFileSync(empty, '\n');
  const cases: Array<[string, string[], RegExp]> = [
    ['a missing file', [join(tmp, 'nope.jsonl')], /^lguest-ts: trace-view: cannot read .*nope\.jsonl \(no such file\)$/],
    ['a line that is not JSON', [notJson], /^lguest-ts: trace-view: .*not-json\.jsonl:2: not JSON /],
    ['a JSON file that is not a trace', [notTrace], /^lguest-ts: trace-view: .*not-trace\.jsonl:1: not a trace event \(each line needs t, vcpu, insn and event/],
    ['a file with no events', [empty], /^lguest-ts: trace-view: .*empty\.jsonl: no events /],
  ];
  for (const [what, args, want] of cases) {
    it(what, async () => {
      const r = await cli('trace-view', ...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toMatch(want);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }
  it('an output that cannot be written (the trace is fine)', async () => {
    const ok = join(tmp, 'ok.jsonl');
    writeFileSync(ok, '{"t":1,"vcpu":0,"insn":5,"event":"kick","addr":4096}\n');
    const r = await cli('trace-view', ok, '-o', join(tmp, 'no/such/dir.html'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^lguest-ts: trace-view: cannot write .*dir\.html \(ENOENT\)$/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// playwright-core is typed loosely here, so type-checking does not need it installed
/* eslint-disable @typescript-eslint/no-explicit-any */
type Browser = any;
function loadPlaywright(): any {
  const req = createRequire(join(ROOT, 'package.json'));
  try {
    return req(req.resolve('playwright-core', { paths: [ROOT, ...(process.env.NODE_PATH ?? '').split(':').filter(Boolean)] }));
  } catch {
    return null;
  }
}
const pw = loadPlaywright();
const missing = !existsSync(CHROMIUM) ? `chromium is not available (${CHROMIUM})`
  : probe(CHROMIUM, ['--headless', '--no-sandbox', '--version'], 'chromium')
  ?? (pw === null ? 'playwright-core is not installed (npm install --save-dev playwright-core)' : null);

interface Ev { t: number; vcpu: number; insn: number; event: string; line: string; [k: string]: unknown }
function readEvents(file: string): Ev[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((line) => ({ ...JSON.parse(line), line }));
}

describe.skipIf(skipUnless('trace-view in a browser', missing, 'apt-get install chromium; npm install playwright-core'))('trace-view in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await pw!.chromium.launchPersistentContext(mkdtempSync(join(tmp, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1400, height: 900 },
      timeout: 30_000,
    });
  }, 60_000);
  afterAll(async () => { await browser?.close(); });

  const traces: Array<[string, string[], number]> = [
    ['hello', ['run', 'hello', '--trace', 'all'], 1],
    ['smp', ['run', 'smp', '--cpus', '2', '--trace', 'all'], 2],
  ];
  it('120,000 events on 4 vCPUs: the page opens, counts them all, and a click still finds its event', async () => {
    const trace = join(tmp, 'big.jsonl'), html = join(tmp, 'big.html');
    const kinds = ['hypercall', 'trap', 'pagefault', 'switch', 'console', 'frobnicate'];
    const lines: string[] = [];
    for (let i = 0; i < 120_000; i++) {
      const kind = kinds[i % 7 === 0 ? 5 : i % 5];
      lines.push(JSON.stringify({ t: i * 0.01, vcpu: i % 4, insn: i * 25, event: kind, n: i, ...(kind === 'console' ? { bytes: 1, text: 'x' } : {}) }));
    }
    // one lonely event far after the rest, so it stands alone in its lane
    lines.push(JSON.stringify({ t: 5000, vcpu: 3, insn: 9_000_000, event: 'kick', addr: 0x1234 }));
    writeFileSync(trace, lines.join('\n') + '\n');
    const made = await cli('trace-view', trace, '-o', html);
    expect(made.status, made.stderr).toBe(0);
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    const problems: string[] = [];
    page.on('pageerror', (e: Error) => problems.push(e.message));
    await page.goto('file://' + html);
    expect(await page.locator('.vcpu-row').count()).toBe(4);
    const total = await page.$$eval('#kind-list .count', (cs: Element[]) => cs.reduce((a, c) => a + Number(c.textContent!.replace(/,/g, '')), 0));
    expect(total).toBe(lines.length);
    expect(await page.locator('#kind-list li[data-kind="frobnicate"] .count').innerText()).toBe((120_000 / 7 + 1 | 0).toLocaleString('en-US'));
    const p = await page.evaluate((k: number) => (window as any).traceView.markPosition(k), lines.length - 1);
    await page.mouse.click(p.x, p.y);
    expect(await page.locator('#details-body pre').innerText()).toBe(lines.at(-1));
    expect(problems).toEqual([]);
    await page.close();
  });

  for (const [name, run, cpus] of traces) {
    it(`${run.join(' ')}: a row per vCPU, the trace's counts, hover and click details, both axes, zoom, filter`, async () => {
      const trace = join(tmp, `${name}.jsonl`), html = join(tmp, `${name}.html`);
      const r = await cli(...run, '--trace-file', trace, '--timeout', '30');
      expect(r.status, r.stderr).toBe(0);
      const made = await cli('trace-view', trace, '-o', html);
      expect(made.status, made.stderr).toBe(0);
      const events = readEvents(trace);
      expect(made.stdout).toBe(`${html}: ${events.length} events, ${cpus} vCPU${cpus === 1 ? '' : 's'}\n`);

      const page = await browser.newPage();
      page.setDefaultTimeout(15_000);
      const problems: string[] = [];
      page.on('console', (m: any) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e: Error) => problems.push(`page error: ${e.message}`));
      page.on('request', (q: any) => { if (!q.url().startsWith('file://')) problems.push(`network request: ${q.url()}`); });
      await page.goto('file://' + html);

      // one row per vCPU, labelled, with its number of events
      const rows = page.locator('.vcpu-row');
      expect(await rows.count()).toBe(cpus);
      for (let v = 0; v < cpus; v++) {
        const n = events.filter((e) => e.vcpu === v).length;
        expect(await rows.nth(v).innerText()).toMatch(new RegExp(`^vCPU ${v}\\s+${n.toLocaleString('en-US')} events$`));
      }
      // the per-kind counts are the trace's
      const want = new Map<string, number>();
      for (const e of events) want.set(e.event, (want.get(e.event) ?? 0) + 1);
      const shown = await page.$$eval('#kind-list li', (lis: Element[]) => lis.map((li) => [li.getAttribute('data-kind'), li.querySelector('.count')!.textContent]));
      expect(new Map((shown as string[][]).map(([k, c]) => [k!, Number(c!.replace(/,/g, ''))]))).toEqual(want);
      expect(await page.locator('#summary').innerText()).toContain(`${events.length.toLocaleString('en-US')} events · ${cpus} vCPU`);

      // an event whose mark stands alone (no other mark of its lane within 12 px), of a rare kind
      async function isolated(): Promise<number> {
        const kinds = [...want.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
        for (const kind of kinds) {
          const idx = events.map((e, i) => (e.event === kind ? i : -1)).filter((i) => i >= 0);
          const pos = await page.evaluate((ix: number[]) => ix.map((i) => (window as any).traceView.markPosition(i)), idx);
          for (let j = 0; j < idx.length; j++) {
            if (!pos[j]) continue;
            const clear = idx.every((o, m) => m === j || events[o].vcpu !== events[idx[j]].vcpu || !pos[m] || Math.abs(pos[m].x - pos[j].x) >= 12);
            if (clear) return idx[j];
          }
        }
        throw new Error('no isolated mark in this trace');
      }
      async function hoverAndClick(i: number): Promise<void> {
        const e = events[i];
        const p = await page.evaluate((k: number) => (window as any).traceView.markPosition(k), i);
        expect(p, `event ${i} has a mark`).not.toBeNull();
        await page.mouse.move(p.x, p.y);
        const tip = page.locator('#tooltip');
        await expect.poll(() => tip.isVisible()).toBe(true);
        const tipText = await tip.innerText();
        expect(tipText).toContain(`vCPU ${e.vcpu}`);
        expect(tipText).toContain(`insn ${e.insn.toLocaleString('en-US')}`);
        await page.mouse.click(p.x, p.y);
        const details = page.locator('#details-body');
        // the raw line shown is the trace's own line, byte for byte
        expect(await details.locator('pre').innerText()).toBe(e.line);
        const table = await details.locator('table').innerText();
        expect(table).toMatch(new RegExp(`event\\s+${e.event}`));
        expect(table).toMatch(new RegExp(`vcpu\\s+${e.vcpu}`));
        for (const k of Object.keys(e)) if (!['t', 'vcpu', 'insn', 'event', 'line'].includes(k)) expect(table).toContain(k);
        expect(await details.locator('.what').innerText()).toBe(tipText.split('\n')[0]);
      }

      const first = await isolated();
      await hoverAndClick(first);

      // the instruction axis: the same checks along retired instructions
      await page.click('#axis-insn');
      expect(await page.getAttribute('#axis-insn', 'aria-pressed')).toBe('true');
      expect(await page.locator('#range').innerText()).toMatch(/ insn /);
      await hoverAndClick(await isolated());

      // the wheel zooms in around the pointer
      const before = await page.evaluate(() => (window as any).traceView.view());
      const box = (await page.locator('#timeline').boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + 60);
      await page.mouse.wheel(0, -600);
      await expect.poll(async () => (await page.evaluate(() => (window as any).traceView.view())).hi - (await page.evaluate(() => (window as any).traceView.view())).lo)
        .toBeLessThan((before.hi - before.lo) / 2);
      await page.click('#fit');

      // the filter: unchecking a kind takes its lane away (its marks have no place any more), counts stay
      const kind = events[first].event;
      await page.locator(`#kind-list input[data-kind="${kind}"]`).uncheck();
      expect(await page.evaluate((k: number) => (window as any).traceView.markPosition(k), first)).toBeNull();
      expect(await page.locator(`#kind-list li[data-kind="${kind}"] .count`).innerText()).toBe(want.get(kind)!.toLocaleString('en-US'));
      await page.locator(`#kind-list input[data-kind="${kind}"]`).check();
      expect(await page.evaluate((k: number) => (window as any).traceView.markPosition(k), first)).not.toBeNull();

      await page.screenshot({ path: join(tmp, `${name}.png`), fullPage: true });
      expect(problems).toEqual([]);
      await page.close();
    });
  }
});
