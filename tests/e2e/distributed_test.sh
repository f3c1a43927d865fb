#!/usr/bin/env bash
# Data parallelism end to end: 2 ranks on loopback against 1 process with the same global batch.
# usage: distributed_test.sh RETORT CASE   (CASE: torchrun | env | lm | kill | interrupt | bf16_overlap)
#   torchrun      classifier distillation, 2 ranks through torchrun (scripts/torchrun): final
#                 weights equal the 1-process run's; the dense teacher cache built by the ranks
#                 together is byte-identical to one process's; only rank 0 wrote files
#   env           the same job launched by hand with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT
#   lm            language-model distillation with a top-k cache, 2 ranks through torchrun
#   kill          rank 1 is killed mid-run: rank 0 exits non-zero within run.dist_timeout, having
#                 saved the last step; relaunched with --resume, the job finishes and equals an
#                 uninterrupted 2-rank run. Then rank 1 hangs (SIGSTOP): rank 0 gives up after
#                 the timeout
#   interrupt     Ctrl-C on one rank stops both at the same step; --resume finishes to the same
#                 weights; a run stopped in 1 process resumes on 2 ranks
#   bf16_overlap  teacher/student overlap gives the same weights as no overlap; bf16 runs and
#                 stays near fp32 in accuracy
set -uo pipefail
RETORT=$(realpath "$1")
CASE=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TORCHRUN="$ROOT/scripts/torchrun"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
export RETORT_NO_BLAS_WARNING=1
source "$ROOT/tests/e2e/lib.sh"

