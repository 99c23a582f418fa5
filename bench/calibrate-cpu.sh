#!/usr/bin/env bash
# Measures this machine for the planner's cpu-local cluster: single-thread
# GEMMs over a sweep of shapes, memory bandwidth, and MPI send/recv and
# all-reduce between two ranks (size, time, algbw, busbw as nccl-tests
# prints them); writes the cluster file.
#
#   bench/calibrate-cpu.sh [OUT.json]   (default: share/cleave/clusters/cpu-local.json)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/share/cleave/clusters/cpu-local.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpicxx -O2 -std=c++17 -I/usr/include/x86_64-linux-gnu/openblas-openmp \
  "$root/bench/calibrate/cpu.cpp" -o "$work/calibrate-cpu" \
  /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so \
  -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp
launch=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1
        -x OPENBLAS_NUM_THREADS=1)
[[ $(id -u) == 0 ]] && launch+=(--allow-run-as-root)
"${launch[@]}" "$work/calibrate-cpu" "$out"
/usr/bin/python3 "$root/bench/calibrate-step.py" "$out"
