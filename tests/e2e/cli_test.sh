#!/usr/bin/env bash
# End-to-end tests of the retort CLI on small Fashion-MNIST subsets.
# Usage: cli_test.sh RETORT_BINARY CASE    (CASE: demo | views | distill | tree | bad_input | interrupt)
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# ctest runs two tests at once on two cores: one thread each.
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
SMALL=(--set data.train_subset=2000 --set data.test_subset=500 --set run.dir=$WORK/runs)
# A few dozen steps reach no useful learning rate under the default AdamW 1e-3 with 100 warm-up
# steps (a recipe for 30 epochs of 60k images): short runs that must learn take a large SGD step.
SHORT=(--set train.optimizer=sgd --set train.lr=0.15)
source "$(dirname "$0")/lib.sh"

case $CASE in
demo)
  args=("${SMALL[@]}" --set teacher.train.epochs=1 --set train.epochs=2 --set demo.seeds=2
        --set teacher.model.channels=8,16 --set teacher.model.hidden=64)
  check "demo runs" "$RETORT" demo "${args[@]}" >"$WORK/out1" 2>"$WORK/err1"
  R=$WORK/runs/demo
  check "report.json keeps the contract" /usr/bin/python3 - "$R/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["task"] == "fashion-mnist"
for k in ["model", "params", "accuracy", "train_seconds"]: assert k in r["teacher"], k
names = [s["name"] for s in r["students"]]
assert names == ["baseline", "distilled"], names
for s in r["students"]:
    for k in ["method", "params", "accuracy_mean", "accuracy_std", "seeds", "agreement_mean", "train_seconds"]:
        assert k in s, k
    assert s["seeds"] == 2 and 0.3 < s["accuracy_mean"] <= 1, s
assert r["students"][1]["method"] == "kd" and "temperature" in r["students"][1] and "alpha" in r["students"][1]
assert r["latency"]["teacher_ms"] > 0 and r["latency"]["student_ms"] > 0
# the first numbers: share kept, gap recovered, size and latency ratios, from the figures below them
t, b, d = r["teacher"]["accuracy"], r["students"][0]["accuracy_mean"], r["students"][1]["accuracy_mean"]
assert abs(r["share_kept"] - d / t) < 1e-12, r["share_kept"]
assert r["gap_recovered"] is None if t <= b else abs(r["gap_recovered"] - (d - b) / (t - b)) < 1e-12
assert abs(r["size_ratio"] - r["teacher"]["bytes_on_disk"] / r["students"][1]["bytes_on_disk"]) < 1e-12
assert abs(r["latency_ratio"] - r["latency"]["teacher_ms"] / r["latency"]["student_ms"]) < 1e-12
assert r["evaluated_on"] == "test" and r["headline"].startswith("The distilled student kept "), r["headline"]
PY
  check "the table starts with what was kept" bash -c "head -1 '$WORK/out1' | grep -q \"of the teacher's test accuracy\""
  check "report.html is self-contained with plots" bash -c "grep -q '<svg' '$R/report.html' && ! grep -qE 'src=\"http|href=\"http' '$R/report.html'"
  page_ok "the demo page renders in Chromium" "$R/report.html" 2 "Distillation gain"
  check "table printed" grep -q "distillation gain" "$WORK/out1"
  check "metrics.jsonl per run" test -s "$R/students/distilled/seed-1/metrics.jsonl"
  check "first run trains the teacher" test "$(json "$R/report.json" 'd["teacher"]["reused"]')" = "False"
  check "demo runs again" "$RETORT" demo "${args[@]}" >"$WORK/out2" 2>"$WORK/err2"
  check "second run reuses the teacher" test "$(json "$R/report.json" 'd["teacher"]["reused"]')" = "True"
  check "second run hits the teacher cache" test "$(json "$R/report.json" 'd["cache"]["hit"]')" = "True"
  check "students exported" test -f "$R/students/distilled/model/model.json"
  ;;