free_port() { /usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

# Largest absolute difference between the weights of two model folders, read through the
# safetensors export by an independent reader (json + numpy).
weight_diff() {
  "$RETORT" export "$1" --format safetensors --out "$WORK/st-a" >/dev/null 2>&1 &&
    "$RETORT" export "$2" --format safetensors --out "$WORK/st-b" >/dev/null 2>&1 &&
    /usr/bin/python3 - "$WORK/st-a" "$WORK/st-b" <<'EOF'
import json, struct, sys
import numpy as np
def load(d):
    b = open(d + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), (a.keys(), b.keys())
print("%.3g" % max(float(np.abs(a[k] - b[k]).max()) for k in a))
EOF
  local rc=$?
  rm -rf "$WORK/st-a" "$WORK/st-b"
  return $rc
}

IMAGES=(--set data.train_subset=3000 --set data.test_subset=1000 --set data.batch_size=100 --set run.dir=$WORK/runs
        --set model.hidden=64 --set train.epochs=2 --set run.log_every=1)
TEXT=("${TINY[@]}" --set text.tokenizer=byte --set data.eval_batch_size=8)

image_teacher() {
  "$RETORT" train "${IMAGES[@]}" --set model.name=cnn --set model.channels=8,16 --set train.epochs=1 \
    --set run.name=teacher >"$WORK/teacher.out" 2>"$WORK/teacher.err"
}

# Two ranks by hand in the background, as srun or a script would start them: start_two_ranks
# NAME ARGS... sets p0 and p1; their output goes to $WORK/NAME.{0,1}.{out,err}.
start_two_ranks() {
  local name=$1; shift
  local port; port=$(free_port)
  RANK=1 LOCAL_RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$RETORT" "$@" >"$WORK/$name.1.out" 2>"$WORK/$name.1.err" &
  p1=$!
  RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$RETORT" "$@" >"$WORK/$name.0.out" 2>"$WORK/$name.0.err" &
  p0=$!
}
# two_ranks_by_hand NAME ARGS...: both to the end; exit codes in rc0 and rc1.
two_ranks_by_hand() {
  start_two_ranks "$@"
  wait $p0; rc0=$?
  wait $p1; rc1=$?
}
# wait_steps RUN N: until RUN's metrics.jsonl has N step lines (30 s at most).
wait_steps() {
  for _ in $(seq 1 600); do
    [ "$(cat "$WORK/runs/$1/metrics.jsonl" 2>/dev/null | grep -c '"type":"step"')" -ge "$2" ] && return
    sleep 0.05
  done
}

case $CASE in
torchrun)
  check "teacher trains" image_teacher
  D=("${IMAGES[@]}" --teacher "$WORK/runs/teacher")
  check "1 process distils (1 thread)" env OMP_NUM_THREADS=1 "$RETORT" distill "${D[@]}" --set run.name=one \
    --set run.cache_dir=$WORK/cache1 >"$WORK/one.out" 2>"$WORK/one.err"
  check "2 ranks distil through torchrun" "$TORCHRUN" --nproc_per_node=2 --master_port="$(free_port)" --no_python \
    "$RETORT" distill "${D[@]}" --set run.name=two --set run.cache_dir=$WORK/cache2 >"$WORK/two.out" 2>"$WORK/two.err"
  diff=$(weight_diff "$WORK/runs/one" "$WORK/runs/two")
  echo "max |w_1process - w_2ranks| = $diff"
  check "weights of 2 ranks equal 1 process within 1e-5 (got $diff)" below "$diff" 1e-5
  a=$(json "$WORK/runs/one/run.json" 'd["test_accuracy"]'); b=$(json "$WORK/runs/two/run.json" 'd["test_accuracy"]')
  echo "test accuracy: 1 process $a, 2 ranks $b"
  same "test accuracy equal ($a vs $b)" "$a" "$b"
  check "run.json says 2 ranks" test "$(json "$WORK/runs/two/run.json" 'd["ranks"]')" = 2
  check "run.json has the bytes each rank all-reduced per step" \
    test "$(json "$WORK/runs/two/run.json" 'd["comm_bytes_per_step"]')" -gt 0
  check "one result line (rank 0 alone prints)" test "$(grep -c 'test accuracy' "$WORK/two.out")" = 1
  same "metrics.jsonl written once per step" \
    "$(grep -c '"type":"step"' "$WORK/runs/two/metrics.jsonl")" "$(grep -c '"type":"step"' "$WORK/runs/one/metrics.jsonl")"
  # Many small buckets: each is summed as soon as backward has filled it, in the same order on
  # every rank; the result must not change.
  check "2 ranks with 2 KB gradient buckets" "$TORCHRUN" --nproc_per_node=2 --master_port="$(free_port)" --no_python \
    "$RETORT" distill "${D[@]}" --set run.name=buckets --set run.bucket_mb=0.002 --set run.cache_dir=$WORK/cache2 \
    >"$WORK/buckets.out" 2>"$WORK/buckets.err"
  bdiff=$(weight_diff "$WORK/runs/one" "$WORK/runs/buckets")
  check "2 KB buckets: weights equal 1 process within 1e-5 (got $bdiff)" below "$bdiff" 1e-5
  check "2 KB buckets: one per parameter (4), one by default" \
    test "$(json "$WORK/runs/buckets/run.json" 'd["comm_buckets"]')$(json "$WORK/runs/two/run.json" 'd["comm_buckets"]')" = 41
  c1=$(ls "$WORK"/cache1/logits-*.bin); c2=$(ls "$WORK"/cache2/logits-*.bin)
  same_files "teacher cache built by 2 ranks is byte-identical to 1 process's" "$c1" "$c2"
  check "no temporary files left in the run folder" bash -c "! find '$WORK/runs/two' -name '*.tmp*' | grep -q ."
  ;;
