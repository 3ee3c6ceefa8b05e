// Runs a WASI preview-1 command in Node.js's own WASI host (no component model, no jco):
//   node run-module.mjs MODULE [ARGS...]
// with this process's stdin, stdout and stderr; exits with the module's exit status.
import { readFile } from 'node:fs/promises';
import { argv, exit } from 'node:process';
import { WASI } from 'node:wasi';

const [module, ...args] = argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [module, ...args], env: {}, returnOnExit: true });
const wasm = await WebAssembly.compile(await readFile(module));
const instance = await WebAssembly.instantiate(wasm, wasi.getImportObject());
exit(wasi.start(instance));