views)
  # Fixed views (train.views) with a held-out validation slice: the teacher's cache answers every view
  args=("${SMALL[@]}" --set teacher.train.epochs=1 --set train.epochs=2 --set demo.seeds=1 --set data.validation=400
        --set teacher.model.channels=8,16 --set teacher.model.hidden=64 --set train.views=3 --set train.hflip=true
        --set train.crop_padding=1)
  check "demo with fixed views runs" "$RETORT" demo "${args[@]}" >"$WORK/out1" 2>"$WORK/err1"
  R=$WORK/runs/demo
  check "it evaluates on validation, never on test" /usr/bin/python3 - "$R/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["evaluated_on"] == "validation", r["evaluated_on"]
assert "validation: the last 400 training images" in r["data"]["test"], r["data"]
assert "train minus the last 400" in r["data"]["train"], r["data"]
PY
  check "the teacher answered each of the 3 views of the 1600 training images" grep -q "teacher logits: view 3 of 3" "$WORK/err1"
  same "the cache holds 3 x 1600 rows of 10 logits" "$(json "$R/report.json" 'd["cache"]["bytes"] >= 3 * 1600 * 10 * 4')" True
  check "demo with views again: the cache is hit" "$RETORT" demo "${args[@]}" >"$WORK/out2" 2>"$WORK/err2"
  same "second run hits the views cache" "$(json "$R/report.json" 'd["cache"]["hit"]')" True
  check "views without crop or flip are refused" bash -c "! '$RETORT' demo ${SMALL[*]} --set train.views=2 >'$WORK/o3' 2>'$WORK/e3'"
  check "and the error says what to set" grep -q "set train.crop_padding or train.hflip" "$WORK/e3"
  ;;
distill)
  check "train a cnn teacher" "$RETORT" train "${SMALL[@]}" --set run.name=t --set model.name=cnn \
    --set model.channels=8 --set model.hidden=32 --set train.epochs=1 >"$WORK/o" 2>"$WORK/e"
  check "distill from it" "$RETORT" distill "${SMALL[@]}" --teacher "$WORK/runs/t" --set run.name=s \
    --set train.epochs=2 --set model.hidden=32 >"$WORK/o2" 2>"$WORK/e2"
  check "distill prints accuracy and agreement" grep -q "agreement with teacher" "$WORK/o2"
  check "train and distill each write a report" test -s "$WORK/runs/t/report.json" -a -s "$WORK/runs/s/report.json"
  same "the report's score is the run's" "$(json "$WORK/runs/s/run.json" 'd["test_accuracy"]')" \
    "$(json "$WORK/runs/s/report.json" 'd["metric"]["value"]')"
  same "the report's teacher score is the teacher's own" "$(json "$WORK/runs/t/run.json" 'd["test_accuracy"]')" \
    "$(json "$WORK/runs/s/report.json" 'd["teacher"]["value"]')"
  page_ok "the distill report says first what was kept, with its plots" "$WORK/runs/s/report.html" 3 \
    "of its teacher's test accuracy"
  page_ok "the train report shows its curves" "$WORK/runs/t/report.html" 2 "parameters) reached"
  check "classifier distillation with another divergence" "$RETORT" distill "${SMALL[@]}" --teacher "$WORK/runs/t" \
    --set run.name=sj --set train.epochs=1 --set model.hidden=32 --set distill.loss=jsd >/dev/null 2>&1
  check "its objective names it" grep -q 'jsd(T=1, beta=0.5)' "$WORK/runs/sj/run.json"
  check "resolved config saved" grep -q 'hidden = \[32\]' "$WORK/runs/s/config.toml"
  check "eval with teacher" "$RETORT" eval --model "$WORK/runs/s" --teacher "$WORK/runs/t" --json \
    --set data.test_subset=500 >"$WORK/eval.json" 2>/dev/null
  check "eval reports accuracy, agreement, latency" /usr/bin/python3 -c "
