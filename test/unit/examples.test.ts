/** examples/ as a user runs them, against the compiled build (dist/), and the package as npm ships it:
 *  `npm pack` holds only what users need, and the tarball, installed into an empty folder, is importable
 *  from plain Node and TypeScript and its `lguest-ts` command runs with no tsx and no sources. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildIsCurrent } from '../../launcher/build-state.mjs';

const ROOT = resolve(__dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const TSX = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'lguest-examples-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function node(args: string[], cwd = ROOT, timeout = 120_000) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, LGUEST_TS_SOURCE: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

beforeAll(() => {
  // The examples import 'lguest-ts', i.e. dist/: build it if the sources changed since (a fresh clone
  // built it at npm install).
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--if-needed'], { cwd: ROOT, stdio: 'pipe', timeout: 280_000 });
  expect(buildIsCurrent(ROOT)).toBe(true);
}, 300_000);

describe('examples/', () => {
  test('hello.mjs: plain Node imports lguest-ts and boots the hello guest', () => {
    const r = node(['examples/hello.mjs']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hello: Hello from an lguest-ts guest!');
    expect(r.stdout).toContain('command line: "from=examples/hello.mjs"');
    expect(r.stdout).toMatch(/the guest ended: poweroff, exit status 0/);
    expect(r.stdout).toMatch(/\d+ instructions, 16384 SET_PTE hypercalls/);
    expect(r.status).toBe(0);
  });

  test('console.mjs: types into the guest\'s virtio console and reads the echo from the async iterator', () => {
    const r = node(['examples/console.mjs', 'tick-tock']);
    expect(r.stdout).toContain('the guest echoed "tick-tock"; poweroff, exit status 0');
    expect(r.status).toBe(0);
  });

  test('bare.ts: type-checks against the shipped declarations (strict, NodeNext, skipLibCheck off) and runs', () => {
    const tc = node([TSC, '-p', 'examples/tsconfig.json']);
    expect(tc.stdout + tc.stderr).toBe('');
    expect(tc.status).toBe(0);
    const r = node([TSX, 'examples/bare.ts', '20']);
    expect(r.stdout).toContain('PASS');
    expect(r.stdout).toMatch(/fate exit \(isa-debug-exit 0\), exit status 1, \d+ instructions in/);
    expect(r.status).toBe(0);
  });
});

describe('the package (npm pack)', () => {
  let tarball = '';
  let files: string[] = [];

  test('ships the build, the command, the bundled images and nothing else', () => {
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    const info = JSON.parse(out)[0] as { filename: string; size: number; unpackedSize: number; files: { path: string }[] };
    tarball = join(tmp, info.filename);
    files = info.files.map((f) => f.path);
    expect(files).toContain('dist/launcher/api.js');
    expect(files).toContain('dist/launcher/api.d.ts');
    expect(files).toContain('dist/launcher/vcpu-worker.js');
    expect(files).toContain('dist/build.json');
    expect(files).toContain('launcher/bin.mjs');
    expect(files).toContain('guest-images/build/hello.elf');
    const allowed = /^(dist\/.*\.(js|d\.ts|json)|launcher\/(bin|build-state)\.mjs|guest-images\/build\/[^/]+\.elf|package\.json|README\.md|LICENSE)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(info.unpackedSize).toBeLessThan(4 * 1024 * 1024); // the checkout is 22 MB with its test vectors
  });

  test('installs from the tarball into an empty folder; import and the command run the build, no sources', () => {
    expect(tarball).not.toBe('');
    const proj = join(tmp, 'proj');
    mkdirSync(proj);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'lguest-ts-user', private: true, type: 'module' }));
    const inst = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: proj, encoding: 'utf8', timeout: 240_000 });
    expect(inst.status, inst.stderr).toBe(0);
    // tsx is a dependency only to load TypeScript plug-ins (`--plugin X.ts`); the package itself runs its build.
    expect(existsSync(join(proj, 'node_modules/lguest-ts/launcher/cli.ts'))).toBe(false);

    writeFileSync(join(proj, 'main.mjs'), [
      "import { run, version } from 'lguest-ts';",
      "const r = await run({ image: 'hello', memMiB: 16, cmdline: 'installed' });",
      'console.log(version, r.fate.kind, r.exitStatus, JSON.stringify(r.output.split("\\n")[1]));',
    ].join('\n'));
    const m = node(['main.mjs'], proj);
    expect(m.stderr).toBe('');
    expect(m.stdout.trim()).toBe('0.1.0 poweroff 0 "hello: command line: \\"installed\\""');

    const bin = join(proj, 'node_modules/.bin/lguest-ts');
    const v = node([bin, '--version'], proj);
    expect(v.stdout.trim()).toBe('0.1.0');
    const h = node([bin, 'run', 'hello', '--mem', '16'], proj);
    expect(h.stdout).toContain('hello: Hello from an lguest-ts guest!');
    expect(h.status).toBe(0);

    // A TypeScript plug-in that types itself against the installed package (examples/plugins/page-hash.ts)
    copyFileSync(join(ROOT, 'examples/plugins/page-hash.ts'), join(proj, 'page-hash.ts'));
    const p = node([bin, 'run', 'pagehash', '--plugin', 'page-hash.ts', '--mem', '16'], proj);
    expect(p.stderr).toBe('');
    expect(p.stdout).toContain('pagehash: done');

    // TypeScript, from the installed declarations alone (no @types/yargs in this folder)
    copyFileSync(join(ROOT, 'examples/bare.ts'), join(proj, 'bare.ts'));
    // (page-hash.ts, copied above, is type-checked with it)
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false,
        typeRoots: [join(ROOT, 'node_modules/@types')], types: ['node'],
      },
      include: ['*.ts'],
    }));
    const tc = node([TSC, '-p', join(proj, 'tsconfig.json')], proj);
    expect(tc.stdout + tc.stderr).toBe('');
    expect(tc.status).toBe(0);
  });
});
