/** Why the machine stopped running and returned to its caller. One enum for every exit, one line each. */
export const enum ExitReason {
  /** Still running (never returned). */
  None = 0,
  /** The instruction budget of this slice ran out; call run() again to continue. */
  Budget = 1,
  /** HLT executed; `cpu.eip` is after the HLT. With IF clear nothing can wake the CPU. */
  Hlt = 2,
  /** An exception was raised and the CPU is configured to stop at exceptions instead of delivering
   *  them (cpu-test); `cpu.exceptionVector`, `cpu.exceptionError` and `cpu.exceptionEip` say which. */
  Exception = 3,
  /** A fault while delivering a double fault: the CPU would shut down. Registers are as they were. */
  TripleFault = 4,
  /** A device asked to end the run (isa-debug-exit, power-off); see the device's status. */
  DeviceStop = 5,
  /** Someone outside the vCPU rang its doorbell (pause, interrupt, stop request). */
  Doorbell = 6,
  /** The CPU hit something lguest-ts does not implement (task switch through a task gate, ...);
   *  `cpu.exitMessage` says what. */
  Unsupported = 7,
  /** A single instruction was executed in step mode. */
  Step = 8,
  /** A debug breakpoint set by the host-side debugger was hit. */
  Breakpoint = 9,
}

export const EXIT_NAMES: Record<number, string> = {
  0: 'none', 1: 'budget', 2: 'hlt', 3: 'exception', 4: 'triple-fault', 5: 'device-stop', 6: 'doorbell',
  7: 'unsupported', 8: 'step', 9: 'breakpoint',
};

/** Thrown (as this one object, never allocated) when an instruction faults; the exception has already
 *  been delivered, or recorded for an exit, by the time it propagates. */
export const FAULT = { fault: true } as const;
