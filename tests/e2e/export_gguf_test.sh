#!/usr/bin/env bash
# `retort export --format gguf` end to end: a tiny gpt trained by the CLI, written as f32 and f16
# GGUF, read back by retort (generate gives the run's text) and run in llama.cpp
# (tests/clients/gguf_llama_test.mjs: same tokens, same logprobs within a stated tolerance).
# Usage: export_gguf_test.sh RETORT_BINARY TOKENIZER   (TOKENIZER: byte | sentencepiece)
set -uo pipefail
RETORT=$1
TOKENIZER=$2
WORK=$(mktemp -d /tmp/retort-gguf-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
# The byte case also covers grouped-query attention and an untied head in llama.cpp.
case $TOKENIZER in
byte) TOK=(--set text.tokenizer=byte --set model.layers=2 --set model.heads=4 --set model.kv_heads=2
           --set model.tie_embeddings=false) ;;
sentencepiece) TOK=(--set text.tokenizer=sentencepiece --set text.vocab_size=400) ;;  # >= 330 on this corpus
*) echo "unknown tokenizer $TOKENIZER"; exit 2 ;;
esac
source "$(dirname "$0")/lib.sh"
CLIENTS=$(cd "$(dirname "$0")/../clients" && pwd)
RUN=$WORK/runs/lm

check "train a tiny $TOKENIZER gpt" "$RETORT" train "${TINY[@]}" "${TOK[@]}" --set run.name=lm >"$WORK/train.out" 2>"$WORK/train.err"
for dtype in f32 f16; do
  check "export $dtype" "$RETORT" export "$RUN" --format gguf --dtype $dtype --out "$WORK/lm-$dtype.gguf" >"$WORK/export-$dtype.out"
  check "summary names the file and dtype" grep -q "lm-$dtype.gguf (GGUF llama, $dtype" "$WORK/export-$dtype.out"
done
check "f16 file is about half the f32 one" test $(($(stat -c %s "$WORK/lm-f16.gguf") * 10 / $(stat -c %s "$WORK/lm-f32.gguf"))) -le 6
check "no temporary files left" bash -c "! ls -a '$WORK' | grep -q tmp"

g() { "$RETORT" generate --model "$1" --prompt "And God said" --max-tokens 20 --temperature 0 2>/dev/null; }
same "generate from the f32 GGUF gives the run's text" "$(g "$RUN")" "$(g "$WORK/lm-f32.gguf")"
text=$("$RETORT" generate --model "$WORK/lm-f16.gguf" --prompt "And God" --max-tokens 5 2>/dev/null)
check "generate reads the f16 GGUF" test "${text:0:7}" = "And God"

ev() { "$RETORT" eval --model "$1" --json "${TINY[@]}" "${TOK[@]}" 2>/dev/null | /usr/bin/python3 -c \
  "import json,sys; d=json.load(sys.stdin); print(d['val_bpb'], d['params'], d['bytes_on_disk'] > 0)"; }
same "eval of the f32 GGUF equals eval of the run: $(ev "$WORK/lm-f32.gguf")" "$(ev "$RUN")" "$(ev "$WORK/lm-f32.gguf")"

check "llama.cpp agrees with retort" node "$CLIENTS/gguf_llama_test.mjs" "$RETORT" "$RUN" \
  f32="$WORK/lm-f32.gguf" f16="$WORK/lm-f16.gguf"

# A format that cannot hold a language model: one line, non-zero exit, nothing written.
"$RETORT" export "$RUN" --format onnx --out "$WORK/lm.onnx" >/dev/null 2>"$WORK/onnx.err"
check "onnx of a language model refused (exit $?)" test $? -ne 0
check "in one line naming the way out" bash -c "[ \$(wc -l <'$WORK/onnx.err') -eq 1 ] && grep -q 'use --format gguf or safetensors' '$WORK/onnx.err'"
check "and nothing written" test ! -e "$WORK/lm.onnx"

printf 'GGUF\x02\x00\x00\x00' >"$WORK/old.gguf"
"$RETORT" generate --model "$WORK/old.gguf" --prompt x >/dev/null 2>"$WORK/old.err"
check "old GGUF version refused in one line naming the file" \
  bash -c "grep -q 'old.gguf: GGUF version 2 is not supported' '$WORK/old.err' && [ \$(wc -l <'$WORK/old.err') -eq 1 ]"
[ $failures -eq 0 ]
