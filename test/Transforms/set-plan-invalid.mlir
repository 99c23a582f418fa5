// RUN: cleave-opt %s -split-input-file -verify-diagnostics '--cleave-set-plan=mesh=dp=2 strategy=fsdp'
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=dp=2 strategy=megatron' -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOAXIS
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=dp=2,tp=2 strategy=megatron,search' -o /dev/null 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=dp=2 strategy=zero1,dp' -o /dev/null 2>&1 | FileCheck %s --check-prefix=ZERO-FIRST
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=dp:2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=SPELLING
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=ep=2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=AXIS
// RUN: not cleave-opt %s '--cleave-set-plan=mesh=pp=2 schedule=1f1b virtual-stages=2' -o /dev/null 2>&1 | FileCheck %s --check-prefix=VIRTUAL
// RUN: not cleave-opt %s '--cleave-set-plan=precision=fp8' -o /dev/null 2>&1 | FileCheck %s --check-prefix=PRECISION
// RUN: cleave-opt %s --cleave-set-plan -o %t.planned.mlir
// RUN: not cleave-opt %t.planned.mlir --cleave-set-plan -o /dev/null 2>&1 | FileCheck %s --check-prefix=PLANNED

// expected-error @+1 {{cleave-set-plan: unknown strategy 'fsdp' (dp, zero1, zero2, zero3, megatron, megatron-sp, search)}}
module {
}

// NOAXIS: error: cleave-set-plan: strategy 'megatron' needs a tp axis in the mesh
// TWICE: error: cleave-set-plan: two strategies for the tp axis: megatron and search
// ZERO-FIRST: error: cleave-set-plan: two strategies for the dp axis: zero1 and dp
// SPELLING: error: cleave-set-plan: a mesh is axis=size pairs like dp=2,tp=2, got 'dp:2'
// AXIS: error: cleave-set-plan: plan: mesh axes are dp, tp and pp, got 'ep'
// VIRTUAL: error: cleave-set-plan: plan: only the interleaved schedule runs several virtual stages per rank
// PRECISION: error: cleave-set-plan: plan: precision must be f32, bf16 or f16, got 'fp8'
// PLANNED: error: cleave-set-plan: the module already has a plan or a mesh; a plan is recorded once, on an unpartitioned model
