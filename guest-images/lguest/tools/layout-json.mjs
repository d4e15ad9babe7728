#!/usr/bin/env node
// layout-json.mjs: turn the "@@LAYOUT" marker lines of `gcc -m32 -S tools/layout.c tools/layout_pae.c`
// (see tools/layout.c) into layout.json. Usage: node tools/layout-json.mjs layout.s layout_pae.s
// The markers are read in file order; layout_pae.s only supplies the body of the paging_pae group,
// which layout.s's "G paging_pae" marker opens. Nothing here runs 32-bit code.
import { readFileSync } from 'node:fs';

const [mainAsm, paeAsm] = process.argv.slice(2);
if (!mainAsm || !paeAsm) {
  console.error('usage: layout-json.mjs layout.s layout_pae.s');
  process.exit(2);
}

function markers(file) {
  const out = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const at = line.indexOf('@@LAYOUT ');
    if (at < 0) continue;
    const [kind, ...rest] = line.slice(at + 9).trim().split(/\s+/);
    const nums = rest.slice(-2).map((n) => Number(BigInt.asUintN(32, BigInt(n))));
    out.push({ kind, name: rest.length > 2 ? rest[0] : undefined, a: nums[0], b: nums[1] });
  }
  return out;
}

const top = markers(mainAsm);
const pae = markers(paeAsm).filter((m) => m.kind === 'C');
let out = '{\n  "source": "guest-images/lguest/include/lguest_abi.h",\n  "structs": {';
let firstStruct = true;
let firstItem = true;
let inGroup = false;
for (const m of top) {
  switch (m.kind) {
    case 'S':
      out += `${firstStruct ? '' : ','}\n    "${m.name}": { "size": ${m.a}, "fields": {`;
      firstStruct = false;
      firstItem = true;
      break;
    case 'F':
      out += `${firstItem ? '' : ','}\n      "${m.name}": { "offset": ${m.a}, "size": ${m.b} }`;
      firstItem = false;
      break;
    case 'E':
      out += '\n    } }';
      break;
    case 'G':
      out += `\n  },\n  "${m.name}": {`;
      inGroup = true;
      firstItem = true;
      if (m.name === 'paging_pae') {
        for (const c of pae) {
          out += `${firstItem ? '' : ','}\n    "${c.name}": ${c.a}`;
          firstItem = false;
        }
      }
      break;
    case 'C':
      if (!inGroup) throw new Error(`constant ${m.name} outside a group`);
      out += `${firstItem ? '' : ','}\n    "${m.name}": ${m.a}`;
      firstItem = false;
      break;
    default:
      console.error(`layout-json: unknown marker ${m.kind} in ${mainAsm}`);
      process.exit(1);
  }
}
out += '\n  }\n}\n';
process.stdout.write(out);
