/**
 * `npm run tour`: the guided tour of lguest-ts, lguest style. A stop is a comment line that begins with a
 * tag `[X:nnn]` (`// [H:130] ...`, `/** [H:130] ...`, or a ` * [D:300] ...` line inside a doc comment);
 * there is no other tag syntax. The tour prints every stop in reading order: the Launcher (L), then the
 * Host (H: start-up, the run loop, traps, shadow paging at H:3nn in mmu/, interrupts, hypercalls,
 * segments, kills), then the Devices (D), each part by number. With an argument, prints only that part's
 * stops (e.g. `npm run tour -- H`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname ?? __dirname, '../..');
/** The folders the tour reads (the Host is switcher/ and mmu/; the Launcher launcher/; the devices devices/). */
export const TOUR_DIRS = ['launcher', 'switcher', 'mmu', 'devices', 'emulator'];
const PART_ORDER = ['L', 'H', 'D'];
const PART_NAMES: Record<string, string> = { L: 'Launcher', H: 'Host', D: 'Devices' };
const TAG = /\[([A-Z]):(\d+)\]\s*/;
/** A comment line that begins with a tag: `//`, `/*`, `/**` or a doc comment's ` *`, then `[X:nnn]`. */
export const STOP = /^\s*(?:\/\/|\/\*\*?|\*)\s*\[([A-Z]):(\d+)\]/;
/** Anything that looks like a tag at the start of a comment, in any spelling (`/*S:330`, `// H:10`, ...):
 *  every such line must be a STOP, or the tour would skip it. */
export const TAG_LIKE = /^\s*(?:\/\/|\/\*\*?|\*)\s*\[?[A-Z]:\d+\b/;

export interface TourStop { part: string; num: number; file: string; line: number; text: string }

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

/** The comment that starts at `lines[i]` (which holds the tag), as plain text. */
function commentText(lines: string[], i: number): string {
  const first = lines[i];
  const out: string[] = [];
  if (/^\s*\/\//.test(first)) {
    for (let j = i; j < lines.length && /^\s*\/\//.test(lines[j]); j++) out.push(lines[j].replace(/^\s*\/\/\s?/, ''));
  } else {
    for (let j = i; j < lines.length; j++) {
      const l = lines[j];
      out.push(l.replace(/^\s*\/\*\*?\s?/, '').replace(/^\s*\*(?!\/)\s?/, '').replace(/\s*\*\/.*$/, ''));
      if (l.includes('*/')) break;
    }
  }
  return out.join(' ').replace(TAG, '').replace(/\s+/g, ' ').trim();
}

export function* tourFiles(root = ROOT): Generator<string> {
  for (const d of TOUR_DIRS) {
    try { yield* tsFiles(join(root, d)); } catch { /* a folder that is not there */ }
  }
}

export function collectTour(root = ROOT): TourStop[] {
  const stops: TourStop[] = [];
  for (const f of tourFiles(root)) {
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((l, i) => {
      const m = STOP.exec(l);
      if (m) stops.push({ part: m[1], num: Number(m[2]), file: relative(root, f), line: i + 1, text: commentText(lines, i) });
    });
  }
  const rank = (p: string) => { const i = PART_ORDER.indexOf(p); return i < 0 ? PART_ORDER.length : i; };
  return stops.sort((a, b) => rank(a.part) - rank(b.part) || a.num - b.num || a.file.localeCompare(b.file));
}

if (process.argv[1] && /tour\.ts$/.test(process.argv[1])) {
  const only = process.argv[2];
  if (only !== undefined && !(only in PART_NAMES)) {
    process.stderr.write(`tour: unknown part ${JSON.stringify(only)}: one of ${Object.keys(PART_NAMES).join(', ')}\n`);
    process.exit(2);
  }
  // `npm run tour | head`: the reader stopped reading, which is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
  let part = '';
  for (const s of collectTour()) {
    if (only && s.part !== only) continue;
    if (s.part !== part) {
      part = s.part;
      process.stdout.write(`\n== ${PART_NAMES[part] ?? part} ==\n\n`);
    }
    process.stdout.write(`[${s.part}:${String(s.num).padStart(3, '0')}] ${s.file}:${s.line}\n  ${s.text}\n\n`);
  }
}
