// Runs skiff model components in Node.js through jco: for each job in the JSON file named by
// the first argument,
// {"id", "component": PATH, "inputs": [{"name", "datatype", "shape", "data"}]}, it transpiles the
// component, calls skiff:model/predictor's predict, and prints {ID: {OUTPUT: [values...]}}, or
// {ID: {"error": {tag, val}}} when the component answers with an error. A job without inputs
// asks for the model's description instead: {ID: {"describe": {name, inputs, outputs, ...}}}.
//
// Run from a folder whose node_modules holds tests/component/package.json's packages.
import { transpile } from '@bytecodealliance/jco';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const arrays = {
  bool: (v) => v.map(Boolean),
  int32: (v) => Int32Array.from(v),
  int64: (v) => BigInt64Array.from(v.map(BigInt)),
  // null: a missing number (JSON has no NaN).
  fp32: (v) => Float32Array.from(v, (x) => (x === null ? NaN : x)),
  fp64: (v) => Float64Array.from(v, (x) => (x === null ? NaN : x)),
  bytes: (v) => v.map(String),
};
const plain = (v) => Array.from(v, (x) => (typeof x === 'bigint' ? Number(x) : x));

const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const here = dirname(new URL(import.meta.url).pathname);
const results = {};
for (const job of jobs) {
  const { files } = await transpile(readFileSync(job.component), { name: 'model' });
  const out = join(here, `c${job.id}`);
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(out, name)), { recursive: true });
    writeFileSync(join(out, name), bytes);
  }
  writeFileSync(join(out, 'package.json'), '{"type": "module"}');
  const { predictor } = await import(pathToFileURL(join(out, 'model.js')));
  if (!job.inputs) {
    const d = predictor.describe();
    const spec = (s) => ({ name: s.name, datatype: s.datatype, shape: plain(s.shape) });
    results[job.id] = {
      describe: { ...d, inputs: d.inputs.map(spec), outputs: d.outputs.map(spec) },
    };
    continue;
  }
  const inputs = job.inputs.map((t) => ({
    name: t.name,
    shape: BigUint64Array.from(t.shape.map(BigInt)),
    data: { tag: t.datatype, val: arrays[t.datatype](t.data) },
  }));
  try {
    const outputs = predictor.predict(inputs);
    results[job.id] = Object.fromEntries(outputs.map((t) => [t.name, plain(t.data.val)]));
  } catch (e) {
    results[job.id] = { error: e.payload ?? { tag: 'thrown', val: String(e) } };
  }
}
process.stdout.write(JSON.stringify(results));
