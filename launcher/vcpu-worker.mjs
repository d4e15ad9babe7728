// The entry of a vCPU worker thread (docs/design.md "vCPUs and threads"): a worker does not inherit tsx's
// loader, so register it here and then load the TypeScript module that runs the vCPU.
import { register } from 'tsx/esm/api';

register();
await import('./vcpu-worker.ts');
