#!/usr/bin/env bash
# End-to-end: teachers trained and saved as TorchScript by plain PyTorch
# (tests/reference/torchscript_teachers.py) distilled with `retort distill --teacher torchscript:`.
# Usage: torchscript_test.sh RETORT_BINARY TEACHERS_DIR CASE   (CASE: classifier | lm | bad_input)
set -uo pipefail
RETORT=$1
TS=$2
CASE=$3
WORK=$(mktemp -d /tmp/retort-ts-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
SMALL=(--set data.train_subset=2000 --set data.test_subset=1000 --set run.dir=$WORK/runs)
TINY_LM=(--set data.kind=text --set text.train_tokens=48000 --set text.val_tokens=3000 --set text.seq_len=32
         --set data.batch_size=16 --set run.dir=$WORK/runs --set text.tokenizer=byte
         --set model.name=gpt --set model.d_model=48 --set model.layers=1 --set model.heads=2
         --set train.optimizer=adamw --set train.lr=0.01 --set train.epochs=2 --set train.warmup_steps=10)
source "$(dirname "$0")/lib.sh"

case $CASE in
classifier)
  # Soft targets only (alpha = 1): whatever the student knows came through the TorchScript teacher.
  check "distil from a traced PyTorch CNN" "$RETORT" distill --teacher "torchscript:$TS/classifier.pt" "${SMALL[@]}" \
    --set distill.alpha=1 --set train.epochs=3 --set run.name=ts >"$WORK/out" 2>"$WORK/err"
  acc=$(json "$WORK/runs/ts/run.json" 'd["test_accuracy"]')
  agree=$(json "$WORK/runs/ts/run.json" 'd["agreement"]')
  teacher=$(json "$TS/classifier.json" 'd["test_accuracy_1000"]')
  echo "student accuracy $acc, agreement $agree; the teacher's own accuracy (PyTorch) $teacher" >&3
  check "student learns from the teacher alone: accuracy $acc > 0.6 (chance 0.1)" \
    below 0.6 "$acc"
  check "student agrees with the teacher: $agree > 0.7" below 0.7 "$agree"
  check "the teacher cache was built" grep -q "teacher cache:.*(built," "$WORK/err"
  check "second run hits the teacher cache" "$RETORT" distill --teacher "torchscript:$TS/classifier.pt" "${SMALL[@]}" \
    --set distill.alpha=1 --set train.epochs=1 --set run.name=ts2 >"$WORK/out2" 2>"$WORK/err2"
  check "cache hit reported" grep -q "teacher cache:.*(hit," "$WORK/err2"
  ;;
lm)
  # A byte-level gpt trained and scripted in PyTorch; it returns {"logits": ...}.
  check "label-only baseline" "$RETORT" train "${TINY_LM[@]}" --set run.name=base >"$WORK/b.out" 2>"$WORK/b.err"
  # Dense: the live TorchScript teacher's full distribution (alpha = 1: no labels at all).
  check "distil from a scripted PyTorch LM (dense)" "$RETORT" distill --teacher "torchscript:$TS/lm/teacher.pt" \
    "${TINY_LM[@]}" --set distill.top_k=0 --set distill.alpha=1 --set run.name=kd >"$WORK/out" 2>"$WORK/err"
  base=$(json "$WORK/runs/base/run.json" 'd["val_bpb"]')
  kd=$(json "$WORK/runs/kd/run.json" 'd["val_bpb"]')
  agree=$(json "$WORK/runs/kd/run.json" 'd["agreement"]')
  echo "val bits/byte: labels $base, from the TorchScript teacher $kd (agreement $agree)" >&3
  check "the distilled student ($kd bpb) beats labels alone ($base bpb)" below "$kd" "$base"
  check "agreement with the teacher measured" /usr/bin/python3 -c "import sys; sys.exit(not 0 < $agree <= 1)"
  # Top-8 + tail from the same teacher, cached. With alpha = 1 and this short schedule it no longer
  # beats labels on every machine (4.72 vs 3.68 bits/byte on an AMD EPYC: the student learns nothing
  # about the tokens outside the teacher's top 8), so this checks that it runs and is scored.
  check "distil from it through its top-8 cache" "$RETORT" distill --teacher "torchscript:$TS/lm/teacher.pt" \
    "${TINY_LM[@]}" --set distill.top_k=8 --set distill.alpha=1 --set run.name=kd8 >"$WORK/out8" 2>"$WORK/err8"
  check "the top-8 cache was built" grep -q "teacher cache: .*built" "$WORK/err8"
  agree8=$(json "$WORK/runs/kd8/run.json" 'd["agreement"]')
  check "its agreement with the teacher measured ($agree8)" /usr/bin/python3 -c "import sys; sys.exit(not 0 < $agree8 <= 1)"
  check "sequence KD from it too" "$RETORT" distill --teacher "torchscript:$TS/lm/teacher.pt" "${TINY_LM[@]}" \
    --set distill.method=sequence --set run.name=seq >"$WORK/s.out" 2>"$WORK/s.err"
  ;;
bad_input)
  fails_with() {  # fails_with "what" "expected message" retort-args...
    local what=$1 want=$2; shift 2
    "$RETORT" "$@" >"$WORK/o" 2>"$WORK/e"
    local rc=$?
    check "$what: non-zero exit (got $rc)" test $rc -ne 0
    check "$what: says \"$want\"" grep -qF "$want" "$WORK/e"
    check "$what: one error line" test "$(grep -c 'error' "$WORK/e")" -eq 1
  }
  fails_with "not a module" "not_a_module.pt is not a TorchScript module" \
    distill --teacher "torchscript:$TS/not_a_module.pt" "${SMALL[@]}" --set run.name=a
  fails_with "missing file" "no TorchScript file at" \
    distill --teacher "torchscript:$WORK/none.pt" "${SMALL[@]}" --set run.name=b
  fails_with "wrong number of classes" "to logits of shape [2, 3], but the data has 10 classes (expected [2, 10])" \
    distill --teacher "torchscript:$TS/wrong_classes.pt" "${SMALL[@]}" --set run.name=c
  fails_with "language model on images" "failed on input [2, 1, 28, 28] (Float)" \
    distill --teacher "torchscript:$TS/lm/teacher.pt" "${SMALL[@]}" --set run.name=d
  fails_with "another vocabulary" "predicts 300 ids and has no tokenizer.json beside it" \
    distill --teacher "torchscript:$TS/lm_vocab300.pt" "${TINY_LM[@]}" --set run.name=e
  fails_with "classifier as a language model" "is not a language model" \
    distill --teacher "torchscript:$TS/classifier.pt" "${TINY_LM[@]}" --set run.name=f
  check "no run folders left by failures" bash -c "! ls '$WORK/runs'/*/checkpoints 2>/dev/null | grep -q ."
  ;;
*)
  echo "unknown case $CASE"
  exit 2
  ;;
esac
exit $((failures > 0))
