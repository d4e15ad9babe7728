import type { RunOptions } from './commands/run.ts';
import { UserError } from './errors.ts';

/** Boot a paravirtualized guest under the lguest Host. (Being written: see issue 4.) */
export async function runLguest(_opts: RunOptions): Promise<number> {
  throw new UserError('lguest mode is not available yet');
}