env)
  check "teacher trains" image_teacher
  D=(distill "${IMAGES[@]}" --teacher "$WORK/runs/teacher" --set run.cache_dir=$WORK/cache)
  check "1 process distils" env OMP_NUM_THREADS=1 "$RETORT" "${D[@]}" --set run.name=one >"$WORK/one.out" 2>"$WORK/one.err"
  two_ranks_by_hand two "${D[@]}" --set run.name=two
  check "rank 0 exits 0 (got $rc0)" test "$rc0" = 0
  check "rank 1 exits 0 (got $rc1)" test "$rc1" = 0
  check "rank 0 says where it stands" grep -q "rank 0 of 2 (gloo, launched by env)" "$WORK/two.0.err"
  diff=$(weight_diff "$WORK/runs/one" "$WORK/runs/two")
  echo "max |w_1process - w_2ranks| = $diff"
  check "weights of 2 ranks equal 1 process within 1e-5 (got $diff)" below "$diff" 1e-5
  # Slurm's variables are read the same way (srun sets these; no wrapper needed).
  port=$(free_port)
  SLURM_PROCID=1 SLURM_NTASKS=2 SLURM_LOCALID=1 SLURM_JOB_NODELIST=localhost MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$RETORT" "${D[@]}" --set run.name=slurm >"$WORK/s1.out" 2>"$WORK/s1.err" &
  SLURM_PROCID=0 SLURM_NTASKS=2 SLURM_LOCALID=0 SLURM_JOB_NODELIST=localhost MASTER_PORT=$port OMP_NUM_THREADS=1 \
    "$RETORT" "${D[@]}" --set run.name=slurm >"$WORK/s0.out" 2>"$WORK/s0.err"
  rc=$?; wait
  check "Slurm variables: 2 ranks finish (rc $rc)" test "$rc" = 0
  check "Slurm launch recognised" grep -q "launched by slurm" "$WORK/s0.err"
  diff=$(weight_diff "$WORK/runs/one" "$WORK/runs/slurm")
  check "Slurm job equals 1 process within 1e-5 (got $diff)" below "$diff" 1e-5
  # A one-process command under a multi-rank launch is refused, not run twice.
  RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 "$RETORT" demo --set run.dir=$WORK/runs >"$WORK/d.out" 2>"$WORK/d.err"
  check "demo under WORLD_SIZE=2 fails clearly" grep -q "launch \`retort train\` or \`retort distill\`" "$WORK/d.err"
  RANK=3 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 "$RETORT" "${D[@]}" --set run.name=bad >"$WORK/b.out" 2>"$WORK/b.err"
  check "rank outside the world fails clearly" grep -q "rank 3 is outside the job's world of 2" "$WORK/b.err"
  ;;
