/**
 * A GDB remote serial protocol stub (`lguest-ts run [--bare] IMAGE --gdb PORT`): gdb connects over TCP
 * (`target remote :PORT`) and debugs the guest one vCPU at a time, each vCPU a gdb thread. This file is
 * the protocol side: the socket, the packets and what they mean. It runs in the main thread and reaches
 * the vCPUs only through a DebugLink (launcher/debug-link.ts), whose requests a synchronous
 * CpuDebugTarget per vCPU answers (emulator/debug-target.ts).
 *
 * What gdb gets: the i386 general registers in its g-packet order (eax ecx edx ebx esp ebp esi edi eip
 * eflags cs ss ds es fs gs), then the x87's st0-st7 (80-bit) and fctrl fstat ftag fiseg fioff foseg fooff
 * fop, readable and writable (the vCPU's own cpu.fpu, in lguest mode too); a target.xml with the
 * architecture and gdb's org.gnu.gdb.i386.core feature (no SSE: this CPU has none), memory at linear addresses through the vCPU's paging (unmapped memory answers E14), software
 * and hardware breakpoints (Z0/Z1, both kept by the run loop by address, never written into the guest),
 * write, read and access watchpoints (Z2-Z4, reported after the instruction), continue and step (also as
 * vCont), Ctrl-C, kill, detach, thread queries, and no-ack mode.
 *
 * Robustness: a packet with a bad checksum is refused with `-`; a packet we cannot parse gets E22 (E14
 * for memory we cannot reach), an unknown one the empty reply that means "not supported"; nothing a
 * client sends can throw out of here. When the connection drops, gdb is treated as detached: its
 * breakpoints go and the guest runs on. One gdb at a time; once it has gone the port is closed.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  GDB_FPU_BYTES, GDB_FPU_END, GDB_FPU_NAMES, GDB_REG_COUNT, GDB_REG_NAMES, GDB_ST0, gdbRegSize, type DebugError, type DebugEvent, type DebugReply, type DebugRequest, type BreakpointType,
} from '../emulator/debug-target.ts';
import type { DebugLink, ResumeAction } from './debug-link.ts';
import {
  MAX_PACKET, PacketParser, bytesToHex, framePacket, hexToBytes, le32Hex, parseHex, parseLe32, textToHex, unescapeBinary,
} from './gdb-packets.ts';
import { UserError } from './errors.ts';

/** What we tell gdb about ourselves (qSupported). swbreak/hwbreak: stop replies say which kind of
 *  breakpoint was hit, so gdb never "adjusts" the PC back over an int3 that is not there. */
const SUPPORTED = `PacketSize=${MAX_PACKET.toString(16)};qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;vContSupported+`;

/** The EFLAGS bits gdb shows by name (its i386_eflags type). */
const EFLAGS_FIELDS: Array<[string, number]> = [
  ['CF', 0], ['', 1], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
  ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
];
const CORE_REG_TYPES = ['int32', 'int32', 'int32', 'int32', 'data_ptr', 'data_ptr', 'int32', 'int32', 'code_ptr', 'i386_eflags',
  'int32', 'int32', 'int32', 'int32', 'int32', 'int32'];

/** The target description: i386 with gdb's org.gnu.gdb.i386.core feature and nothing else (no SSE: this
 *  CPU has none), so gdb numbers the registers exactly as we do: the 16 general ones, st0-st7 (80-bit,
 *  gdb's i387_ext) and the x87 control registers fctrl ... fop. */
export const TARGET_XML = '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">' +
  '<architecture>i386</architecture><feature name="org.gnu.gdb.i386.core">' +
  `<flags id="i386_eflags" size="4">${EFLAGS_FIELDS.map(([n, b]) => `<field name="${n}" start="${b}" end="${b}"/>`).join('')}</flags>` +
  GDB_REG_NAMES.map((n, i) => `<reg name="${n}" bitsize="32" type="${CORE_REG_TYPES[i]}"/>`).join('') +
  GDB_FPU_NAMES.map((n, i) => i < 8 ? `<reg name="${n}" bitsize="80" type="i387_ext"/>` : `<reg name="${n}" bitsize="32" type="int" group="float"/>`).join('') +
  '</feature></target>\n';

