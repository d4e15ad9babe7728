/** Running `lguest-ts` as a user does, for the tests: a child process of this Node, output collected. */
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(__dirname, '../../launcher/bin.mjs');

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** How long one command may take before it is killed (ms), so a hang fails. */
export const CLI_TIMEOUT_MS = 60_000;

/** `node launcher/bin.mjs ARGS...`: its exit status and output (killed after 60 s, so a hang fails). */
export function cli(...args: string[]): Promise<CliResult> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), CLI_TIMEOUT_MS);
    p.on('close', (status) => { clearTimeout(t); res({ status, stdout, stderr }); });
  });
}

/** The same, synchronously (for a test that runs one short command at a time). Output decoded as latin1,
 *  so a guest's bytes arrive unchanged. */
export function cliSync(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'latin1', timeout: CLI_TIMEOUT_MS });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