lm)
  check "teacher trains" "$RETORT" train "${TEXT[@]}" --set model.d_model=64 --set model.layers=2 --set model.heads=4 \
    --set train.epochs=2 --set run.name=t >"$WORK/t.out" 2>"$WORK/t.err"
  D=("${TEXT[@]}" --teacher "$WORK/runs/t" --set distill.top_k=5)
  check "1 process distils" env OMP_NUM_THREADS=1 "$RETORT" distill "${D[@]}" --set run.name=one \
    --set run.cache_dir=$WORK/cache1 >"$WORK/one.out" 2>"$WORK/one.err"
  check "2 ranks distil through torchrun" "$TORCHRUN" --nproc_per_node=2 --master_port="$(free_port)" --no_python \
    "$RETORT" distill "${D[@]}" --set run.name=two --set run.cache_dir=$WORK/cache2 >"$WORK/two.out" 2>"$WORK/two.err"
  check "2 ranks with 4 KB gradient buckets" "$TORCHRUN" --nproc_per_node=2 --master_port="$(free_port)" --no_python \
    "$RETORT" distill "${D[@]}" --set run.name=buckets --set run.bucket_mb=0.004 --set run.cache_dir=$WORK/cache2 \
    >"$WORK/buckets.out" 2>"$WORK/buckets.err"
  bdiff=$(weight_diff "$WORK/runs/two" "$WORK/runs/buckets")
  check "4 KB buckets: weights equal one bucket's exactly (got $bdiff)" test "$bdiff" = 0
  diff=$(weight_diff "$WORK/runs/one" "$WORK/runs/two")
  a=$(json "$WORK/runs/one/run.json" 'd["val_bpb"]'); b=$(json "$WORK/runs/two/run.json" 'd["val_bpb"]')
  echo "max |w_1process - w_2ranks| = $diff; val bits/byte $a vs $b"
  # AdamW divides each coordinate by its own gradient scale, so where a gradient is near zero the
  # last-bit differences of a 2-way sum move that weight by up to lr per step: 1e-3, not 1e-5.
  check "weights of 2 ranks equal 1 process within 1e-3 (got $diff)" below "$diff" 1e-3
  check "val bits/byte equal within 1e-4 ($a vs $b)" below "$(/usr/bin/python3 -c "print(abs($a-$b))")" 1e-4
  d1=$(ls -d "$WORK"/cache1/topk-*); d2=$(ls -d "$WORK"/cache2/topk-*)
  same "top-k cache has the same files" "$(ls "$d1")" "$(ls "$d2")"
  if [ -d "$d1" ]; then  # (with no cache at all, "$d1"/* would be the files of /)
    for f in "$d1"/*; do
      same_files "top-k cache $(basename "$f") byte-identical" "$f" "$d2/$(basename "$f")"
    done
  fi
  ;;
kill)
  check "teacher trains" image_teacher
  D=(distill "${IMAGES[@]}" --teacher "$WORK/runs/teacher" --set run.cache_dir=$WORK/cache --set data.train_subset=6000
     --set train.epochs=3 --set data.batch_size=50 --set run.dist_timeout=20)
  two_ranks_by_hand straight "${D[@]}" --set run.name=straight
  check "uninterrupted 2-rank run finishes" test "$rc0$rc1" = 00
  start_two_ranks k "${D[@]}" --set run.name=cut
  wait_steps cut 20
  kill -9 $p1
  start=$(date +%s.%N)
  wait $p0
  rc=$?
  secs=$(/usr/bin/python3 -c "import time; print(round(time.time() - $start, 2))")
  echo "rank 0 exited $rc, $secs s after rank 1 was killed"
  check "rank 0 exits non-zero when rank 1 dies (rc $rc)" test "$rc" -ne 0
  check "rank 0 exits within run.dist_timeout = 20 s (took $secs s)" below "$secs" 20
  check "rank 0 says a rank was lost and how to go on" grep -q "another rank died.*--resume" "$WORK/k.0.err"
  check "rank 0 saved the last step every rank completed" test -f "$WORK/runs/cut/checkpoints/last.pt"
  two_ranks_by_hand resumed "${D[@]}" --set run.name=cut --resume
  check "relaunched with --resume, the job finishes (rc $rc0 $rc1)" test "$rc0$rc1" = 00
  check "it resumed from the checkpoint" grep -q "resuming from" "$WORK/resumed.0.err"
  diff=$(weight_diff "$WORK/runs/straight" "$WORK/runs/cut")
  echo "max |w_uninterrupted - w_resumed| = $diff"
  check "resumed weights equal the uninterrupted run's within 1e-6 (got $diff)" below "$diff" 1e-6
  # A rank that hangs (stopped, its connections open) is noticed by the timeout alone.
  start_two_ranks h "${D[@]}" --set run.dist_timeout=5 --set run.name=hang
  wait_steps hang 10
  kill -STOP $p1
  start=$(date +%s.%N)
  wait $p0
  rc=$?
  secs=$(/usr/bin/python3 -c "import time; print(round(time.time() - $start, 2))")
  kill -9 $p1
  echo "rank 0 exited $rc, $secs s after rank 1 hung (run.dist_timeout = 5 s)"
  check "a hung rank: rank 0 exits non-zero (rc $rc)" test "$rc" -ne 0
  check "a hung rank: rank 0 gives up after the 5 s timeout, not before and not much later ($secs s)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if 4.5 <= $secs < 15 else 1)"
  check "a hung rank: the message names the timeout" grep -q "within run.dist_timeout = 5 s" "$WORK/h.0.err"
  ;;
interrupt)
  check "teacher trains" image_teacher
  D=(distill "${IMAGES[@]}" --teacher "$WORK/runs/teacher" --set run.cache_dir=$WORK/cache --set data.train_subset=6000
     --set train.epochs=3 --set data.batch_size=50)
  two_ranks_by_hand straight "${D[@]}" --set run.name=straight
  check "uninterrupted 2-rank run finishes" test "$rc0$rc1" = 00
  # Ctrl-C reaching one rank only: the ranks agree at the next step and stop together.
  start_two_ranks i "${D[@]}" --set run.name=cut
  wait_steps cut 20
  kill -INT $p1
  wait $p0; rc0=$?
  wait $p1; rc1=$?
  check "Ctrl-C on rank 1 alone stops both ranks with 130 (got $rc0, $rc1)" test "$rc0$rc1" = 130130
  same "both stopped at the same step" "$(grep -o 'step [0-9]*' "$WORK/i.0.err")" "$(grep -o 'step [0-9]*' "$WORK/i.1.err")"
  check "rank 0 saved a checkpoint" test -f "$WORK/runs/cut/checkpoints/last.pt"
  two_ranks_by_hand resumed "${D[@]}" --set run.name=cut --resume
  check "resume finishes (rc $rc0 $rc1)" test "$rc0$rc1" = 00
  diff=$(weight_diff "$WORK/runs/straight" "$WORK/runs/cut")
  check "resumed weights equal the uninterrupted run's within 1e-6 (got $diff)" below "$diff" 1e-6
  # A run stopped with 2 ranks resumes in 1 process: the checkpoint does not depend on the ranks.
  "$RETORT" "${D[@]}" --set run.name=straight2 >/dev/null 2>&1 &
  p=$!
  wait_steps straight2 20
  kill -INT $p; wait $p
  two_ranks_by_hand elastic "${D[@]}" --set run.name=straight2 --resume
  check "a 1-process run resumes on 2 ranks (rc $rc0 $rc1)" test "$rc0$rc1" = 00
  a=$(json "$WORK/runs/straight/run.json" 'd["test_accuracy"]'); b=$(json "$WORK/runs/straight2/run.json" 'd["test_accuracy"]')
  check "and reaches the same accuracy within 0.5 points ($a vs $b)" below "$(/usr/bin/python3 -c "print(abs($a-$b))")" 0.005
  ;;
bf16_overlap)
  check "teacher trains" image_teacher
  # A live teacher (no cache): overlap computes its next answer on another thread.
  D=(distill "${IMAGES[@]}" --teacher "$WORK/runs/teacher" --set distill.cache=false)
  check "no overlap" "$RETORT" "${D[@]}" --set run.name=plain >"$WORK/p.out" 2>"$WORK/p.err"
  check "overlap" "$RETORT" "${D[@]}" --set run.name=overlap --set run.overlap_teacher=true >"$WORK/o.out" 2>"$WORK/o.err"
  diff=$(weight_diff "$WORK/runs/plain" "$WORK/runs/overlap")
  check "overlap changes nothing but timing: weights equal (diff $diff)" test "$diff" = 0
  check "bf16 student and teacher" "$RETORT" "${D[@]}" --set run.name=bf16 --set train.precision=bf16 \
    --set distill.teacher_precision=bf16 >"$WORK/b.out" 2>"$WORK/b.err"
  a=$(json "$WORK/runs/plain/run.json" 'd["test_accuracy"]'); b=$(json "$WORK/runs/bf16/run.json" 'd["test_accuracy"]')
  echo "test accuracy fp32 $a, bf16 $b"
  check "run.json records bf16" test "$(json "$WORK/runs/bf16/run.json" 'd["precision"]')" = bf16
  check "bf16 within 2 points of fp32 ($a vs $b)" below "$(/usr/bin/python3 -c "print(abs($a-$b))")" 0.02
  bdiff=$(weight_diff "$WORK/runs/plain" "$WORK/runs/bf16")
  differ "bf16 is not fp32 in disguise (weights differ by $bdiff)" "$bdiff" 0
  "$RETORT" "${D[@]}" --set run.name=bad --set train.precision=fp16 >"$WORK/x.out" 2>"$WORK/x.err"
  check "an unknown precision is refused" grep -q "train.precision" "$WORK/x.err"
  ;;
*)
  echo "unknown case $CASE"; exit 2 ;;
esac
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