/** gdb's number of orig_eax (i386 GNU/Linux). */
const ORIG_EAX = 41;

const ERRNO: Record<DebugError, string> = { fault: 'E14', invalid: 'E22', busy: 'E16' };
const E_INVALID = 'E22';

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}

/** The stop reply for an event: T (stopped, with the thread and why), W (exited), X (terminated). */
export function stopReply(ev: DebugEvent): string {
  if (ev.kind === 'exited') return `W${hex2(ev.status)}`;
  if (ev.kind === 'terminated') return `X${hex2(ev.signal)}`;
  let r = `T${hex2(ev.signal)}thread:${ev.thread.toString(16)};`;
  if (ev.why === 'swbreak' || ev.why === 'hwbreak') r += `${ev.why}:;`;
  else if (ev.why !== undefined) r += `${ev.why}:${(ev.addr ?? 0).toString(16)};`;
  return r;
}

/** Where the session's replies go (the server's connection, or a test). */
export interface SessionOutput {
  send(payload: string | Uint8Array): void;
  /** After the reply to QStartNoAckMode: stop acknowledging. */
  startNoAck(): void;
  /** The session is over (k, D, or the guest ended): flush and close the connection. */
  close(): void;
}

/** [L:610] One gdb connection's conversation. Packets are handled one at a time, in order; a resume
 * packet is answered later, by the stop it leads to.
 */
export class GdbSession {
  /** Set by k, D, or the guest's end: nothing more is served. */
  ended = false;
  private queue: Promise<void> = Promise.resolve();
  /** The thread whose registers and memory g, G, p, P, m, M and X see (Hg). */
  private gThread: number;
  /** The guest runs and gdb waits for a stop reply. */
  private running = false;

  constructor(
    private readonly link: DebugLink,
    private readonly out: SessionOutput,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.gThread = link.threads[0];
  }

  /** A packet arrived (checked already). */
  packet(data: Buffer): void {
    this.queue = this.queue.then(() => this.dispatch(data)).catch((e: unknown) => {
      // a bug of ours: say so, answer something, keep the session
      this.log(`gdb: internal error handling '${data.toString('latin1').slice(0, 40)}': ${(e as Error).message}`);
      if (!this.ended && !this.running) this.out.send(E_INVALID);
    });
  }

  /** Ctrl-C: stop the running guest (ignored when it is stopped already). */
  interrupt(): void {
    if (this.running && !this.ended) this.link.interrupt();
  }

  /** A stop or the guest's end, from the link. */
  event(ev: DebugEvent): void {
    if (this.ended) return;
    if (ev.kind === 'stopped') {
      if (!this.running) return;
      this.running = false;
      this.gThread = ev.thread;
      this.out.send(stopReply(ev));
      return;
    }
    // the guest is gone: W or X whether gdb was waiting or not, then the end of the session
    this.running = false;
    this.ended = true;
    this.out.send(stopReply(ev));
    this.out.close();
  }

  private reply(r: string | Uint8Array): void {
    if (!this.ended) this.out.send(r);
  }

  private errorOf(r: DebugReply): string {
    return r.ok ? 'OK' : ERRNO[r.error];
  }

  private async dispatch(data: Buffer): Promise<void> {
    if (this.ended) return;
    const p = data.toString('latin1');
    if (this.running) {
      // all-stop: gdb waits for the stop reply before it says anything but Ctrl-C
      this.reply(ERRNO.busy);
      return;
    }
    switch (p[0]) {
      case '?': return this.reply(stopReply(this.link.currentStop() ?? { kind: 'stopped', thread: this.gThread, signal: 5 }));
      case 'g': return this.readRegisters();
      case 'G': return this.writeRegisters(p.slice(1));
      case 'p': return this.readRegister(p.slice(1));
      case 'P': return this.writeRegister(p.slice(1));
      case 'm': return this.readMemory(p.slice(1));
      case 'M': return this.writeMemoryHex(p.slice(1));
      case 'X': return this.writeMemoryBinary(data);
      case 'c': case 's': return this.resume(p[0] === 's', p.slice(1));
      case 'C': case 'S': {
        // continue/step "with signal": there are no signals to deliver to a bare CPU; the address after ';'
        const semi = p.indexOf(';');
        return this.resume(p[0] === 'S', semi < 0 ? '' : p.slice(semi + 1));
      }
      case 'v': return this.vPacket(p);
      case 'H': return this.setThread(p.slice(1));
      case 'T': return this.reply(this.threadOf(p.slice(1)) !== undefined ? 'OK' : E_INVALID);
      case 'Z': case 'z': return this.breakpoint(p[0] === 'Z', p.slice(1));
      case 'k': return this.kill();
      case 'D': return this.detach();
      case 'q': return this.query(p);
      case 'Q':
        if (p === 'QStartNoAckMode') {
          this.reply('OK');
          this.out.startNoAck();
          return;
        }
        return this.reply('');
      default: return this.reply('');
    }
  }

