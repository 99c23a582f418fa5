#!/usr/bin/env bash
# Runs on the GPU machine, inside a directory made by bench/gpu/bundle.sh.
# Builds the CUDA runtime, its kernel tests, the kernel benchmark and the
# emitted programs with nvcc, then, in this order:
#  1. the runtime's kernel tests on the GPU;
#  2. gpt2-small training, f32 AdamW, batch 8 x 1024, 20 steps: tokens/s,
#     step time and peak memory, a second run that must give the same bits,
#     a profiled run (CLEAVE_PROFILE=1), and PyTorch's eager f32 GPT-2 from
#     the same initial parameters on the same batches, losses side by side;
#  3. gpt2-small's forward at batch 8 x 1024 against its GEMMs alone, the
#     small forward programs against the CPU's losses, and the tiny and mid
#     training steps (one rank, NCCL at world size 1, two ranks over MPI);
#  4. the memory-bound kernels against a device copy (f32, bf16);
#  5. the kernel tests again under compute-sanitizer (memcheck, and racecheck
#     for the row kernels' shared memory) where the machine has it: last,
#     because they take longest.
# Everything it prints also goes to out/results.txt.
#
#   ./run.sh [--build-only | --prebuilt] [--arch native|90|80,90]
#            [--train "tiny mid"] [--limit SECONDS] [--calibrate]
#
# --prebuilt runs the programs an earlier --build-only left in out/ (on
# another machine with the same CUDA major version: they find MPICH next to
# them) if they start here, and builds them otherwise. --limit stops any one
# measured command after SECONDS, so a slow stage cannot use up a
# time-limited GPU lease; what it printed is kept.
#
# --calibrate also measures GEMMs by shape, memory and (with two or more
# GPUs) NCCL collectives and merges them into the matching cluster file
# (out/<cluster>.json).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
arch=native build_only=0 prebuilt=0 trained="tiny mid" calibrate=0 limit=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-only) build_only=1; shift ;;
    --prebuilt) prebuilt=1; shift ;;
    --limit) limit=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --train) trained=$2; shift 2 ;;
    --calibrate) calibrate=1; shift ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
if [[ $arch == native ]]; then
  archflags=(-arch=native)
