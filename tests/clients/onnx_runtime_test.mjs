// ONNX Runtime (onnxruntime-node, CPU) runs a model `retort export --format onnx` wrote, on real
// Fashion-MNIST test images, and its logits must equal retort's own within a tolerance.
// The input normalisation is taken from the file's metadata, as any user of the file would.
// Usage: node onnx_runtime_test.mjs MODEL.onnx LOGITS.json DATASET_DIR
//   LOGITS.json: `retort eval --logits-out` on the first N test images (N >= 14), in order.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';

const TOLERANCE = 1e-5;  // max |onnx - retort| over every logit; measured about 1e-7 (float32 sums in another order)
const [modelPath, logitsPath, datasetDir] = process.argv.slice(2);
let failures = 0;
const check = (what, ok) => {
  console.log(`${ok ? 'ok' : 'FAIL'}: ${what}`);
  if (!ok) failures += 1;
};

// ---- the file's metadata_props (ModelProto field 14: key 1, value 2), read from the wire format
function readVarint(buf, pos) {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
  }
}

// Calls onField(field number, bytes) for each length-delimited field; skips the rest.
function forEachField(buf, onField) {
  let pos = 0;
  while (pos < buf.length) {
    let key, len;
    [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) [, pos] = readVarint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      [len, pos] = readVarint(buf, pos);
      onField(field, buf.subarray(pos, pos + len));
      pos += len;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
}

function metadataProps(bytes) {
  const props = {};
  forEachField(bytes, (field, entry) => {
    if (field !== 14) return;
    const kv = {};
    forEachField(entry, (f, b) => { kv[f] = Buffer.from(b).toString('utf8'); });
    props[kv[1]] = kv[2];
  });
  return props;
}

// ---- Fashion-MNIST test split (IDX, gzip): big-endian header, then unsigned bytes
function readIdx(path) {
  const buf = gunzipSync(readFileSync(path));
  const ndims = buf[3];
  const dims = [];
  for (let i = 0; i < ndims; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  return { dims, data: buf.subarray(4 + 4 * ndims) };
}

const modelBytes = readFileSync(modelPath);
const meta = metadataProps(modelBytes);
const mean = Number(meta['normalize.mean']), std = Number(meta['normalize.std']);
check(`the file states its preprocessing: ${meta.preprocessing}`, Number.isFinite(mean) && std > 0);

const reference = JSON.parse(readFileSync(logitsPath, 'utf8'));
const n = reference.logits.length, classes = reference.logits[0].length;
const images = readIdx(`${datasetDir}/t10k-images-idx3-ubyte.gz`);
const labels = readIdx(`${datasetDir}/t10k-labels-idx1-ubyte.gz`);
const [, h, w] = images.dims;
check(`retort's logits are of the first ${n} test images (labels agree)`,
      n >= 14 && reference.labels.every((y, i) => y === labels.data[i]));

const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1, executionProviders: ['cpu'] });
check(`input ${session.inputNames} and output ${session.outputNames}`,
      session.inputNames.join() === 'images' && session.outputNames.join() === 'logits');
const inputShape = session.inputMetadata[0].shape;
check(`input shape ${JSON.stringify(inputShape)} has a symbolic batch`,
      JSON.stringify(inputShape) === JSON.stringify(['batch', 1, h, w]));

// images [first, first + count) as normalised (count, 1, H, W) float32
function batch(first, count) {
  const x = new Float32Array(count * h * w);
  const pixels = images.data.subarray(first * h * w, (first + count) * h * w);
  for (let i = 0; i < x.length; i++) x[i] = (pixels[i] / 255 - mean) / std;
  return new ort.Tensor('float32', x, [count, 1, h, w]);
}

// Runs the model on batches of `size` over the first `count` images; returns the largest
// |onnx - retort| and whether every argmax agrees.
async function compare(size, count) {
  let maxDiff = 0, sameClass = true;
  for (let first = 0; first < count; first += size) {
    const { logits } = await session.run({ images: batch(first, size) });
    if (logits.dims.join() !== `${size},${classes}`) throw new Error(`logits have shape ${logits.dims}`);
    for (let i = 0; i < size; i++) {
      const want = reference.logits[first + i], got = logits.data.subarray(i * classes, (i + 1) * classes);
      want.forEach((v, c) => { maxDiff = Math.max(maxDiff, Math.abs(got[c] - v)); });
      sameClass &&= got.indexOf(Math.max(...got)) === want.indexOf(Math.max(...want));
    }
  }
  return { maxDiff, sameClass };
}

for (const size of [1, 7]) {
  const { maxDiff, sameClass } = await compare(size, 14);
  check(`batch ${size}: max |onnx - retort| = ${maxDiff.toExponential(2)} over 14 images (tolerance ${TOLERANCE})`,
        maxDiff <= TOLERANCE);
  check(`batch ${size}: the same predicted class for every image`, sameClass);
}
process.exit(failures === 0 ? 0 : 1);