import json; d=json.load(open('$WORK/eval.json')); assert 0.3<d['accuracy']<=1 and 0<d['agreement']<=1 and d['latency_ms']>0 and d['params']==784*32+32+330, d"
  acc_run=$(json "$WORK/runs/s/run.json" 'd["test_accuracy"]')
  acc_eval=$(json "$WORK/eval.json" 'd["accuracy"]')
  same "eval of the saved model equals the run's own evaluation ($acc_run)" "$acc_run" "$acc_eval"
  check "rerun without --resume is refused" bash -c "! '$RETORT' distill ${SMALL[*]} --teacher '$WORK/runs/t' --set run.name=s 2>/dev/null"
  ;;
tree)
  # A soft decision tree student, trained and distilled: its report draws the tree.
  check "train a depth-3 tree" "$RETORT" train "${SMALL[@]}" "${SHORT[@]}" --set run.name=tree --set model.name=tree \
    --set model.depth=3 --set train.epochs=3 >"$WORK/o" 2>"$WORK/e"
  check "report.json describes the tree and both of its accuracies" /usr/bin/python3 - "$WORK/runs/tree/report.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tree"]
assert t["depth"] == 3 and t["leaves"] == 8 and t["test_examples"] == 500, t
assert 0.3 < t["mixture_accuracy"] <= 1 and 0.2 < t["max_path_accuracy"] <= 1, t
e = t["example"]
assert e["index"] == 0 and e["label_name"] == "Ankle boot" and len(e["path"]) == 3, e
assert abs(e["path"][-1]["path_probability"] - e["leaf_probability"]) < 1e-6, e  # float32 vs float64 products
PY
  check "the 7 inner nodes drawn as filters" \
    test "$(grep -o '<image ' "$WORK/runs/tree/report.html" | wc -l)" -eq 7
  page_ok "the tree report shows the tree and the test image's path" "$WORK/runs/tree/report.html" 3 \
    "Test image 0: its path"
  check "train an mlp teacher" "$RETORT" train "${SMALL[@]}" "${SHORT[@]}" --set run.name=t --set model.hidden=64 \
    --set train.epochs=1 >"$WORK/o" 2>"$WORK/e"
  check "distill a tree with the split regularizer" "$RETORT" distill "${SMALL[@]}" "${SHORT[@]}" --teacher "$WORK/runs/t" \
    --set run.name=st --set model.name=tree --set model.depth=4 --set model.split_penalty=0.1 \
    --set train.epochs=3 >"$WORK/o2" 2>"$WORK/e2"
  page_ok "the distilled tree's report draws it beside what it kept" "$WORK/runs/st/report.html" 3 \
    "of its teacher's test accuracy"
  check "with 15 filters" test "$(grep -o '<image ' "$WORK/runs/st/report.html" | wc -l)" -eq 15
  check "its split_penalty is recorded" test "$(json "$WORK/runs/st/report.json" 'd["tree"]["split_penalty"]')" = "0.1"
  ;;
