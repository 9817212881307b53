// Runs one export of a self-contained wasm module on node, the way
// `kobako-wasm invoke MODULE.wasm FUNCTION [ARG...]` does: prints each result
// on its own line (i32:42, i64:..., f32:..., f64:...), exits 2 on a trap, and
// reports the call's own time (process.hrtime) as `call_ms:X` on stderr.
import { readFileSync } from 'node:fs';

function fail(message, code = 1) {
  process.stderr.write(`node_invoke: ${message}\n`);
  process.exit(code);
}

const [path, name, ...rawArgs] = process.argv.slice(2);
if (!path || !name) fail('usage: node node_invoke.mjs MODULE.wasm FUNCTION [ARG...]');

// The JS API hides an export's signature, and the result labels and argument
// kinds depend on it, so read it from the type, function and export sections.
function signature(bytes, exportName) {
  const VALTYPES = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x70: 'funcref', 0x6f: 'externref' };
  let pos = 8;
  const u32 = () => {
    let result = 0, shift = 0, byte;
    do {
      byte = bytes[pos++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  const types = [], funcTypes = [];
  let funcIndex = -1;
  while (pos < bytes.length) {
    const id = bytes[pos++], size = u32(), end = pos + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        pos++;
        const params = Array.from({ length: u32() }, () => VALTYPES[bytes[pos++]]);
        const results = Array.from({ length: u32() }, () => VALTYPES[bytes[pos++]]);
        types.push({ params, results });
      }
    } else if (id === 2 && u32() > 0) {
      fail(`${path} has imports; only self-contained modules can be run`);
    } else if (id === 3) {
      for (let n = u32(); n > 0; n--) funcTypes.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const len = u32();
        const field = Buffer.from(bytes.subarray(pos, pos + len)).toString('utf8');
        pos += len;
        const kind = bytes[pos++], index = u32();
        if (kind === 0 && field === exportName) funcIndex = index;
      }
    }
    pos = end;
  }
  if (funcIndex < 0) fail(`${path} exports no function '${exportName}'`);
  return types[funcTypes[funcIndex]];
}

const bytes = readFileSync(path);
const sig = signature(bytes, name);
if (rawArgs.length !== sig.params.length) {
  fail(`'${name}' takes ${sig.params.length} argument(s), got ${rawArgs.length}`);
}
const args = rawArgs.map((text, i) => {
  if (sig.params[i] === 'i64') return BigInt(text);
  const value = Number(text);
  if (Number.isNaN(value) && !/^[+-]?nan$/i.test(text)) fail(`argument '${text}' is not a number`);
  return value;
});

const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
const fn = instance.exports[name];
const start = process.hrtime.bigint();
let results;
try {
  results = fn(...args);
} catch (error) {
  fail(`trap: ${error.message}`, 2);
}
const elapsed = process.hrtime.bigint() - start;

results = sig.results.length === 1 ? [results] : (results ?? []);
sig.results.forEach((type, i) => process.stdout.write(`${type}:${results[i]}\n`));
process.stderr.write(`call_ms:${(Number(elapsed) / 1e6).toFixed(3)}\n`);
