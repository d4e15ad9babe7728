/**
 * `npm run tour`: the guided tour of the Host and Launcher, lguest style. Prints every tagged comment
 * (`// [H:130] ...` or a doc comment starting `[H:130]`) in reading order: the Launcher (L) first, then
 * the Host (H), then anything else, each part by number. With a file argument, prints only that part's tags
 * (e.g. `npm run tour -- H`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname ?? __dirname, '../..');
const DIRS = ['launcher', 'switcher', 'devices', 'mmu', 'emulator'];
const PART_ORDER = ['L', 'H', 'S', 'D'];
const PART_NAMES: Record<string, string> = { L: 'Launcher', H: 'Host', S: 'Switcher', D: 'Drivers' };
const TAG = /\[([A-Z]):(\d+)\]\s*/;

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

export function collectTour(root = ROOT): TourStop[] {
  const stops: TourStop[] = [];
  for (const d of DIRS) {
    let files: string[];
    try { files = [...tsFiles(join(root, d))]; } catch { continue; }
    for (const f of files) {
      const lines = readFileSync(f, 'utf8').split('\n');
      lines.forEach((l, i) => {
        const m = /(?:\/\/|\/\*\*?)\s*\[([A-Z]):(\d+)\]/.exec(l);
        if (m) stops.push({ part: m[1], num: Number(m[2]), file: relative(root, f), line: i + 1, text: commentText(lines, i) });
      });
    }
  }
  const rank = (p: string) => { const i = PART_ORDER.indexOf(p); return i < 0 ? PART_ORDER.length : i; };
  return stops.sort((a, b) => rank(a.part) - rank(b.part) || a.num - b.num || a.file.localeCompare(b.file));
}

if (process.argv[1] && /tour\.ts$/.test(process.argv[1])) {
  const only = process.argv[2];
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
