/**
 * `lguest-ts trace-view TRACE.jsonl [-o FILE.html]`: a `run --trace` file (launcher/trace.ts) as one
 * self-contained HTML page: no network, inline CSS and JavaScript, opens from file:// in any browser.
 *
 * The page draws a timeline per vCPU on a canvas (one lane per event kind, so 100,000+ events cost one
 * mark per pixel column, not one DOM node each), against time or the vCPU's retired instructions; zoom
 * (wheel, buttons, keys), pan (drag, keys), a per-kind filter with counts, hover for a summary and click
 * for an event's every field. The events travel in the page column-wise (t, vcpu, insn, kind, and the
 * remaining fields as one object each); page.ts is the page itself.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.ts';
import { PAGE_CSS, PAGE_SCRIPT } from './page.ts';

/** One line of a trace: the common fields, and the event's own. */
export interface TraceEvent {
  t: number;
  vcpu: number;
  insn: number;
  event: string;
  [field: string]: unknown;
}

/** A trace file's events, checked line by line; anything else is one clear UserError naming the line. */
export function readTrace(file: string): TraceEvent[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`trace-view: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : code ?? (e as Error).message})`);
  }
  const events: TraceEvent[] = [];
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new UserError(`trace-view: ${file}:${lineNo}: not JSON (a trace has one JSON object per line, as run --trace writes)`);
    }
    const e = v as Record<string, unknown>;
    const ok = typeof v === 'object' && v !== null && !Array.isArray(v)
      && typeof e.t === 'number' && Number.isFinite(e.t)
      && Number.isInteger(e.vcpu) && (e.vcpu as number) >= 0 && (e.vcpu as number) < 1024
      && Number.isInteger(e.insn) && (e.insn as number) >= 0
      && typeof e.event === 'string' && e.event !== '';
    if (!ok) throw new UserError(`trace-view: ${file}:${lineNo}: not a trace event (each line needs t, vcpu, insn and event, as run --trace writes)`);
    events.push(e as TraceEvent);
  }
  if (events.length === 0) throw new UserError(`trace-view: ${file}: no events (make one with: lguest-ts run IMAGE --trace all --trace-file ${file})`);
  return events;
}

/** What the page gets: the events column-wise, the kinds in order of first appearance. */
interface PageData {
  title: string;
  kinds: string[];
  t: number[];
  vcpu: number[];
  insn: number[];
  kind: number[];
  fields: Array<Record<string, unknown>>;
}

/** JSON that may sit inside a <script> element: no "</script>", no "<!--", no U+2028/2029 surprises. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The whole page for these events; `title` names the trace (its file name). */
export function renderTraceView(events: TraceEvent[], title: string): string {
  const kinds: string[] = [];
  const kindIndex = new Map<string, number>();
  const data: PageData = { title, kinds, t: [], vcpu: [], insn: [], kind: [], fields: [] };
  for (const e of events) {
    const { t, vcpu, insn, event, ...rest } = e;
    let k = kindIndex.get(event);
    if (k === undefined) { k = kinds.length; kinds.push(event); kindIndex.set(event, k); }
    data.t.push(t); data.vcpu.push(vcpu); data.insn.push(insn); data.kind.push(k); data.fields.push(rest);
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)} · lguest-ts trace</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1>lguest-ts trace <span class="file">${escapeHtml(title)}</span></h1>
  <div id="summary"></div>
</header>
<div id="toolbar">
  <div class="group" role="group" aria-label="x axis">
    <span class="label">x axis</span>
    <button type="button" id="axis-t" class="axis" aria-pressed="true" title="milliseconds since the boot started">time</button>
    <button type="button" id="axis-insn" class="axis" aria-pressed="false" title="each vCPU's retired-instruction count">instructions</button>
  </div>
  <div class="group">
    <button type="button" id="zoom-in" title="zoom in (+, or the mouse wheel)">+</button>
    <button type="button" id="zoom-out" title="zoom out (-)">&minus;</button>
    <button type="button" id="fit" title="show the whole trace (0)">fit</button>
  </div>
  <div id="range"></div>
  <div class="hint">wheel: zoom · drag: pan · click: details · ←/→ after a click: previous/next event of that kind</div>
</div>
<main>
  <aside id="kinds"><h2>Events</h2><ul id="kind-list"></ul>
    <div class="kind-actions"><button type="button" id="kinds-all">all</button><button type="button" id="kinds-none">none</button></div>
  </aside>
  <section id="timeline-wrap">
    <div id="rows"></div>
    <canvas id="timeline" tabindex="0" aria-label="timeline, one row per vCPU"></canvas>
    <div id="tooltip" role="tooltip" hidden></div>
  </section>
</main>
<section id="details"><h2>Event</h2><div id="details-body" class="empty">Click a mark on the timeline to see its event.</div></section>
<script id="trace-data" type="application/json">${scriptJson(data)}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

/** Where the page goes when -o is not given: next to the trace, .jsonl (or .json, .txt, nothing) → .html. */
export function defaultOutput(trace: string): string {
  return trace.replace(/\.(jsonl|ndjson|json|txt|log)$/i, '') + '.html';
}

export function traceTitle(trace: string): string {
  return basename(trace);
}
