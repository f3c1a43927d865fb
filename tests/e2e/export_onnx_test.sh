#!/usr/bin/env bash
# `retort export --format onnx` end to end: train a tiny classifier on a Fashion-MNIST subset,
# export it, and have ONNX Runtime (tests/clients/onnx_runtime_test.mjs) reproduce retort's
# logits on real test images at batch sizes 1 and 7.
# Usage: export_onnx_test.sh RETORT_BINARY CASE    (CASE: mlp | cnn | tree)
set -uo pipefail
RETORT=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/retort-onnx-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
DATA=/usr/share/datasets/fashion-mnist
# 14 test images: two batches of 7 for ONNX Runtime.
SMALL=(--set data.train_subset=1000 --set data.test_subset=14 --set run.dir=$WORK/runs --set train.epochs=1)
source "$HERE/lib.sh"

# export_and_compare NAME "PREPROCESSING THE EXPORT MUST STATE" TRAIN_AND_EVAL_ARGS...
export_and_compare() {
  local name=$1 stated=$2; shift 2
  check "train a tiny $name" "$RETORT" train "${SMALL[@]}" --set run.name=$name "$@" >"$WORK/train.out" 2>"$WORK/train.err"
  check "export it to ONNX" "$RETORT" export "$WORK/runs/$name" --format onnx --out "$WORK/$name.onnx" \
    >"$WORK/export.out" 2>"$WORK/export.err"
  echo "   $(cat "$WORK/export.out")"
  check "the summary states the input preprocessing" grep -qF "$stated" "$WORK/export.out"
  check "no temporary file left" bash -c "! ls -a '$WORK' | grep -q '\.tmp'"
  check "retort eval writes its logits" "$RETORT" eval --model "$WORK/runs/$name" "${SMALL[@]}" "$@" \
    --logits-out "$WORK/$name.logits.json" >/dev/null 2>"$WORK/eval.err"
  check "ONNX Runtime reproduces retort's logits" node "$HERE/../clients/onnx_runtime_test.mjs" \
    "$WORK/$name.onnx" "$WORK/$name.logits.json" "$DATA"
}

case $CASE in
mlp)
  export_and_compare mlp "(pixel / 255 - 0.286) / 0.353" --set model.name=mlp --set model.hidden=32,16
  # A format that cannot hold a classifier: one line, non-zero exit, nothing written.
  "$RETORT" export "$WORK/runs/mlp" --format gguf --out "$WORK/mlp.gguf" >/dev/null 2>"$WORK/gguf.err"
  check "gguf of a classifier refused (exit $?)" test $? -ne 0
  check "in one line: $(head -c 200 "$WORK/gguf.err")" bash -c "[ \$(wc -l <'$WORK/gguf.err') -eq 1 ] && grep -qi 'gguf export takes gpt' '$WORK/gguf.err'"
  check "and nothing written" test ! -e "$WORK/mlp.gguf"
  ;;
cnn)
  # A normalisation other than the default: the export must find it in the run's config.toml.
  export_and_compare cnn "(pixel / 255 - 0.5) / 0.25" --set model.name=cnn --set model.channels=4,8 \
    --set model.hidden=16 --set data.mean=0.5 --set data.std=0.25
  ;;
tree)
  # A soft decision tree (src/models/tree.h): its path products and leaf mixture in ONNX operators.
  export_and_compare tree "(pixel / 255 - 0.286) / 0.353" --set model.name=tree --set model.depth=4 --set model.beta=1.5
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
[ $failures -eq 0 ]