bad_input)
  # Each bad input: non-zero exit, exactly one line on stderr, starting "retort: error", no crash dump.
  expect_error() {  # expect_error "what" "expected substring" args...
    local what=$1 want=$2; shift 2
    "$RETORT" "$@" >"$WORK/o" 2>"$WORK/e"
    local rc=$?
    local lines; lines=$(grep -vc '^retort: [0-9]* threads' "$WORK/e")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && grep -q "^retort: error.*$want" "$WORK/e" \
       && ! grep -qE "terminate called|Exception raised from|Aborted" "$WORK/e"; then
      echo "ok: $what -> $(grep '^retort: error' "$WORK/e")"
    else
      echo "FAIL: $what (rc=$rc)"; cat "$WORK/e"; failures=$((failures + 1))
    fi
  }
  mkdir -p "$WORK/corrupt" "$WORK/ro"
  cp /usr/share/datasets/fashion-mnist/t10k-* "$WORK/corrupt/"
  head -c 100000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz >"$WORK/corrupt/train-images-idx3-ubyte.gz"
  cp /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$WORK/corrupt/"
  printf '[train]\nepochs = = 3\n' >"$WORK/bad.toml"
  touch "$WORK/ro/file"
  expect_error "missing dataset path" "is not a folder" train --set data.path=/nonexistent --set run.dir=$WORK/runs
  expect_error "corrupt IDX" "train-images-idx3-ubyte.gz" train --set data.path=$WORK/corrupt --set run.dir=$WORK/runs
  expect_error "unknown model name" "must be one of {mlp, cnn, tree, gpt}, got \"resnet\"" train "${SMALL[@]}" --set model.name=resnet
  expect_error "mistyped config key" "did you mean 'train.epochs'" train --set trian.epochs=3
  printf '[trainer]\nlr = 1\n' >"$WORK/unknown.toml"
  expect_error "unknown key in a config file" "unknown config key 'trainer.lr'" train --config "$WORK/unknown.toml"
  expect_error "malformed config file" "line 2" train --config "$WORK/bad.toml"
  expect_error "negative temperature" "distill.temperature" distill --set distill.temperature=-2
  expect_error "batch size 0" "data.batch_size" train --set data.batch_size=0
  expect_error "unwritable run folder" "cannot be created" train "${SMALL[@]}" --set run.dir=$WORK/ro/file
  expect_error "distill without a teacher" "needs a teacher" distill "${SMALL[@]}"
  expect_error "teacher that is not a model" "no model at" distill "${SMALL[@]}" --teacher $WORK/ro
  expect_error "eval of a missing model" "no model at" eval --model $WORK/nothing
  # --resume with nothing to resume says so (one line), then trains from the start.
  check "--resume with nothing to resume trains" "$RETORT" train "${SMALL[@]}" --set run.name=new --set model.hidden=64 \
    --set train.epochs=1 --resume >/dev/null 2>"$WORK/resume.err"
  check "--resume with nothing to resume says so" \
    grep -qxF "resume: no checkpoint in $WORK/runs/new/checkpoints; starting from step 0" "$WORK/resume.err"
  # Damaged weights (XOR 0x40 into every 4000th byte from offset 100,003) are refused, not evaluated.
  /usr/bin/python3 - "$WORK/runs/new/model/model.pt" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(100003, len(b), 4000): b[i] ^= 0x40
open(sys.argv[1], "wb").write(b)
PY
  expect_error "eval of damaged weights" "model.pt is damaged: its digest is fnv1a64:.*records fnv1a64:" \
    eval --model "$WORK/runs/new" --set data.test_subset=500
  # With Debian's reference BLAS behind libblas.so.3, start-up warns loudly.
  if [ -f /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 ]; then
    env -u RETORT_NO_BLAS_WARNING LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas \
      "$RETORT" train --set data.path=/nonexistent >/dev/null 2>"$WORK/blas"
    check "reference BLAS warning" grep -q "WARNING: libtorch is using Debian's REFERENCE BLAS" "$WORK/blas"
  else
    echo "skipped: reference BLAS warning (libblas3 not installed)"
  fi
  env -u RETORT_NO_BLAS_WARNING "$RETORT" train --set data.path=/nonexistent >/dev/null 2>"$WORK/blas"
  check "no BLAS warning with OpenBLAS" bash -c "! grep -q WARNING '$WORK/blas' && grep -q 'BLAS openblas' '$WORK/blas'"
  ;;
interrupt)
  # Ctrl-C during training saves a checkpoint and exits 130; --resume finishes with
  # exactly the accuracy of an uninterrupted run.
  args=("${SMALL[@]}" --set data.train_subset=6000 --set model.name=cnn --set model.channels=16,32
        --set model.hidden=64 --set train.epochs=2)
  interrupt_and_resume test_accuracy "${args[@]}"
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
[ $failures -eq 0 ]
