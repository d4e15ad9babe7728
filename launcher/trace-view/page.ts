/**
 * The trace-view page's own CSS and JavaScript (plain ES2017 for any browser, no libraries), inlined by
 * index.ts. The script reads the events from the #trace-data element and draws on one canvas:
 *
 * - rows: one per vCPU (a DOM label, `.vcpu-row`), inside it one lane per event kind that is shown;
 * - marks: per lane, the events sorted by the current axis (time or instructions); drawing walks the
 *   visible range and jumps with a binary search to the next pixel column, so a frame costs about
 *   lanes × width steps however many events there are; labels (or ×N for a pixel column holding N
 *   events) appear where there is room for them;
 * - hit testing: the same binary search, nearest mark within a few pixels.
 *
 * `window.traceView` answers where an event's mark is and what is shown (for tests and for the curious);
 * everything a user does goes through the mouse and keyboard handlers like any other page.
 */

export const PAGE_CSS = String.raw`
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--fg);
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 12px 16px 6px; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap;
  align-items: baseline; gap: 4px 16px; }
h1 { font-size: 17px; margin: 0; font-weight: 600; }
h1 .file { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 400; color: var(--muted); margin-left: 6px; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
#summary { color: var(--muted); }
#toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 18px; padding: 8px 16px;
  border-bottom: 1px solid var(--line); background: var(--panel); }
#toolbar .group { display: flex; align-items: center; gap: 4px; }
#toolbar .label { color: var(--muted); margin-right: 4px; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff;
  color: var(--fg); cursor: pointer; }
button:hover { border-color: #8c959f; }
button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: #fff; }
#range { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.hint { color: var(--muted); font-size: 12px; margin-left: auto; }
main { display: flex; align-items: stretch; }
#kinds { flex: 0 0 210px; padding: 12px 14px; border-right: 1px solid var(--line); }
#kind-list { list-style: none; margin: 0; padding: 0; }
#kind-list li label { display: flex; align-items: center; gap: 7px; padding: 3px 2px; cursor: pointer; border-radius: 4px; }
#kind-list li label:hover { background: var(--panel); }
#kind-list .swatch { width: 11px; height: 11px; border-radius: 3px; flex: none; }
#kind-list .name { flex: 1; }
#kind-list .count { font-variant-numeric: tabular-nums; color: var(--muted); }
#kind-list li.off .name, #kind-list li.off .count { opacity: .45; }
.kind-actions { margin-top: 8px; display: flex; gap: 6px; }
.kind-actions button { padding: 1px 8px; font-size: 12px; }
#timeline-wrap { position: relative; flex: 1; min-width: 0; }
#timeline { display: block; width: 100%; cursor: crosshair; outline: none; }
#timeline.dragging { cursor: grabbing; }
#rows { position: absolute; left: 0; top: 0; width: 0; pointer-events: none; }
.vcpu-row { position: absolute; left: 10px; white-space: nowrap; line-height: 18px; }
.vcpu-row b { font-size: 13px; }
.vcpu-row span { color: var(--muted); font-size: 11px; margin-left: 2px; }
#tooltip { position: absolute; pointer-events: none; background: #1f2328; color: #fff; padding: 6px 9px;
  border-radius: 6px; font-size: 12px; max-width: 420px; box-shadow: 0 4px 14px rgba(0,0,0,.25); z-index: 2; }
#tooltip .sub { color: #c9d1d9; font-size: 11px; }
#details { padding: 12px 16px 24px; border-top: 1px solid var(--line); }
#details-body.empty { color: var(--muted); }
#details .head { display: flex; align-items: center; gap: 10px; margin-bottom: 8px; }
#details .head .what { font-weight: 600; font-size: 14px; }
#details table { border-collapse: collapse; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
#details td { padding: 2px 16px 2px 0; vertical-align: top; }
#details td:first-child { color: var(--muted); }
#details pre { background: var(--panel); padding: 8px 10px; border-radius: 6px; overflow-x: auto; font-size: 12px; margin: 10px 0 0; }
`;

