#!/usr/bin/env bash
# `retort export --format safetensors` end to end: tiny models trained with the CLI, exported,
# read back by retort (generate, eval) and checked from outside by tests/reference/safetensors_check.py
# (its own reader, Hugging Face Llama's forward pass). Usage: export_safetensors_test.sh RETORT CASE
#   CASE: lm | classifier
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-st-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
CHECK="/usr/bin/python3 $(dirname "$0")/../reference/safetensors_check.py"
source "$(dirname "$0")/lib.sh"

# one_line_error WHAT PATTERN retort-args...: retort fails, and its error (the end of stderr from
# "retort: error") is one line matching PATTERN
one_line_error() {
  local what=$1 pattern=$2; shift 2
  if "$RETORT" "$@" >/dev/null 2>"$WORK/err"; then check "$what (exit status)" false; return; fi
  sed -n '/^retort: error/,$p' "$WORK/err" >"$WORK/error_line"
  check "$what: $(head -c 300 "$WORK/error_line")" \
    bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -qE -- "$2" "$1"' _ "$WORK/error_line" "$pattern"
}

case $CASE in
lm)
  TINY+=(--set model.layers=2 --set model.heads=4)
  check "train a byte-level gpt (untied, grouped-query)" "$RETORT" train "${TINY[@]}" --set text.tokenizer=byte \
    --set model.kv_heads=2 --set model.tie_embeddings=false --set run.name=byte >/dev/null 2>&1
  check "export f32" "$RETORT" export "$WORK/runs/byte" --format safetensors --out "$WORK/st" >"$WORK/out"
  check "summary names the file and dtype" grep -q "model.safetensors .* tensors, f32" "$WORK/out"
  check "export f16" "$RETORT" export "$WORK/runs/byte" --format safetensors --out "$WORK/st16" --dtype f16 >/dev/null
  g() { "$RETORT" generate --model "$1" --prompt "And God said" --max-tokens 20 --temperature 0 >"$2" 2>/dev/null; }
  check "generate from the run" g "$WORK/runs/byte" "$WORK/g_run"
  check "generate from the export" g "$WORK/st" "$WORK/g_st"
  check "generate from the f16 export" g "$WORK/st16" "$WORK/g_st16"
  same_files "the export writes what the run writes" "$WORK/g_run" "$WORK/g_st"
  check "f32: names, shapes, values, config; Llama's greedy text equals retort's" \
    $CHECK llama "$WORK/st" "$WORK/runs/byte/model" "And God said" "$WORK/g_st"
  check "f16: the same on half-precision weights" \
    $CHECK llama "$WORK/st16" "$WORK/runs/byte/model" "And God said" "$WORK/g_st16"

  check "train a SentencePiece gpt (tied)" "$RETORT" train "${TINY[@]}" --set text.tokenizer=sentencepiece \
    --set text.vocab_size=400 --set run.name=sp >/dev/null 2>&1
  check "export it" "$RETORT" export "$WORK/runs/sp" --format safetensors --out "$WORK/sp" >/dev/null
  check "names, values, config, tokenizer.model for LlamaTokenizer" $CHECK llama "$WORK/sp" "$WORK/runs/sp/model"
  g "$WORK/runs/sp" "$WORK/g_sprun"; g "$WORK/sp" "$WORK/g_sp"
  same_files "SentencePiece export generates what its run does" "$WORK/g_sprun" "$WORK/g_sp"
  ev() { "$RETORT" eval --model "$1" --json "${TINY[@]}" 2>/dev/null | /usr/bin/python3 -c \
    "import json,sys; d=json.load(sys.stdin); print(d['val_bpb'], d['params'], d['tokenizer'])"; }
  same "eval of the export equals eval of the run: $(ev "$WORK/sp")" "$(ev "$WORK/runs/sp")" "$(ev "$WORK/sp")"

  cp -r "$WORK/st" "$WORK/cut"
  truncate -s -7 "$WORK/cut/model.safetensors"
  one_line_error "truncated weights named" "cut/model.safetensors is truncated" \
    generate --model "$WORK/cut" --prompt "And" --max-tokens 2
  ;;
classifier)
  SMALL=(--set data.train_subset=2000 --set data.test_subset=500 --set run.dir=$WORK/runs --set train.epochs=1
         --set train.optimizer=sgd --set train.lr=0.15)  # 16 steps: a large step, not the 30-epoch AdamW default
  check "train an mlp" "$RETORT" train "${SMALL[@]}" --set run.name=mlp --set model.name=mlp --set model.hidden=32 \
    >/dev/null 2>&1
  check "train a cnn (batch norm buffers)" "$RETORT" train "${SMALL[@]}" --set run.name=cnn --set model.name=cnn \
    --set model.channels=8 --set model.hidden=32 >/dev/null 2>&1
  for m in mlp cnn; do
    check "$m: export" "$RETORT" export "$WORK/runs/$m" --format safetensors --out "$WORK/$m" >/dev/null
    check "$m: names and values equal retort's model.pt" $CHECK classifier "$WORK/$m" "$WORK/runs/$m/model"
    check "$m: eval the run" "$RETORT" eval --model "$WORK/runs/$m" --json --set data.test_subset=500 \
      >"$WORK/$m-run.json" 2>/dev/null
    check "$m: eval the export" "$RETORT" eval --model "$WORK/$m" --json --set data.test_subset=500 \
      >"$WORK/$m-st.json" 2>/dev/null
    check "$m: same accuracy and parameters, size on disk known" /usr/bin/python3 -c "
import json; a, b = json.load(open('$WORK/$m-run.json')), json.load(open('$WORK/$m-st.json'))
assert (a['accuracy'], a['params'], a['name']) == (b['accuracy'], b['params'], b['name']), (a, b)
assert 0.3 < a['accuracy'] <= 1 and b['bytes_on_disk'] > 0, (a, b)"
  done
  printf '{"format": "retort-safetensors"}' >"$WORK/mlp/config.json"
  one_line_error "config without retort's spec named" "mlp/config.json has no \"retort\" object" \
    eval --model "$WORK/mlp" --set data.test_subset=50
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
[ $failures -eq 0 ]
