// llama.cpp (through node-llama-cpp, CPU build, nothing downloaded) runs GGUF files that
// `retort export` wrote, and must agree with retort on the same model:
//   - tokenization: llama.cpp's ids for each prompt equal retort's, and llama.cpp detokenizes
//     retort's ids back to the prompt;
//   - next-token log-probabilities: at every position of a greedy continuation, llama.cpp's
//     logprobs of retort's top-K tokens (log-softmax of its raw logits over the whole vocabulary)
//     are within the stated tolerance of retort's, and llama.cpp's argmax is retort's greedy token,
//     except at a near tie: where retort's logprobs of the two tokens differ by less than twice
//     the difference measured at that position (counted and printed).
// retort's numbers come from `retort generate --temperature 0 --top-logprobs K`; llama.cpp is fed
// retort's token ids, so a tokenization difference cannot hide a logprob difference.
//
// Usage: node gguf_llama_test.mjs RETORT MODEL_DIR DTYPE=FILE...   (DTYPE: f32 | f16)
import {execFileSync} from "node:child_process";
import {getLlama} from "node-llama-cpp";

// Tolerances on |logprob difference| (nats) against retort's float32 model, for llama.cpp's CPU
// build with its KV cache in F32, so that an f32 file is checked to float32 rounding. Measured on
// the tiny models of tests/e2e/export_gguf_test.sh (and a 1-layer byte model): f32 files 5e-7 to
// 2e-6; f16 files 2e-4 to 2e-3 (weights rounded to float16, and ggml's CPU matrix products with
// F16 weights round the activations to float16 too). With llama.cpp's default F16 KV cache the
// f32 files differ by up to 2e-4 and the f16 files by up to 4e-4.
const TOLERANCE = {f32: 1e-4, f16: 1e-2};
const TOP_K = 5;
const MAX_TOKENS = 8;
// Short prompts (the tiny models see 32 tokens): line breaks, digits, punctuation, non-ASCII.
const PROMPTS = [
    "And God said",
    "In the beginning",
    "\nThe LORD is my",
    "Jesus wept. 11:35",
    "unto thee, O Israel;",
    "naïve café — ok",
];
// Longer text, compared for tokenization only: many merges of the SentencePiece model at work.
const PASSAGE = "In the beginning God created the heaven and the earth.\n" +
    "And the earth was without form, and void; and darkness was upon the face of the deep. " +
    "And the Spirit of God moved upon the face of the waters.\n" +
    "And God said, Let there be light: and there was light.\n\n" +
    "1:5 And God called the light Day, and the darkness he called Night. " +
    "And the evening and the morning were the first day.  (Genesis 1, KJV; 1611)\t\u00e9\u00e8 \u4e2d\u6587 \ud83d\ude00\n";
// Text whose tokenization differs, as a known and checked fact: llama.cpp writes every space
// as U+2581 "▁" before it looks tokens up, so a literal "▁" in the text becomes a space; retort
// keeps it as its three UTF-8 bytes. llama.cpp's ids for such text are retort's ids for the text
// with "▁" replaced by " ".
const KNOWN_DIFFERENT = ["a\u2581b"];

const [retort, modelDir, ...files] = process.argv.slice(2);
if (!retort || !modelDir || files.length === 0) {
    console.error("usage: node gguf_llama_test.mjs RETORT MODEL_DIR DTYPE=FILE...");
    process.exit(2);
}

function retortGreedy(prompt, maxTokens = MAX_TOKENS) {
    const out = execFileSync(retort, ["generate", "--model", modelDir, "--prompt", prompt, "--temperature", "0",
        "--max-tokens", String(maxTokens), "--top-logprobs", String(TOP_K)],
    {encoding: "utf8", env: {...process.env, RETORT_NO_BLAS_WARNING: "1"}, stdio: ["ignore", "pipe", "pipe"]});
    const [head, ...steps] = out.trim().split("\n").map((line) => JSON.parse(line));
    return {promptIds: head.prompt_ids, steps};
}

function retortTokenize(text) {
    return retortGreedy(text, 1).promptIds;
}

// log-softmax over llama.cpp's full vocabulary: Map(token -> logit) -> Map(token -> logprob)
function logSoftmax(logits) {
    const values = [...logits.values()];
    const max = Math.max(...values);
    const lse = max + Math.log(values.reduce((s, v) => s + Math.exp(v - max), 0));
    return new Map([...logits].map(([t, v]) => [t, v - lse]));
}