  // ---- registers ----

  /** The g packet: the 16 general registers, then the x87 ones (unavailable, 'x's, if the vCPU has no
   *  CPU yet). */
  private async readRegisters(): Promise<void> {
    const r = await this.link.request(this.gThread, { op: 'readRegisters' });
    if (!r.ok || r.values === undefined) return this.reply(this.errorOf(r));
    const f = await this.link.request(this.gThread, { op: 'readFpu' });
    const fpu = f.ok && f.data !== undefined ? bytesToHex(f.data) : 'xx'.repeat(GDB_FPU_BYTES);
    this.reply(r.values.map(le32Hex).join('') + fpu);
  }

  /** G: the general registers, and the x87 ones if the packet goes on (a register given as 'x's is left). */
  private async writeRegisters(hex: string): Promise<void> {
    if (hex.length === 0 || hex.length % 8 !== 0) return this.reply(E_INVALID);
    const values: number[] = [];
    let i = 0;
    for (; i < hex.length && values.length < GDB_REG_COUNT; i += 8) {
      const chunk = hex.slice(i, i + 8);
      // 'x' digits: a register gdb does not know; leave it
      const v = /^x+$/i.test(chunk) ? NaN : parseLe32(chunk);
      if (v === undefined) return this.reply(E_INVALID);
      values.push(v);
    }
    const fpu: Array<[number, Uint8Array]> = [];
    for (let n = GDB_ST0; n < GDB_FPU_END && i < hex.length; n++) {
      const chunk = hex.slice(i, i + 2 * gdbRegSize(n));
      i += chunk.length;
      if (/^x+$/i.test(chunk)) continue;
      const bytes = chunk.length === 2 * gdbRegSize(n) ? hexToBytes(chunk) : undefined;
      if (bytes === undefined) return this.reply(E_INVALID);
      fpu.push([n, bytes]);
    }
    const r = await this.link.request(this.gThread, { op: 'writeRegisters', values });
    if (!r.ok) return this.reply(this.errorOf(r));
    for (const [reg, data] of fpu) {
      const w = await this.link.request(this.gThread, { op: 'writeFpuRegister', reg, data });
      if (!w.ok) return this.reply(this.errorOf(w));
    }
    this.reply('OK');
  }

  private async readRegister(arg: string): Promise<void> {
    const n = parseHex(arg);
    if (n === undefined) return this.reply(E_INVALID);
    if (n >= GDB_ST0) {
      if (n >= GDB_FPU_END) return this.reply(n === ORIG_EAX ? 'xxxxxxxx' : E_INVALID);
      const f = await this.link.request(this.gThread, { op: 'readFpu' });
      if (!f.ok || f.data === undefined) return this.reply(f.ok ? E_INVALID : this.errorOf(f));
      const off = n < GDB_ST0 + 8 ? (n - GDB_ST0) * 10 : 80 + (n - GDB_ST0 - 8) * 4;
      return this.reply(bytesToHex(f.data.subarray(off, off + gdbRegSize(n))));
    }
    const r = await this.link.request(this.gThread, { op: 'readRegisters' });
    if (!r.ok || r.values === undefined) return this.reply(this.errorOf(r));
    this.reply(le32Hex(r.values[n]));
  }