else
  archflags=()
  for a in ${arch//,/ }; do archflags+=("-gencode=arch=compute_$a,code=sm_$a"); done
fi
out=$here/out
mkdir -p "$out/obj"
# Waits for the background jobs; fails if any failed.
wait_all() {
  local failed=0
  for job in $(jobs -p); do wait "$job" || failed=1; done
  [[ $failed == 0 ]] || { echo "run.sh: a build failed" >&2; exit 1; }
}

# MPI: MPICH from the bundled wheel where there is one (the runtime uses
# the C API only, so any MPI builds it), else the machine's own.
if ls "$here"/wheels/mpich-*.whl > /dev/null 2>&1; then
  mpi_root=$out/mpich
  if [[ ! -d $mpi_root ]]; then
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
      "$(ls "$here"/wheels/mpich-*.whl)" "$out/mpich-wheel"
    mv "$out"/mpich-wheel/mpich-*.data/data "$mpi_root"
    chmod +x "$mpi_root"/bin/*
  fi
  mpi_include=$mpi_root/include
  # The programs live in $out, MPICH in $out/mpich: found relative to them,
  # so out/ built on one machine runs on another.
  mpi_libs=(-Xlinker "$mpi_root/lib/libmpi.so.12" -Xlinker -rpath -Xlinker '$ORIGIN/mpich/lib'
            -Xlinker -rpath -Xlinker "$mpi_root/lib"
            -Xlinker -rpath-link -Xlinker "$mpi_root/lib/mpich")
  mpiexec=$mpi_root/bin/mpiexec
  export PATH=$mpi_root/bin:$PATH
else
  mpi_include=$(mpicc --showme:incdirs | cut -d' ' -f1)
  mpi_libs=(-L"$(mpicc --showme:libdirs | cut -d' ' -f1)" -lmpi)
  mpiexec=$(command -v mpiexec)
fi
# NCCL: next to CUDA, else the nvidia-nccl wheel PyTorch brings.
nccl_root=
for candidate in /usr/local/cuda /usr \
    "$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))' 2> /dev/null || true)"; do
  if [[ -n $candidate && -f $candidate/include/nccl.h ]]; then nccl_root=$candidate; break; fi
done
[[ -n $nccl_root ]] || { echo "run.sh: no NCCL found" >&2; exit 1; }
nccl_lib=$(find "$nccl_root"/lib* -name 'libnccl.so*' 2> /dev/null | sort | head -1)
[[ -n $nccl_lib ]] || { echo "run.sh: no libnccl.so under $nccl_root" >&2; exit 1; }
echo "run: MPI headers $mpi_include, mpiexec $mpiexec; NCCL $nccl_lib"

if [[ $prebuilt == 1 ]]; then
  # Built elsewhere: find this machine's NCCL and CUDA libraries.
  export LD_LIBRARY_PATH=$(dirname "$nccl_lib"):/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if [[ -x $out/kernel-tests ]] && "$out/kernel-tests" --gtest_list_tests > /dev/null 2>&1; then
    echo "run: using the programs built earlier in $out"
  else
    echo "run: the programs in $out do not start here; building them"
    prebuilt=0
  fi
fi
if [[ $prebuilt == 0 ]]; then
  flags=(-O2 -std=c++17 -I"$here/include" -I"$mpi_include" -I"$nccl_root/include")
  for source in Buckets Checkpoint Checksum Collectives ContextShared DataLoader DType \
      GradientReducer Init Mesh MpiCommunicator PipelineExecutor Profiler Runner \
      Safetensors Schedule Tokens Trace Trainer TrainingState; do
    "$nvcc" "${flags[@]}" -x c++ -c "$here/src/$source.cpp" -o "$out/obj/$source.o" &
  done
  for source in ContextCuda GemmCuda NcclCommunicator; do
    "$nvcc" "${flags[@]}" "${archflags[@]}" -c "$here/src/$source.cu" -o "$out/obj/$source.o" &
  done
  # The kernel families are C++ sources both backends compile.
  for family in "$here"/src/kernels/*.cpp; do
    "$nvcc" "${flags[@]}" "${archflags[@]}" -x cu -c "$family" \
      -o "$out/obj/kernels-$(basename "$family" .cpp).o" &
  done
  # GoogleTest and the kernel tests, host code only.
  mkdir -p "$out/gtest"
  gtest=(-I"$here/googletest/include" -I"$here/googletest")
  "$nvcc" -O2 -std=c++17 "${gtest[@]}" -x c++ -c "$here/googletest/src/gtest-all.cc" \
    -o "$out/gtest/gtest-all.o" &
  "$nvcc" -O2 -std=c++17 "${gtest[@]}" -x c++ -c "$here/googletest/src/gtest_main.cc" \
    -o "$out/gtest/gtest_main.o" &
  "$nvcc" "${flags[@]}" "${gtest[@]}" -x c++ -c "$here/tests/KernelShapesTest.cpp" \
    -o "$out/gtest/KernelShapesTest.o" &
  "$nvcc" "${flags[@]}" -x c++ -c "$here/bench/bandwidth.cpp" -o "$out/gtest/bandwidth.o" &
  wait_all
  link=("$out"/obj/*.o -lcublasLt -lcublas -Xlinker "$nccl_lib" -Xlinker -rpath -Xlinker
        "$(dirname "$nccl_lib")" "${mpi_libs[@]}")
  for program in "$here"/models/*.cu "$here"/train/*.cu; do
    name=$(basename "$program" .cu)
    "$nvcc" "${flags[@]}" "${archflags[@]}" "$program" "${link[@]}" -o "$out/$name" &
  done
  "$nvcc" "${archflags[@]}" "$out"/gtest/{KernelShapesTest,gtest-all,gtest_main}.o \
    "${link[@]}" -lpthread -o "$out/kernel-tests" &
  "$nvcc" "${archflags[@]}" "$out/gtest/bandwidth.o" "${link[@]}" \
    -o "$out/kernel-bandwidth" &
  "$nvcc" -O2 -std=c++17 "${archflags[@]}" -I"$mpi_include" -I"$nccl_root/include" \
    "$here/calibrate/gpu.cu" -lcublas -Xlinker "$nccl_lib" -Xlinker -rpath \
    -Xlinker "$(dirname "$nccl_lib")" "${mpi_libs[@]}" -o "$out/calibrate-gpu" &
  wait_all
  echo "run: built $(ls "$here"/models/*.cu "$here"/train/*.cu | wc -l) programs," \
    "kernel-tests, kernel-bandwidth and calibrate-gpu"
fi
[[ $build_only == 1 ]] && exit 0

exec > >(tee "$out/results.txt") 2>&1
# Runs a measured command, stopped after --limit seconds if one was given.
limited() {
  if [[ $limit -gt 0 ]]; then
    timeout --kill-after=10 "$limit" "$@"
    local status=$?
    [[ $status == 124 || $status == 137 ]] && echo "run: stopped after $limit s (--limit): $*"
    return $status
  fi
  "$@"
}
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
cluster=
case $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) in
  *H200*) cluster=h200-node ;;
  *H100*) cluster=dgx-h100 ;;
  *A100*80GB*) cluster=dgx-a100-80g ;;
  *A100*) cluster=dgx-a100-40g ;;
esac

echo "== 1. kernel tests =="
limited "$out/kernel-tests" --gtest_brief=1 || echo "run: KERNEL TESTS FAILED"

echo "== 2. gpt2-small training, f32 AdamW, batch 8 x 1024 =="
data=$here/train/text.bin
gpt2=(limited "$out/gpt2-one" --data "$data" --lr 3e-4)
# The initial parameters, as the checkpoint of step 0.
"${gpt2[@]}" --steps 0 --out "$out/gpt2-init" > /dev/null || echo "run: GPT2 INIT FAILED"
"${gpt2[@]}" --steps 20 --out "$out/gpt2-a" > "$out/gpt2-a.log" 2>&1 ||
  echo "run: GPT2 TRAINING FAILED"
grep '^step' "$out/gpt2-a.log" || tail -5 "$out/gpt2-a.log"
"${gpt2[@]}" --steps 20 --out "$out/gpt2-b" > "$out/gpt2-b.log" 2>&1 ||
  echo "run: SECOND GPT2 RUN FAILED"
if cmp -s "$out"/gpt2-a/step-20/*.safetensors "$out"/gpt2-b/step-20/*.safetensors &&
    diff -q <(awk '/^step/ {print $4, $6}' "$out/gpt2-a.log") \
            <(awk '/^step/ {print $4, $6}' "$out/gpt2-b.log") > /dev/null; then
  echo "run: two runs give bit-identical parameters after 20 steps"
else
  echo "run: TWO RUNS DIFFER"
fi
python3 - "$out/gpt2-a.log" <<'EOF' || true
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.startswith("step")]
steady = rows[3:] or rows
rate = sum(float(r[9]) for r in steady) / len(steady)
time = sum(float(r[11]) for r in steady) / len(steady)
print(f"cleave: {rate:.0f} tokens/s, {time:.1f} ms per step (mean of steps 4..{len(rows)})")
EOF
limited env CLEAVE_PROFILE=1 ${cluster:+CLEAVE_PROFILE_CLUSTER=$here/clusters/$cluster.json} \
  "${gpt2[@]:1}" --steps 4 --out "$out/gpt2-profile" 2>&1 | grep -v '^step' | head -60 || true
limited python3 "$here/bench/torch_gpt2.py" --layers 12 --hidden 768 --heads 12 --seq 1024 \
  --vocab 50257 --batch 8 --init "$out/gpt2-init" --data "$data" --steps 20 \
  --lr 3e-4 --device cuda --compare "$out/gpt2-a.log" || echo "run: PYTORCH RUN FAILED"

echo "== 2b. gpt2-small training, bf16 AdamW, batch 8 x 1024, against torch.compile =="
flops=$(cat "$here/train/gpt2.flops-per-step")
limited "$out/gpt2-bf16" --data "$data" --lr 3e-4 --steps 20 --out "$out/gpt2-bf16" \
  > "$out/gpt2-bf16.log" 2>&1 || echo "run: GPT2 BF16 TRAINING FAILED"
grep '^step' "$out/gpt2-bf16.log" || tail -5 "$out/gpt2-bf16.log"
python3 - "$out/gpt2-bf16.log" "$flops" <<'EOF' || true
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.startswith("step")]
steady = rows[3:] or rows
rate = sum(float(r[9]) for r in steady) / len(steady)
time = sum(float(r[11]) for r in steady) / len(steady)
flops = float(sys.argv[2])
mfu = flops / (time / 1e3) / 989e12
print(f"cleave bf16: {rate:.0f} tokens/s, {time:.1f} ms per step, MFU {100 * mfu:.1f}% "
      f"of 989 TFLOP/s (mean of steps 4..{len(rows)}; {flops:.3e} FLOPs per step)")
EOF
limited python3 "$here/bench/torch_gpt2.py" --layers 12 --hidden 768 --heads 12 --seq 1024 \
  --vocab 50257 --batch 8 --init "$out/gpt2-init" --data "$data" --steps 20 \
  --lr 3e-4 --device cuda --bf16 --compile --flops-per-step "$flops" \
  --compare "$out/gpt2-bf16.log" || echo "run: PYTORCH BF16 RUN FAILED"

echo "== 3. forward programs and the tiny and mid steps =="
for model in "$here"/models/*.cu; do
  name=$(basename "$model" .cu)
  result=$(limited "$out/$name" --init-seed 0 --inputs "$here/models/$name.inputs.safetensors" \
    --repeat 10 --gemm-baseline 2>&1) || echo "run: $name FAILED"
  echo "$result" | sed "s/^/$name: /"
  [[ -f $here/models/$name.cpu-loss ]] || continue
  gpu=$(echo "$result" | sed -n 's/^loss: //p')
  cpu=$(cat "$here/models/$name.cpu-loss")
  python3 -c "
g, c = float('$gpu'), float('$cpu')
print('$name: loss gpu %.9g cpu %.9g relative difference %.3e' % (g, c, abs(g - c) / max(1.0, abs(c))))"
done
# The same 5 steps every way; losses against the CPU and the one-rank run.
train() {
  local name=$1 ranks=$2 collectives=$3
  local command=("$out/$name" --data "$data" --steps 5 --lr 1e-3
                 --out "$out/ckpt-$name" "${@:4}")
  if [[ $ranks -gt 0 ]]; then
    command=(env CLEAVE_COLLECTIVES="$collectives" CLEAVE_COLLECTIVE_TIMEOUT=120
             "$mpiexec" -n "$ranks" "${command[@]}")
  fi
  limited "${command[@]}" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; return 1; }
  grep '^step' "$out/$name.log" | sed "s/^/$name ($collectives x$ranks): /"
}
for model in $trained; do
  train $model-one 0 none || echo "run: $model-one FAILED"
  train $model-dp1 1 nccl || echo "run: $model-dp1 FAILED"
  train $model-tp1 1 nccl || echo "run: $model-tp1 FAILED"
  train $model-dp2 2 mpi || echo "run: $model-dp2 FAILED"
  train $model-tp2 2 mpi || echo "run: $model-tp2 FAILED"
  train $model-pp2 2 mpi --micro-batches 4 || echo "run: $model-pp2 FAILED"
  python3 - "$out" "$here/train" "$model" <<'EOF' || echo "run: comparing the $model runs failed"
import sys
out, reference, model = sys.argv[1:]
def losses(path):
    return [float(line.split()[3]) for line in open(path) if line.startswith("step")]
gpu = losses(f"{out}/{model}-one.log")
cpu = losses(f"{reference}/{model}-one.cpu-log")
print(f"{model}: one rank, gpu vs cpu: losses within "
      f"{max(abs(g - c) / max(1, abs(c)) for g, c in zip(gpu, cpu)):.2e}")
for name in ["dp1", "tp1", "dp2", "tp2", "pp2"]:
    other = losses(f"{out}/{model}-{name}.log")
    print(f"{model}: {name} vs one rank on the gpu: losses within "
          f"{max(abs(a - b) / max(1, abs(b)) for a, b in zip(other, gpu)):.2e}")
EOF
done

echo "== 4. memory-bound kernels =="
limited "$out/kernel-bandwidth" --dtype f32
limited "$out/kernel-bandwidth" --dtype bf16

if [[ $calibrate == 1 ]]; then
  echo "== calibration =="
  gpus=$( (nvidia-smi --list-gpus || true) | wc -l)
  if limited "$mpiexec" -n "$gpus" "$out/calibrate-gpu" "$out/calibration.json" \
      | tee "$out/calibration.txt" && [[ -n $cluster ]]; then
    python3 "$here/calibrate/calibrate-gpu.py" "$here/clusters/$cluster.json" \
      "$out/calibration.json" -o "$out/$cluster.json" ||
      echo "run: merging the calibration failed"
  fi
fi
echo "== 5. kernel tests under compute-sanitizer =="
if command -v compute-sanitizer > /dev/null; then
  limited compute-sanitizer --tool memcheck --error-exitcode 1 "$out/kernel-tests" \
    --gtest_brief=1 > "$out/memcheck.txt" 2>&1 &&
    echo "run: memcheck clean" || { tail -30 "$out/memcheck.txt"; echo "run: MEMCHECK FAILED"; }
  limited compute-sanitizer --tool racecheck --error-exitcode 1 "$out/kernel-tests" \
    --gtest_brief=1 --gtest_filter='*/0.Softmax*:*/0.Norms*:*/0.CrossEntropyAnd*:*/0.Reductions*:*/0.Attention*' \
    > "$out/racecheck.txt" 2>&1 &&
    echo "run: racecheck clean" || { tail -30 "$out/racecheck.txt"; echo "run: RACECHECK FAILED"; }
else
  echo "run: no compute-sanitizer on this machine"
fi

date -u
