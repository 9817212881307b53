// diff_runner.js — node diff_runner.js MODULE.wasm: instantiates a module
// gen.c made portable and calls its exports in order on node's engine (V8),
// printing each outcome as fuzz_wasmgen does ("r0: i32:1 i64:2", "r1: trap
// MESSAGE"), for diff_engines.rb to compare.
"use strict";
const fs = require("fs");

function show(v) {
  if (typeof v === "bigint") return "i64:" + BigInt.asUintN(64, v).toString();
  return "i32:" + (v >>> 0).toString();
}

function why(e) {
  if (e instanceof WebAssembly.Exception) return "uncaught exception";
  if (e instanceof RangeError) return "call stack exhausted";
  return String(e && e.message ? e.message : e);
}

let instance;
try {
  instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(process.argv[2])), {});
} catch (e) {
  if (e instanceof WebAssembly.CompileError || e instanceof WebAssembly.LinkError) {
    console.log("refused: " + e.message);
    process.exit(0);
  }
  console.log("instantiate: trap " + why(e));
  process.exit(0);
}
const lines = [];
for (const [name, f] of Object.entries(instance.exports)) {
  if (typeof f !== "function") continue;
  try {
    const r = f();
    const all = r === undefined ? [] : Array.isArray(r) ? r : [r];
    lines.push(name + ":" + all.map((v) => " " + show(v)).join(""));
  } catch (e) {
    lines.push(name + ": trap " + why(e));
  }
}
console.log(lines.join("\n"));
