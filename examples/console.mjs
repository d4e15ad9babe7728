// Talk to a guest: boot the bundled `virtcon` guest (a virtio console driver that reads N bytes of input
// and echoes them), type into its console, and read its console as an async iterator.
//   node examples/console.mjs [TEXT]
import { boot } from 'lguest-ts';

const text = process.argv[2] ?? 'ping!';
const guest = boot({ image: 'virtcon', cmdline: `input=${text.length}`, timeoutSec: 30 });
guest.write(text); // held until the guest's driver offers input buffers
let seen = '';
for await (const chunk of guest.console) {
  seen += Buffer.from(chunk).toString('latin1');
  process.stdout.write(chunk);
}
const { fate, exitStatus } = await guest.result;
console.log(`the guest ${seen.includes(text) ? 'echoed' : 'did NOT echo'} "${text}"; ${fate.kind}, exit status ${exitStatus}`);
process.exitCode = exitStatus;