export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('trace-data').textContent);
  var N = D.t.length;
  var T = Float64Array.from(D.t), I = Float64Array.from(D.insn);
  var V = Int32Array.from(D.vcpu), K = Uint16Array.from(D.kind), F = D.fields;
  var KIND_NAMES = D.kinds;
  var COLORS = { hypercall: '#3b6fd8', trap: '#d9423a', pagefault: '#ef8a17', interrupt: '#2f9e44', ipi: '#9b4dca',
    shootdown: '#8d6e63', kick: '#d4a20b', console: '#0f9d9a', 'switch': '#9aa3ad', insn: '#495057' };
  var EXTRA = ['#e64980', '#1c7ed6', '#5c940d', '#ae3ec9', '#f76707', '#0b7285', '#862e9c', '#364fc7'];
  var ORDER = ['hypercall', 'trap', 'pagefault', 'interrupt', 'ipi', 'shootdown', 'kick', 'console', 'switch', 'insn'];
  var GUTTER = 132, AXIS_H = 28, ROW_HEAD = 22, LANE_H = 17, ROW_GAP = 10, RIGHT_PAD = 14, HIT_PX = 5;

  // kinds in a fixed order (known ones first), with colours and counts
  var kinds = KIND_NAMES.map(function (name, k) { return k; });
  kinds.sort(function (a, b) {
    var oa = ORDER.indexOf(KIND_NAMES[a]), ob = ORDER.indexOf(KIND_NAMES[b]);
    if (oa < 0) oa = 100; if (ob < 0) ob = 100;
    return oa !== ob ? oa - ob : (KIND_NAMES[a] < KIND_NAMES[b] ? -1 : 1);
  });
  var color = KIND_NAMES.map(function (name, k) { return COLORS[name] || EXTRA[k % EXTRA.length]; });
  var on = KIND_NAMES.map(function () { return true; });
  var counts = KIND_NAMES.map(function () { return 0; });
  var vcpuSet = {};
  for (var i = 0; i < N; i++) { counts[K[i]]++; vcpuSet[V[i]] = true; }
  var vcpus = Object.keys(vcpuSet).map(Number).sort(function (a, b) { return a - b; });
  var vpos = {}; vcpus.forEach(function (v, p) { vpos[v] = p; });
  var NK = KIND_NAMES.length;

  // one index array per (vCPU, kind), sorted by time and by instructions
  var lists = [];
  for (var j = 0; j < vcpus.length * NK; j++) lists.push([]);
  for (i = 0; i < N; i++) lists[vpos[V[i]] * NK + K[i]].push(i);
  function sortedBy(X) {
    return lists.map(function (l) {
      var a = Int32Array.from(l);
      var sorted = true;
      for (var q = 1; q < a.length; q++) if (X[a[q]] < X[a[q - 1]]) { sorted = false; break; }
      if (!sorted) a.sort(function (p, r) { return X[p] - X[r] || p - r; });
      return a;
    });
  }
  var byAxis = { t: sortedBy(T), insn: sortedBy(I) };
  var vcpuCounts = vcpus.map(function (v) { var c = 0; for (var k = 0; k < NK; k++) c += lists[vpos[v] * NK + k].length; return c; });
  lists = null;

  function extent(X) {
    var lo = Infinity, hi = -Infinity;
    for (var q = 0; q < N; q++) { if (X[q] < lo) lo = X[q]; if (X[q] > hi) hi = X[q]; }
    if (hi - lo < (X === T ? 0.01 : 10)) { hi = lo + (X === T ? 0.01 : 10); }
    var pad = (hi - lo) * 0.01;
    // no padding below 0 when nothing is negative (retired counts start at 0)
    return { lo: lo >= 0 ? Math.max(0, lo - pad) : lo - pad, hi: hi + pad };
  }
  var full = { t: extent(T), insn: extent(I) };
  var MIN_SPAN = { t: 0.002, insn: 8 };

  var state = { axis: 't', lo: full.t.lo, hi: full.t.hi, selected: -1, hover: -1 };
  var views = { t: { lo: full.t.lo, hi: full.t.hi }, insn: { lo: full.insn.lo, hi: full.insn.hi } };
  function X() { return state.axis === 't' ? T : I; }

  var canvas = document.getElementById('timeline');
  var ctx = canvas.getContext('2d');
  var wrap = document.getElementById('timeline-wrap');
  var rowsEl = document.getElementById('rows');
  var tooltip = document.getElementById('tooltip');
  var W = 0, H = 0, rows = [];

  // ---- formatting
  function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
  function hex(n) { return '0x' + (n >>> 0).toString(16); }
  function fmtMs(v) { return v.toLocaleString('en-US', { maximumFractionDigits: 3 }) + ' ms'; }
  function fmtAxisValue(v, step) {
    if (state.axis === 't') {
      var unit = step >= 1000 ? 1000 : step >= 1 ? 1 : 0.001, name = unit === 1000 ? ' s' : unit === 1 ? ' ms' : ' \u00b5s';
      var d = Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
      return (v / unit).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) + name;
    }
    var u = step >= 1e9 ? 1e9 : step >= 1e6 ? 1e6 : step >= 1e3 ? 1e3 : 1, s = u === 1e9 ? 'G' : u === 1e6 ? 'M' : u === 1e3 ? 'k' : '';
    var dd = Math.max(0, Math.ceil(-Math.log10(step / u) - 1e-9));
    return (v / u).toLocaleString('en-US', { minimumFractionDigits: dd, maximumFractionDigits: dd }) + s;
  }
  function fmtSpan(lo, hi) {
    if (state.axis === 't') return fmtMs(lo) + ' \u2013 ' + fmtMs(hi) + '  (' + fmtMs(hi - lo) + ')';
    return fmtInt(lo) + ' \u2013 ' + fmtInt(hi) + ' insn  (' + fmtInt(hi - lo) + ')';
  }
  function describe(i) {
    var f = F[i], name = KIND_NAMES[K[i]];
    switch (name) {
      case 'hypercall': return 'hypercall ' + f.name + '(' + (f.args || []).map(hex).join(', ') + ')' +
        (f.sync === false ? ' [async ring]' : '') + (f.result !== undefined ? ' \u2192 ' + (typeof f.result === 'number' ? hex(f.result) : f.result) : '');
      case 'trap': return 'trap ' + f.vector + ' err ' + hex(f.errcode) + ' at ' + hex(f.eip) + ': ' + f.fate;
      case 'pagefault': return 'page fault at ' + hex(f.addr) + ' err ' + hex(f.errcode) + ' eip ' + hex(f.eip) + ': ' + f.fate;
      case 'interrupt': return 'interrupt IRQ ' + f.irq + ' (vector ' + f.vector + ') delivered';
      case 'ipi': return 'IPI IRQ ' + f.irq + ' to vCPU ' + f.target;
      case 'switch': return 'switch ' + f.dir + (f.trap !== undefined ? ' (trap ' + f.trap + ')' : '');
      case 'kick': return 'device kick at ' + hex(f.addr);
      case 'console': return 'console ' + f.bytes + ' bytes: ' + JSON.stringify(f.text);
      case 'shootdown': return 'TLB shootdown';
      case 'insn': return hex(f.eip) + ': ' + (f.asm || '') + (f.faulted ? ' (faulted)' : '');
    }
    var parts = Object.keys(f).map(function (key) { return key + '=' + JSON.stringify(f[key]); });
    return name + (parts.length ? ' ' + parts.join(' ') : '');
  }
  /** A short label drawn next to a mark when there is room. */
  function label(i) {
    var f = F[i];
    switch (KIND_NAMES[K[i]]) {
      case 'hypercall': return String(f.name);
      case 'trap': return 'trap ' + f.vector;
      case 'pagefault': return hex(f.addr);
      case 'interrupt': return 'IRQ ' + f.irq;
      case 'ipi': return '\u2192 vCPU ' + f.target;
      case 'console': return String(f.text).replace(/\n/g, '\u23ce');
      case 'kick': return hex(f.addr);
      case 'switch': return f.dir;
      case 'insn': return String(f.asm || hex(f.eip));
    }
    return '';
  }

  // ---- geometry
  function plotW() { return Math.max(10, W - GUTTER - RIGHT_PAD); }
  function xOf(v) { return GUTTER + (v - state.lo) / (state.hi - state.lo) * plotW(); }
  function valAt(px) { return state.lo + (px - GUTTER) / plotW() * (state.hi - state.lo); }
  function lowerBound(arr, Xa, v, from) {
    var a = from || 0, b = arr.length;
    while (a < b) { var m = (a + b) >> 1; if (Xa[arr[m]] < v) a = m + 1; else b = m; }
    return a;
  }

  function layout() {
    W = wrap.clientWidth || 800;
    var y = AXIS_H + 6;
    rows = vcpus.map(function (v) {
      var row = { vcpu: v, top: y, lanes: [] };
      y += ROW_HEAD;
      kinds.forEach(function (k) { if (on[k] && counts[k] > 0) { row.lanes.push({ kind: k, y: y }); y += LANE_H; } });
      if (row.lanes.length === 0) y += LANE_H;
      row.bottom = y;
      y += ROW_GAP;
      return row;
    });
    H = y + 4;
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.height = H + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    rowsEl.innerHTML = '';
    rows.forEach(function (row, p) {
      var d = document.createElement('div');
      d.className = 'vcpu-row'; d.setAttribute('data-vcpu', String(row.vcpu));
      d.style.top = (row.top + 2) + 'px';
      var b = document.createElement('b'); b.textContent = 'vCPU ' + row.vcpu;
      var s = document.createElement('span'); s.textContent = fmtInt(vcpuCounts[p]) + ' events';
      d.appendChild(b); d.appendChild(document.createTextNode(' ')); d.appendChild(s); rowsEl.appendChild(d);
    });
  }

  var pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } }

  function draw() {
    ctx.clearRect(0, 0, W, H);
    ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
    ctx.textBaseline = 'middle';
    var Xa = X(), pw = plotW(), span = state.hi - state.lo;
    // rows' backgrounds and lane names
    rows.forEach(function (row, p) {
      ctx.fillStyle = p % 2 ? '#fbfbfc' : '#f4f6f8';
      ctx.fillRect(0, row.top, W, row.bottom - row.top + 4);
      row.lanes.forEach(function (lane) {
        ctx.fillStyle = color[lane.kind];
        ctx.fillRect(16, lane.y + LANE_H / 2 - 4, 8, 8);
        ctx.fillStyle = '#57606a';
        ctx.textAlign = 'left';
        ctx.fillText(KIND_NAMES[lane.kind], 30, lane.y + LANE_H / 2);
        ctx.fillStyle = 'rgba(208,215,222,.55)';
        ctx.fillRect(GUTTER, lane.y + LANE_H - 0.5, pw, 1);
      });
    });
    // axis: ticks and grid
    var step = niceStep(span / Math.max(1, pw / 110));
    ctx.textAlign = 'center';
    for (var v = Math.ceil(state.lo / step) * step; v <= state.hi; v += step) {
      var x = Math.round(xOf(v)) + 0.5;
      ctx.fillStyle = 'rgba(140,149,159,.28)'; ctx.fillRect(x - 0.5, AXIS_H, 1, H - AXIS_H);
      var tick = fmtAxisValue(Math.abs(v) < step * 1e-6 ? 0 : v, step), tw = ctx.measureText(tick).width;
      ctx.fillStyle = '#57606a'; ctx.fillText(tick, Math.min(x, W - 4 - tw / 2), AXIS_H / 2);
    }
    ctx.fillStyle = '#d0d7de'; ctx.fillRect(GUTTER, AXIS_H, pw, 1);
    ctx.textAlign = 'left';
    ctx.fillStyle = '#8c959f'; ctx.fillText(state.axis === 't' ? 'ms since boot' : 'retired insn', 10, AXIS_H / 2);
    // marks
    ctx.save();
    ctx.beginPath(); ctx.rect(GUTTER - 2, AXIS_H, pw + 4, H - AXIS_H); ctx.clip();
    var perPx = span / pw;
    rows.forEach(function (row) {
      var p = vpos[row.vcpu];
      row.lanes.forEach(function (lane) {
        var arr = byAxis[state.axis][p * NK + lane.kind];
        var y0 = lane.y + 3, h = LANE_H - 6;
        ctx.fillStyle = color[lane.kind];
        var q = lowerBound(arr, Xa, state.lo - perPx * 2, 0);
        while (q < arr.length) {
          var val = Xa[arr[q]];
          if (val > state.hi + perPx * 2) break;
          var px = xOf(val), col = Math.floor(px);
          var next = lowerBound(arr, Xa, valAt(col + 1), q + 1);
          // more than one event in this pixel column: a taller, solid mark
          var many = next - q > 1;
          ctx.fillRect(col - 1, many ? y0 - 1 : y0, 2, many ? h + 2 : h);
          if (next < arr.length) {
            var room = xOf(Xa[arr[next]]) - px - 8;
            if (room > 28) {
              var text = many ? '\u00d7' + fmtInt(next - q) : label(arr[q]);
              if (text) {
                ctx.save(); ctx.beginPath(); ctx.rect(px + 4, lane.y, room, LANE_H); ctx.clip();
                ctx.fillStyle = '#424a53'; ctx.fillText(text, px + 4, lane.y + LANE_H / 2);
                ctx.restore(); ctx.fillStyle = color[lane.kind];
              }
            }
          } else if (W - RIGHT_PAD - px > 36) {
            ctx.fillStyle = '#424a53'; ctx.fillText(many ? '\u00d7' + fmtInt(next - q) : label(arr[q]), px + 4, lane.y + LANE_H / 2); ctx.fillStyle = color[lane.kind];
          }
          q = next;
        }
      });
    });
    [state.hover, state.selected].forEach(function (i, which) {
      if (i < 0 || !on[K[i]]) return;
      var pos = markPos(i);
      if (!pos) return;
      ctx.strokeStyle = which ? '#0969da' : '#1f2328';
      ctx.lineWidth = which ? 2 : 1;
      ctx.strokeRect(pos.x - 4, pos.y - LANE_H / 2 + 1, 8, LANE_H - 2);
      if (which) {
        var row = rows[vpos[V[i]]];
        ctx.fillStyle = 'rgba(9,105,218,.35)';
        ctx.fillRect(Math.round(pos.x) - 0.5, row.top, 1, row.bottom - row.top);
      }
    });
    ctx.restore();
    document.getElementById('range').textContent = fmtSpan(state.lo, state.hi);
  }

  function niceStep(raw) {
    var p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  /** Where event i's mark is, in canvas coordinates (null when its lane is hidden). */
  function markPos(i) {
    var row = rows[vpos[V[i]]];
    for (var l = 0; l < row.lanes.length; l++) {
      if (row.lanes[l].kind === K[i]) return { x: xOf(X()[i]), y: row.lanes[l].y + LANE_H / 2 };
    }
    return null;
  }

  /** The event under canvas point (x, y), and how many marks share its neighbourhood. */
  function hit(x, y) {
    if (x < GUTTER - HIT_PX) return null;
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r];
      for (var l = 0; l < row.lanes.length; l++) {
        var lane = row.lanes[l];
        if (y < lane.y || y >= lane.y + LANE_H) continue;
        var arr = byAxis[state.axis][r * NK + lane.kind], Xa = X();
        var q = lowerBound(arr, Xa, valAt(x), 0), best = -1, bestD = HIT_PX + 0.5;
        for (var c = Math.max(0, q - 1); c <= Math.min(arr.length - 1, q); c++) {
          var d = Math.abs(xOf(Xa[arr[c]]) - x);
          if (d < bestD) { bestD = d; best = arr[c]; }
        }
        if (best < 0) return null;
        var near = lowerBound(arr, Xa, valAt(x + HIT_PX), 0) - lowerBound(arr, Xa, valAt(x - HIT_PX), 0);
        return { i: best, near: near };
      }
    }
    return null;
  }

  // ---- the panels
  function buildKinds() {
    var ul = document.getElementById('kind-list');
    kinds.forEach(function (k) {
      var li = document.createElement('li');
      li.setAttribute('data-kind', KIND_NAMES[k]);
      var lab = document.createElement('label');
      var cb = document.createElement('input'); cb.type = 'checkbox'; cb.checked = true; cb.setAttribute('data-kind', KIND_NAMES[k]);
      var sw = document.createElement('span'); sw.className = 'swatch'; sw.style.background = color[k];
      var nm = document.createElement('span'); nm.className = 'name'; nm.textContent = KIND_NAMES[k];
      var ct = document.createElement('span'); ct.className = 'count'; ct.textContent = fmtInt(counts[k]);
      lab.title = vcpus.map(function (v) { return 'vCPU ' + v + ': ' + fmtInt(byAxis.t[vpos[v] * NK + k].length); }).join('\n');
      cb.addEventListener('change', function () { setKind(k, cb.checked); });
      lab.appendChild(cb); lab.appendChild(sw); lab.appendChild(nm); lab.appendChild(ct);
      li.appendChild(lab); ul.appendChild(li);
    });
    document.getElementById('kinds-all').addEventListener('click', function () { kinds.forEach(function (k) { setKind(k, true); }); });
    document.getElementById('kinds-none').addEventListener('click', function () { kinds.forEach(function (k) { setKind(k, false); }); });
  }
  function setKind(k, value) {
    on[k] = value;
    var li = document.querySelector('#kind-list li[data-kind="' + KIND_NAMES[k] + '"]');
    li.classList.toggle('off', !value);
    li.querySelector('input').checked = value;
    layout(); redraw();
  }

  function summary() {
    var tl = Infinity, th = -Infinity, ih = 0;
    for (var q = 0; q < N; q++) { if (T[q] < tl) tl = T[q]; if (T[q] > th) th = T[q]; if (I[q] > ih) ih = I[q]; }
    document.getElementById('summary').textContent = fmtInt(N) + ' events \u00b7 ' + vcpus.length + ' vCPU' + (vcpus.length === 1 ? '' : 's') +
      ' \u00b7 ' + fmtMs(tl) + ' \u2013 ' + fmtMs(th) + ' \u00b7 up to ' + fmtInt(ih) + ' instructions retired';
  }

  function showDetails(i) {
    var body = document.getElementById('details-body');
    body.className = ''; body.innerHTML = '';
    if (i < 0) { body.className = 'empty'; body.textContent = 'Click a mark on the timeline to see its event.'; return; }
    var head = document.createElement('div'); head.className = 'head';
    var sw = document.createElement('span'); sw.style.cssText = 'width:12px;height:12px;border-radius:3px;background:' + color[K[i]];
    var what = document.createElement('span'); what.className = 'what'; what.textContent = describe(i);
    var prev = document.createElement('button'); prev.type = 'button'; prev.textContent = '\u25c0 previous'; prev.id = 'prev-event';
    var next = document.createElement('button'); next.type = 'button'; next.textContent = 'next \u25b6'; next.id = 'next-event';
    prev.addEventListener('click', function () { step(-1); });
    next.addEventListener('click', function () { step(1); });
    head.appendChild(sw); head.appendChild(what); head.appendChild(prev); head.appendChild(next);
    body.appendChild(head);
    var table = document.createElement('table');
    function row(k, v) {
      var tr = document.createElement('tr'), a = document.createElement('td'), b = document.createElement('td');
      a.textContent = k; b.textContent = v; tr.appendChild(a); tr.appendChild(b); table.appendChild(tr);
    }
    var f = F[i];
    row('event', KIND_NAMES[K[i]]);
    row('vcpu', String(V[i]));
    row('t', fmtMs(T[i]) + ' since boot');
    row('insn', fmtInt(I[i]) + ' retired');
    var HEXY = { addr: 1, eip: 1, errcode: 1, result: 1, cr2: 1, eax: 1, ebx: 1, ecx: 1, edx: 1, esi: 1, edi: 1, ebp: 1, esp: 1, eflags: 1 };
    Object.keys(f).forEach(function (k) {
      var v = f[k];
      if (typeof v === 'number' && HEXY[k]) row(k, hex(v) + '  (' + v + ')');
      else if (Array.isArray(v) && k === 'args') row(k, v.map(function (a) { return hex(a); }).join(', '));
      else if (v !== null && typeof v === 'object') row(k, JSON.stringify(v));
      else row(k, typeof v === 'string' && (k === 'text' || !/^[\x20-\x7e]+$/.test(v)) ? JSON.stringify(v) : String(v));
    });
    body.appendChild(table);
    var pre = document.createElement('pre');
    var raw = { t: T[i], vcpu: V[i], insn: I[i], event: KIND_NAMES[K[i]] };
    Object.keys(f).forEach(function (k) { raw[k] = f[k]; });
    pre.textContent = JSON.stringify(raw);
    body.appendChild(pre);
  }

  function select(i) { state.selected = i; showDetails(i); redraw(); }

  /** The previous or next event of the selected one's vCPU and kind, along the current axis. */
  function step(dir) {
    var i = state.selected;
    if (i < 0) return;
    var arr = byAxis[state.axis][vpos[V[i]] * NK + K[i]];
    var at = -1;
    for (var q = lowerBound(arr, X(), X()[i], 0); q < arr.length; q++) if (arr[q] === i) { at = q; break; }
    var to = at + dir;
    if (at < 0 || to < 0 || to >= arr.length) return;
    select(arr[to]);
    var v = X()[arr[to]], span = state.hi - state.lo;
    if (v < state.lo || v > state.hi) setView(v - span / 2, v + span / 2);
  }

  // ---- zoom and pan
  function setView(lo, hi) {
    var f = full[state.axis], fs = f.hi - f.lo;
    var span = Math.min(Math.max(hi - lo, MIN_SPAN[state.axis]), fs * 1.0);
    if (lo < f.lo) lo = f.lo;
    if (lo + span > f.hi) lo = f.hi - span;
    state.lo = lo; state.hi = lo + span;
    views[state.axis] = { lo: state.lo, hi: state.hi };
    redraw();
  }
  function zoomAt(px, factor) {
    var v = valAt(px);
    setView(v - (v - state.lo) * factor, v + (state.hi - v) * factor);
  }
  function fit() { setView(full[state.axis].lo, full[state.axis].hi); }
  function setAxis(a) {
    state.axis = a;
    state.lo = views[a].lo; state.hi = views[a].hi;
    document.getElementById('axis-t').setAttribute('aria-pressed', String(a === 't'));
    document.getElementById('axis-insn').setAttribute('aria-pressed', String(a === 'insn'));
    hideTip(); redraw();
  }

  function canvasPoint(ev) { var r = canvas.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; }
  function showTip(h, p) {
    var i = h.i;
    tooltip.innerHTML = '';
    var a = document.createElement('div'); a.textContent = describe(i);
    var b = document.createElement('div'); b.className = 'sub';
    b.textContent = 'vCPU ' + V[i] + ' \u00b7 ' + fmtMs(T[i]) + ' \u00b7 insn ' + fmtInt(I[i]) +
      (h.near > 1 ? ' \u00b7 ' + fmtInt(h.near) + ' events here: zoom in' : '');
    tooltip.appendChild(a); tooltip.appendChild(b);
    tooltip.hidden = false;
    var tw = tooltip.offsetWidth, th = tooltip.offsetHeight;
    var x = p.x + 14, y = p.y + 16;
    if (x + tw > W - 4) x = Math.max(4, p.x - tw - 10);
    if (y + th > H) y = Math.max(0, p.y - th - 10);
    tooltip.style.left = x + 'px'; tooltip.style.top = y + 'px';
  }
  function hideTip() { tooltip.hidden = true; if (state.hover >= 0) { state.hover = -1; redraw(); } }

  var drag = null;
  canvas.addEventListener('mousedown', function (ev) {
    if (ev.button !== 0) return;
    var p = canvasPoint(ev);
    drag = { x: p.x, lo: state.lo, hi: state.hi, moved: false };
  });
  window.addEventListener('mousemove', function (ev) {
    var p = canvasPoint(ev);
    if (drag) {
      if (Math.abs(p.x - drag.x) > 3) { drag.moved = true; canvas.classList.add('dragging'); hideTip(); }
      if (drag.moved) {
        var dv = (p.x - drag.x) / plotW() * (drag.hi - drag.lo);
        setView(drag.lo - dv, drag.hi - dv);
      }
      return;
    }
    if (ev.target !== canvas) { if (!tooltip.hidden) hideTip(); return; }
    var h = hit(p.x, p.y);
    if (!h) { hideTip(); return; }
    if (state.hover !== h.i) { state.hover = h.i; redraw(); }
    showTip(h, p);
  });
  window.addEventListener('mouseup', function (ev) {
    if (!drag) return;
    var d = drag; drag = null; canvas.classList.remove('dragging');
    if (d.moved || ev.target !== canvas) return;
    var p = canvasPoint(ev), h = hit(p.x, p.y);
    select(h ? h.i : -1);
  });
  canvas.addEventListener('mouseleave', function () { if (!drag) hideTip(); });
  canvas.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    var p = canvasPoint(ev);
    var dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY, dx = ev.deltaMode === 1 ? ev.deltaX * 16 : ev.deltaX;
    if (ev.shiftKey && dx === 0) { dx = dy; dy = 0; }
    if (Math.abs(dx) > Math.abs(dy)) {
      var dv = dx / plotW() * (state.hi - state.lo);
      setView(state.lo + dv, state.hi + dv);
    } else {
      zoomAt(Math.max(GUTTER, p.x), Math.exp(dy * 0.0015));
    }
    hideTip();
  }, { passive: false });
  canvas.addEventListener('dblclick', function (ev) { var p = canvasPoint(ev); zoomAt(Math.max(GUTTER, p.x), 0.5); });
  document.getElementById('zoom-in').addEventListener('click', function () { zoomAt(GUTTER + plotW() / 2, 0.5); });
  document.getElementById('zoom-out').addEventListener('click', function () { zoomAt(GUTTER + plotW() / 2, 2); });
  document.getElementById('fit').addEventListener('click', fit);
  document.getElementById('axis-t').addEventListener('click', function () { setAxis('t'); });
  document.getElementById('axis-insn').addEventListener('click', function () { setAxis('insn'); });
  window.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var span = state.hi - state.lo;
    if (ev.key === '+' || ev.key === '=') zoomAt(GUTTER + plotW() / 2, 0.5);
    else if (ev.key === '-' || ev.key === '_') zoomAt(GUTTER + plotW() / 2, 2);
    else if (ev.key === '0') fit();
    else if (ev.key === 'ArrowLeft') { if (state.selected >= 0) step(-1); else setView(state.lo - span * 0.1, state.hi - span * 0.1); }
    else if (ev.key === 'ArrowRight') { if (state.selected >= 0) step(1); else setView(state.lo + span * 0.1, state.hi + span * 0.1); }
    else if (ev.key === 'Escape') select(-1);
    else return;
    ev.preventDefault();
  });
  window.addEventListener('resize', function () { layout(); redraw(); });

  window.traceView = {
    /** Event i's mark in page (client) coordinates, or null when hidden or out of view. */
    markPosition: function (i) {
      var p = markPos(i);
      if (!p || p.x < GUTTER || p.x > W - RIGHT_PAD) return null;
      var r = canvas.getBoundingClientRect();
      return { x: r.left + p.x, y: r.top + p.y };
    },
    view: function () { return { axis: state.axis, lo: state.lo, hi: state.hi }; },
    selected: function () { return state.selected; },
    events: N
  };

  buildKinds();
  summary();
  layout();
  draw();
})();
`;
