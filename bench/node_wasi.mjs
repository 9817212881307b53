// Runs a wasm32-wasi command program on node the way `kobako-wasm run
// MODULE.wasm [ARG...]` does: node:wasi's preview 1, with the module path and
// ARGs as the program's arguments, no environment and no preopened
// directories, node's own stdio; exits with the program's exit code.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [path, ...args] = process.argv.slice(2);
if (!path) {
  process.stderr.write('usage: node --no-warnings node_wasi.mjs MODULE.wasm [ARG...]\n');
  process.exit(1);
}
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env: {} });
const module = await WebAssembly.compile(readFileSync(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
let code;
try {
  code = wasi.start(instance);
} catch (error) {
  process.stderr.write(`node_wasi: trap: ${error.message}\n`);
  process.exit(2);
}
process.exit(code);
