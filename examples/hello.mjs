// Boot the bundled `hello` lguest guest, print its console as it comes and how it ended.
//   node examples/hello.mjs [--pae]
import { run, version } from 'lguest-ts';

const pae = process.argv.includes('--pae');
const r = await run({
  image: 'hello',
  pae,
  cmdline: 'from=examples/hello.mjs',
  onConsole: (bytes) => process.stdout.write(bytes),
});
console.log(`lguest-ts ${version}: the guest ended: ${r.fate.kind}, exit status ${r.exitStatus}`);
if (r.mode === 'lguest') {
  console.log(`${r.stats.vcpus[0].instructions} instructions, ${r.stats.host.hypercalls.SET_PTE ?? 0} SET_PTE hypercalls, ` +
    `${r.stats.host.faultsFixed} page faults fixed by the shadow`);
}
process.exitCode = r.exitStatus;
