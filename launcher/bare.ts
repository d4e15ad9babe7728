import type { RunOptions } from './commands/run.ts';
import { UserError } from './errors.ts';

/** Boot a Multiboot kernel on the bare machine. (Being written: see issue 3.) */
export async function runBare(_opts: RunOptions): Promise<number> {
  throw new UserError('bare mode is not available yet');
}