  private async writeRegister(arg: string): Promise<void> {
    const eq = arg.indexOf('=');
    const n = eq < 0 ? undefined : parseHex(arg.slice(0, eq));
    const hex = eq < 0 ? '' : arg.slice(eq + 1);
    // orig_eax: gdb's GNU/Linux flavour writes -1 there whenever it moves the PC (no system call to
    // restart); there is no such thing on a bare CPU, so the write is accepted and means nothing
    if (n === ORIG_EAX && parseLe32(hex) !== undefined) return this.reply('OK');
    if (n !== undefined && n >= GDB_ST0 && n < GDB_FPU_END) {
      const bytes = hex.length === 2 * gdbRegSize(n) ? hexToBytes(hex) : undefined;
      if (bytes === undefined) return this.reply(E_INVALID);
      return this.reply(this.errorOf(await this.link.request(this.gThread, { op: 'writeFpuRegister', reg: n, data: bytes })));
    }
    const v = parseLe32(hex);
    if (n === undefined || v === undefined || n >= GDB_REG_COUNT) return this.reply(E_INVALID);
    this.reply(this.errorOf(await this.link.request(this.gThread, { op: 'writeRegister', reg: n, value: v })));
  }

  // ---- memory ----

  /** "ADDR,LEN" (and the rest after `sep`, if one is given). */
  private addrLen(s: string): { addr: number; len: number } | undefined {
    const comma = s.indexOf(',');
    if (comma < 0) return undefined;
    const addr = parseHex(s.slice(0, comma));
    const len = parseHex(s.slice(comma + 1));
    if (addr === undefined || len === undefined || len > MAX_PACKET) return undefined;
    return { addr, len };
  }

  private async readMemory(arg: string): Promise<void> {
    const al = this.addrLen(arg);
    if (al === undefined) return this.reply(E_INVALID);
    // the reply holds two hex digits a byte
    const len = Math.min(al.len, (MAX_PACKET - 4) >> 1);
    const r = await this.link.request(this.gThread, { op: 'readMemory', addr: al.addr, len });
    if (!r.ok || r.data === undefined) return this.reply(this.errorOf(r));
    this.reply(bytesToHex(r.data));
  }

  private async writeMemoryHex(arg: string): Promise<void> {
    const colon = arg.indexOf(':');
    const al = colon < 0 ? undefined : this.addrLen(arg.slice(0, colon));
    const data = colon < 0 ? undefined : hexToBytes(arg.slice(colon + 1));
    if (al === undefined || data === undefined || data.length !== al.len) return this.reply(E_INVALID);
    await this.writeMemory(al.addr, data);
  }

  private async writeMemoryBinary(packet: Buffer): Promise<void> {
    const colon = packet.indexOf(0x3a);
    const al = colon < 0 ? undefined : this.addrLen(packet.subarray(1, colon).toString('latin1'));
    const data = colon < 0 ? undefined : unescapeBinary(packet.subarray(colon + 1));
    if (al === undefined || data === undefined || data.length !== al.len) return this.reply(E_INVALID);
    await this.writeMemory(al.addr, data);
  }

  private async writeMemory(addr: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return this.reply('OK'); // gdb probes X support with an empty write
    this.reply(this.errorOf(await this.link.request(this.gThread, { op: 'writeMemory', addr, data })));
  }

  // ---- running ----

  private resume(step: boolean, addrText: string, thread?: number): void {
    let addr: number | undefined;
    if (addrText !== '') {
      addr = parseHex(addrText);
      if (addr === undefined) return this.reply(E_INVALID);
    }
    const action: ResumeAction = { addr };
    if (step) action.step = thread ?? this.gThread;
    this.running = true;
    this.link.resume(action);
  }

  private vPacket(p: string): void {
    if (p === 'vCont?') return this.reply('vCont;c;C;s;S');
    if (p.startsWith('vCont;')) return this.vCont(p.slice(6));
    if (p.startsWith('vKill')) {
      this.reply('OK');
      return this.kill();
    }
    // vMustReplyEmpty, vFile, vRun, vAttach ...: not supported
    return this.reply('');
  }

