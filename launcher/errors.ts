import { EXIT_BAD_INPUT } from './exit-status.ts';

/**
 * An error meant for the user: the CLI prints its message as one line and exits non-zero, with no stack
 * trace. Anything else that escapes is a bug in lguest-ts and is reported as such.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = EXIT_BAD_INPUT) {
    super(message);
    this.name = 'UserError';
  }
}
