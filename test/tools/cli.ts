/** Running `lguest-ts` as a user does, for the tests: a child process of this Node, output collected. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(__dirname, '../../launcher/bin.mjs');

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** `node launcher/bin.mjs ARGS...`: its exit status and output (killed after 60 s, so a hang fails). */
export function cli(...args: string[]): Promise<CliResult> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (status) => { clearTimeout(t); res({ status, stdout, stderr }); });
  });
}