  /** vCont;ACTION[:THREAD];...: the first action that applies to a thread decides for it (gdb's rule).
   *  A step of one thread steps it alone; otherwise a continue for any thread continues the guest. */
  private vCont(actions: string): void {
    let stepThread: number | undefined;
    let cont = false;
    for (const part of actions.split(';')) {
      const [act, tid] = part.split(':');
      const kind = act[0];
      if (kind !== 'c' && kind !== 'C' && kind !== 's' && kind !== 'S') return this.reply(E_INVALID);
      const thread = tid === undefined ? undefined : this.threadOf(tid);
      if (tid !== undefined && thread === undefined) return this.reply(E_INVALID);
      if ((kind === 's' || kind === 'S') && stepThread === undefined) stepThread = thread ?? this.gThread;
      else if (kind === 'c' || kind === 'C') cont = true;
    }
    if (stepThread === undefined && !cont) return this.reply(E_INVALID);
    this.resume(stepThread !== undefined, '', stepThread);
  }

  private kill(): void {
    this.ended = true;
    this.running = false;
    this.link.kill();
    this.out.close();
  }

  private detach(): void {
    this.reply('OK');
    this.ended = true;
    this.log('gdb: detached; the guest runs on');
    this.link.detach();
    this.out.close();
  }

  // ---- threads ----

  /** A thread id as gdb writes it: hex, -1 (all) or 0 (any); undefined when not one of ours. */
  private threadOf(s: string): number | undefined {
    if (s === '-1' || s === '0') return this.link.threads[0];
    const t = parseHex(s);
    return t !== undefined && this.link.threads.includes(t) ? t : undefined;
  }

  private setThread(arg: string): void {
    const op = arg[0];
    const t = this.threadOf(arg.slice(1));
    if (t === undefined || (op !== 'g' && op !== 'c')) return this.reply(E_INVALID);
    if (op === 'g') this.gThread = t;
    // Hc: all-stop with vCont, the thread that steps is named in each vCont; nothing to keep
    this.reply('OK');
  }

  // ---- queries ----

  private query(p: string): void {
    if (p.startsWith('qSupported')) return this.reply(SUPPORTED);
    if (p === 'qAttached' || p.startsWith('qAttached:')) return this.reply('1'); // quitting gdb detaches
    if (p === 'qC') return this.reply(`QC${this.gThread.toString(16)}`);
    if (p === 'qfThreadInfo') return this.reply('m' + this.link.threads.map((t) => t.toString(16)).join(','));
    if (p === 'qsThreadInfo') return this.reply('l');
    if (p.startsWith('qThreadExtraInfo,')) {
      const t = this.threadOf(p.slice('qThreadExtraInfo,'.length));
      return this.reply(t === undefined ? E_INVALID : textToHex(`vCPU ${t - 1}`));
    }
    if (p.startsWith('qXfer:features:read:')) return this.features(p.slice('qXfer:features:read:'.length));
    if (p === 'qSymbol::') return this.reply('OK');
    return this.reply('');
  }

  /** qXfer:features:read:ANNEX:OFFSET,LENGTH: a piece of target.xml ('m' more follows, 'l' last). */
  private features(arg: string): void {
    const colon = arg.lastIndexOf(':');
    const annex = arg.slice(0, colon);
    const al = colon < 0 ? undefined : this.addrLen(arg.slice(colon + 1));
    if (al === undefined) return this.reply(E_INVALID);
    if (annex !== 'target.xml') return this.reply('E00');
    const piece = TARGET_XML.slice(al.addr, al.addr + Math.min(al.len, MAX_PACKET - 8));
    this.reply((al.addr + piece.length >= TARGET_XML.length ? 'l' : 'm') + piece);
  }

  // ---- breakpoints ----

  /** Z/z TYPE,ADDR,KIND: instruction breakpoints (0, 1) and watchpoints (2 write, 3 read, 4 access). Set
   *  on every vCPU: gdb's breakpoints belong to the program, not to a thread. */
  private async breakpoint(insert: boolean, arg: string): Promise<void> {
    const parts = arg.split(';')[0].split(',');
    if (parts.length !== 3) return this.reply(E_INVALID);
    const type = parseHex(parts[0]);
    const addr = parseHex(parts[1]);
    const len = parseHex(parts[2]);
    if (type === undefined || addr === undefined || len === undefined) return this.reply(E_INVALID);
    if (type > 4) return this.reply(''); // a kind we do not know: "not supported"
    const req: DebugRequest = { op: insert ? 'insertBreakpoint' : 'removeBreakpoint', type: type as BreakpointType, addr, len };
    let result: DebugReply = { ok: true };
    for (const t of this.link.allThreads ?? this.link.threads) {
      const r = await this.link.request(t, req);
      if (!r.ok) result = r;
    }
    this.reply(this.errorOf(result));
  }
}

