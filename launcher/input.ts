/**
 * The files `run` reads (the image, --initrd) and writes (--stats-json), checked before anything runs:
 * each problem is one line and exit status 2, never an internal error. A file read is a regular file
 * (not a directory, a device such as /dev/zero, a FIFO) no larger than the guest's memory can hold, and
 * is read with that bound, so no input can make the Launcher read without end.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from './errors.ts';

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

function checkStats(st: Stats, what: string, maxBytes: number, limit: string): void {
  if (st.isDirectory()) throw new UserError(`${what}: is a directory, not a file`);
  if (!st.isFile()) throw new UserError(`${what}: not a regular file (a device, a pipe or a socket cannot be read as one)`);
  if (st.size > maxBytes) throw new UserError(`${what}: ${st.size} bytes, more than ${limit} can hold`);
}

/** Check that `path` can be read as an input of at most `maxBytes` (`limit` names that bound). */
export function checkInputFile(path: string, what: string, maxBytes: number, limit: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new UserError((e as NodeJS.ErrnoException).code === 'ENOENT' ? `${what}: no such file` : `${what}: cannot read it (${describe(e)})`);
  }
  checkStats(st, what, maxBytes, limit);
}

/** Read `path`, checked as checkInputFile does, reading no more than `maxBytes`. */
export function readInputFile(path: string, what: string, maxBytes: number, limit: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UserError((e as NodeJS.ErrnoException).code === 'ENOENT' ? `${what}: no such file` : `${what}: cannot read it (${describe(e)})`);
  }
  try {
    const st = fstatSync(fd);
    checkStats(st, what, maxBytes, limit);
    const buf = new Uint8Array(st.size);
    let got = 0;
    for (let n = 1; got < buf.length && n > 0; got += n) n = readSync(fd, buf, got, buf.length - got, got);
    return got === buf.length ? buf : buf.subarray(0, got);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${what}: cannot read it (${describe(e)})`);
  } finally {
    closeSync(fd);
  }
}

/** Check that a file can be written at `path`: not a directory, in a folder that exists. */
export function checkOutputFile(path: string, what: string): void {
  try {
    if (statSync(path).isDirectory()) throw new UserError(`${what}: is a directory, not a file`);
    return;
  } catch (e) {
    if (e instanceof UserError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`${what}: cannot use it (${describe(e)})`);
  }
  const dir = dirname(resolve(path));
  let st: Stats;
  try {
    st = statSync(dir);
  } catch {
    throw new UserError(`${what}: no such folder: ${dirname(path)}`);
  }
  if (!st.isDirectory()) throw new UserError(`${what}: ${dirname(path)} is not a folder`);
}