const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const references = PROMPTS.map((p) => ({prompt: p, ...retortGreedy(p)}));
const passageIds = retortTokenize(PASSAGE);
const knownDifferent = KNOWN_DIFFERENT.map((text) => ({
    text, retortIds: retortTokenize(text), spaceIds: retortTokenize(text.replaceAll("\u2581", " ")),
}));
let failures = 0;
const fail = (what) => {
    console.log(`FAIL: ${what}`);
    failures++;
};

for (const arg of files) {
    const [dtype, file] = arg.split("=");
    const tolerance = TOLERANCE[dtype];
    if (tolerance === undefined || !file) {
        console.error(`bad argument ${arg}: expected f32=FILE or f16=FILE`);
        process.exit(2);
    }
    const model = await llama.loadModel({modelPath: file});
    const context = await model.createContext({
        contextSize: 64, flashAttention: false,
        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    const sequence = context.getSequence();
    const {general, tokenizer} = model.fileInfo.metadata;
    if (general.architecture !== "llama" || tokenizer.ggml.model !== "llama")
        fail(`${file}: architecture ${general.architecture}, tokenizer ${tokenizer.ggml.model}; expected llama, llama`);

    let tokenizedEqual = 0, positions = 0, greedyEqual = 0, nearTies = 0, maxDiff = 0;
    for (const ref of references) {
        const llamaIds = model.tokenize(ref.prompt, false);
        if (same(llamaIds, ref.promptIds)) tokenizedEqual++;
        else fail(`${dtype} tokenization of ${JSON.stringify(ref.prompt)}: llama.cpp ${llamaIds}, retort ${ref.promptIds}`);
        const text = model.detokenize(ref.promptIds, false);
        if (text !== ref.prompt) fail(`${dtype} detokenization: llama.cpp ${JSON.stringify(text)}, expected ${JSON.stringify(ref.prompt)}`);

        // retort's prompt and greedy tokens; logits wherever retort predicted the next one
        const ids = [...ref.promptIds, ...ref.steps.map((s) => s.id)].slice(0, -1);
        const first = ref.promptIds.length - 1;
        const input = ids.map((t, i) => (i >= first ? [t, {generateNext: {logits: true}}] : t));
        await sequence.clearHistory();
        const results = await sequence.controlledEvaluate(input);
        ref.steps.forEach((step, j) => {
            const logprobs = logSoftmax(results[first + j].next.logits);
            let diff = 0;  // at this position
            for (const {id, logprob} of step.top_logprobs) diff = Math.max(diff, Math.abs(logprobs.get(id) - logprob));
            maxDiff = Math.max(maxDiff, diff);
            positions++;
            const [best] = [...logprobs].reduce((a, b) => (b[1] > a[1] ? b : a));
            const rival = step.top_logprobs.find((t) => t.id === best);
            if (best === step.id) greedyEqual++;
            else if (rival && step.logprob - rival.logprob <= 2 * diff) nearTies++;
            else fail(`${dtype} ${JSON.stringify(ref.prompt)} step ${j}: llama.cpp's argmax ${best}, retort's greedy ${step.id} ` +
                      `(retort's logprobs ${step.logprob} vs ${rival ? rival.logprob : "not in its top " + TOP_K})`);
        });
    }
    if (maxDiff > tolerance) fail(`${dtype}: max |logprob difference| ${maxDiff} exceeds ${tolerance}`);

    const llamaPassage = model.tokenize(PASSAGE, false);
    if (same(llamaPassage, passageIds)) tokenizedEqual++;
    else fail(`${dtype} tokenization of the passage: llama.cpp ${llamaPassage}, retort ${passageIds}`);
    if (model.detokenize(passageIds, false) !== PASSAGE) fail(`${dtype}: the passage does not detokenize to itself`);

    for (const k of knownDifferent) {
        const llamaIds = model.tokenize(k.text, false);
        if (same(llamaIds, k.retortIds) || !same(llamaIds, k.spaceIds))
            fail(`${dtype} ${JSON.stringify(k.text)}: expected llama.cpp to read "\u2581" as a space: llama.cpp ${llamaIds}, ` +
                 `retort ${k.retortIds}, retort with a space ${k.spaceIds}`);
    }
    console.log(`${dtype} ${file}: tokenization equal for ${tokenizedEqual}/${references.length + 1} texts ` +
        `(${passageIds.length} ids in the passage), "\u2581" read as a space as expected; ` +
        `greedy token equal at ${greedyEqual}/${positions} positions (${nearTies} near ties); ` +
        `max |logprob difference| ${maxDiff.toExponential(2)} (tolerance ${tolerance})`);
    await context.dispose();
    await model.dispose();
}
process.exit(failures === 0 ? 0 : 1);
