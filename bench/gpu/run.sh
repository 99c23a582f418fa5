#!/usr/bin/env bash
# Runs on the GPU machine, inside a directory made by bench/gpu/bundle.sh:
# builds the CUDA runtime and the emitted programs with nvcc, then
#  - runs each forward model with parameters initialized on the machine
#    (--init-seed 0), compares the loss with the CPU backend's and prints the
#    forward time;
#  - calibrates: bf16 GEMMs by shape, memory bandwidth and (with two or
#    more GPUs) NCCL collectives, merged into the matching cluster file
#    (out/<cluster>.json, out/calibration.txt);
#  - trains each GPT 5 steps on one rank, on the NCCL path at world size 1
#    (meshes dp=1 and tp=1), and on two ranks sharing the GPU with MPI collectives staged
#    through host memory (dp=2, tp=2, and a 1F1B pipeline pp=2 over 4
#    micro-batches), printing the losses next to the CPU runs' and the step
#    times.
#
#   ./run.sh [--build-only] [--arch native|90|80,90] [--train "tiny mid"]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
arch=native build_only=0 trained="tiny mid"
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-only) build_only=1; shift ;;
    --arch) arch=$2; shift 2 ;;
    --train) trained=$2; shift 2 ;;
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

# MPI: MPICH from the bundled wheel, whatever the machine has (the runtime
# uses the C API only, so any MPI builds it).
mpi_root=$out/mpich
if [[ ! -d $mpi_root ]]; then
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$(ls "$here"/wheels/mpich-*.whl)" "$out/mpich-wheel"
  mv "$out"/mpich-wheel/mpich-*.data/data "$mpi_root"
  chmod +x "$mpi_root"/bin/*
fi
mpi_include=$mpi_root/include
mpi_libs=(-Xlinker "$mpi_root/lib/libmpi.so.12" -Xlinker -rpath -Xlinker "$mpi_root/lib"
          -Xlinker -rpath-link -Xlinker "$mpi_root/lib/mpich")
mpiexec=$mpi_root/bin/mpiexec
export PATH=$mpi_root/bin:$PATH
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

flags=(-O2 -std=c++17 -I"$here/include" -I"$mpi_include" -I"$nccl_root/include")
for source in Checkpoint Collectives ContextShared DataLoader DType Init Mesh \
    MpiCommunicator PipelineExecutor Runner Safetensors Schedule Tokens Trace \
    Trainer TrainingState; do
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
wait_all
link=("$out"/obj/*.o -lcublasLt -lcublas -Xlinker "$nccl_lib" -Xlinker -rpath -Xlinker
      "$(dirname "$nccl_lib")" "${mpi_libs[@]}")
for program in "$here"/models/*.cu "$here"/train/*.cu; do
  name=$(basename "$program" .cu)
  "$nvcc" "${flags[@]}" "${archflags[@]}" "$program" "${link[@]}" -o "$out/$name" &
done
"$nvcc" -O2 -std=c++17 "${archflags[@]}" -I"$mpi_include" -I"$nccl_root/include" \
  "$here/calibrate/gpu.cu" -lcublas -Xlinker "$nccl_lib" -Xlinker -rpath \
  -Xlinker "$(dirname "$nccl_lib")" "${mpi_libs[@]}" -o "$out/calibrate-gpu" &
wait_all
echo "run: built $(ls "$here"/models/*.cu "$here"/train/*.cu | wc -l) programs and calibrate-gpu"
[[ $build_only == 1 ]] && exit 0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# Calibration: GEMMs by shape and memory on one GPU (links need two or
# more), merged into the shipped cluster file of this kind of GPU.
gpus=$( (nvidia-smi --list-gpus || true) | wc -l)
if ! "$mpiexec" -n "$gpus" "$out/calibrate-gpu" "$out/calibration.json" \
    | tee "$out/calibration.txt"; then
  echo "run: calibration failed; going on with the checks"
  gpus=0
fi
cluster=
if [[ $gpus -gt 0 ]]; then
  case $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) in
    *H200*) cluster=h200-node ;;
    *H100*) cluster=dgx-h100 ;;
    *A100*80GB*) cluster=dgx-a100-80g ;;
    *A100*) cluster=dgx-a100-40g ;;
  esac
fi
if [[ -n $cluster ]]; then
  python3 "$here/calibrate/calibrate-gpu.py" "$here/clusters/$cluster.json" \
    "$out/calibration.json" -o "$out/$cluster.json" ||
    echo "run: merging the calibration failed; going on with the checks"
fi
for model in "$here"/models/*.cu; do
  name=$(basename "$model" .cu)
  result=$("$out/$name" --init-seed 0 --inputs "$here/models/$name.inputs.safetensors" \
    --repeat 20 --gemm-baseline)
  echo "$result" | sed "s/^/$name: /"
  gpu=$(echo "$result" | sed -n 's/^loss: //p')
  cpu=$(cat "$here/models/$name.cpu-loss")
  python3 -c "
g, c = float('$gpu'), float('$cpu')
print('$name: loss gpu %.9g cpu %.9g relative difference %.3e' % (g, c, abs(g - c) / max(1.0, abs(c))))"
done

# Training: the same 5 steps every way; losses against the CPU and against
# the one-rank GPU run.
train() {
  local name=$1 ranks=$2 collectives=$3
  local command=("$out/$name" --data "$here/train/text.bin" --steps 5 --lr 1e-3
                 --out "$out/ckpt-$name" "${@:4}")
  if [[ $ranks -gt 0 ]]; then
    command=(env CLEAVE_COLLECTIVES="$collectives" CLEAVE_COLLECTIVE_TIMEOUT=120
             "$mpiexec" -n "$ranks" "${command[@]}")
  fi
  "${command[@]}" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; return 1; }
  grep '^step' "$out/$name.log" | sed "s/^/$name ($collectives x$ranks): /"
}
for model in $trained; do
  train $model-one 0 none
  train $model-dp1 1 nccl
  train $model-tp1 1 nccl
  train $model-dp2 2 mpi
  train $model-tp2 2 mpi
  train $model-pp2 2 mpi --micro-batches 4
  python3 - "$out" "$here/train" "$model" <<'EOF'
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