/** How long a closing connection may take to flush before it is cut. */
const CLOSE_GRACE_MS = 2000;

/** [L:620] The gdb server: listens on 127.0.0.1 only (the protocol has no authentication: anyone who
 * can connect owns the guest), serves one gdb, and closes the port when that gdb has gone.
 */
export class GdbServer {
  private session: GdbSession | undefined;
  private socket: Socket | undefined;
  private finished = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly link: DebugLink,
    private readonly log: (msg: string) => void,
  ) {
    link.onEvent = (ev) => this.session?.event(ev);
    server.on('connection', (s) => this.accept(s));
    server.on('error', (e) => this.log(`gdb: server error: ${e.message}`));
  }

  /** Listen on 127.0.0.1:port (0: any free port; `port` says which). Bad ports and ports in use are the
   *  user's error. */
  static listen(link: DebugLink, port: number, log: (msg: string) => void): Promise<GdbServer> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new UserError(`--gdb: cannot listen on 127.0.0.1:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.code ?? e.message}`));
      });
      server.listen(port, '127.0.0.1', () => {
        server.removeAllListeners('error');
        const addr = server.address();
        const actual = typeof addr === 'object' && addr !== null ? addr.port : port;
        resolve(new GdbServer(server, actual, link, log));
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.session !== undefined || this.finished) {
      socket.destroy(); // one gdb at a time, and none once the first has gone
      return;
    }
    this.socket = socket;
    socket.setNoDelay(true);
    const parser = new PacketParser();
    let ack = true;
    let last: Buffer | undefined;
    const send = (payload: string | Uint8Array) => {
      last = framePacket(payload);
      if (!socket.destroyed) socket.write(last);
    };
    const session = new GdbSession(this.link, {
      send,
      startNoAck: () => { ack = false; },
      close: () => this.closeSocket(),
    }, this.log);
    this.session = session;
    this.log(`gdb: connected from ${socket.remoteAddress}:${socket.remotePort}`);

    socket.on('data', (chunk: Buffer) => {
      for (const ev of parser.feed(chunk)) {
        switch (ev.type) {
          case 'packet':
            if (ack && !socket.destroyed) socket.write('+');
            session.packet(ev.data);
            break;
          case 'bad':
            if (ack && !socket.destroyed) socket.write('-');
            break;
          case 'nak':
            if (ack && last !== undefined && !socket.destroyed) socket.write(last);
            break;
          case 'interrupt':
            session.interrupt();
            break;
          case 'ack':
            break;
        }
      }
    });
    socket.on('error', () => { /* a reset connection ends in 'close' below */ });
    socket.on('close', () => {
      if (!session.ended) {
        // gdb vanished without k or D: as if it had detached
        session.ended = true;
        this.log('gdb: connection closed; the guest runs on without the debugger');
        this.link.detach();
      }
      this.socket = undefined;
      this.stopListening();
    });
  }

  private closeSocket(): void {
    const s = this.socket;
    if (s === undefined || s.destroyed) return;
    const timer = setTimeout(() => s.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    s.end(() => {
      clearTimeout(timer);
      s.destroy();
    });
  }

  private stopListening(): void {
    this.finished = true;
    if (this.server.listening) this.server.close();
  }

  /** The guest has ended (or was killed): tell gdb if it is still there, then close everything. */
  async finish(ev: DebugEvent): Promise<void> {
    this.finished = true;
    this.session?.event(ev);
    const s = this.socket;
    if (s !== undefined && !s.destroyed) {
      this.closeSocket();
      await new Promise<void>((res) => s.once('close', () => res()));
    }
    if (this.server.listening) await new Promise<void>((res) => this.server.close(() => res()));
  }
}
