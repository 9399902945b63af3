// twinbench's JavaScript runtime: one exported ONNX twin reloaded in onnxruntime-node.
//
//   node ort.mjs MODEL INPUT.json OUT_DIR CALLS WARMUP BUDGET_S THREADS
//
// The protocol shared by every foreign harness (runtimes/README.md): INPUT.json names a raw
// little-endian tensor and its dtype and shape; the harness writes to OUT_DIR the logits of
// each sample run at batch 1 (batch1.bin), of the whole batch in one call (batchn.bin), and
// result.json (versions, load time, its own timings). On an error it writes result.json with
// {"error": one line, "stage"} and exits 1: the driver records that line, never a trace.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modelPath, inputPath, outDir, calls, warmup, budgetS, threads] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const result = { language: "JavaScript", versions: { node: process.versions.node } };
let stage = "import";

const TYPES = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array };

function readInput(ort) {
  const header = JSON.parse(fs.readFileSync(inputPath, "utf8"));
  const raw = fs.readFileSync(path.resolve(path.dirname(inputPath), header.data));
  const Typed = TYPES[header.dtype];
  if (!Typed) throw new Error(`unsupported input dtype ${header.dtype}`);
  // A copy: the Buffer's byte offset inside Node's pool need not be aligned for the view.
  const all = new Typed(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const per = all.length / header.shape[0];
  const rows = (i, n) => new ort.Tensor(header.dtype, all.slice(i * per, (i + n) * per),
                                        [n, ...header.shape.slice(1)]);
  return { n: header.shape[0], rows };
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function main() {
  const ort = require("onnxruntime-node");
  result.versions["onnxruntime-node"] = require("onnxruntime-node/package.json").version;
  stage = "load";
  let t0 = process.hrtime.bigint();
  // intra-op threads as in the Python runtime; one inter-op thread; the CPU provider only.
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ["cpu"], intraOpNumThreads: Number(threads), interOpNumThreads: 1,
  });
  result.load_ms = ms(t0);
  result.settings = { executionProviders: ["cpu"], intraOpNumThreads: Number(threads) };
  stage = "run";
  const { n, rows } = readInput(ort);
  const [inName] = session.inputNames;
  const [outName] = session.outputNames;
  const infer = async (x) => (await session.run({ [inName]: x }))[outName];
  const ones = [];
  for (let i = 0; i < n; i++) {
    t0 = process.hrtime.bigint();
    const y = await infer(rows(i, 1));
    if (i === 0) result.first_call_ms = ms(t0);
    ones.push(Buffer.from(Float32Array.from(y.data).buffer));
  }
  fs.writeFileSync(path.join(outDir, "batch1.bin"), Buffer.concat(ones));
  try {
    const y = await infer(rows(0, n));
    fs.writeFileSync(path.join(outDir, "batchn.bin"), Buffer.from(Float32Array.from(y.data).buffer));
  } catch (e) {  // a static batch of 1 is a finding, not a failure
    result.batch_n_error = String(e.message).split("\n")[0];
  }
  result.latency_ms = await timeCalls(() => infer(rows(0, 1)));
}

// As twinbench.measure.timing.time_calls: warm-up calls, then up to CALLS timed calls,
// stopping once the timed calls have spent BUDGET_S.
async function timeCalls(fn) {
  for (let i = 0; i < Number(warmup); i++) await fn();
  const out = [];
  let spent = 0;
  for (let i = 0; i < Number(calls) && spent < Number(budgetS) * 1e3; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(ms(t0));
    spent += out[out.length - 1];
  }
  return out;
}

try {
  await main();
  fs.writeFileSync(path.join(outDir, "result.json"), JSON.stringify(result));
} catch (e) {
  const line = String(e && e.message ? e.message : e).split("\n").find((l) => l.trim()) || "error";
  fs.writeFileSync(path.join(outDir, "result.json"),
                   JSON.stringify({ ...result, stage, error: `${e?.name || "Error"}: ${line}` }));
  process.exitCode = 1;
}
