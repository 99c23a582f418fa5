// RUN: cleave-opt %s --cleave-fuse=epilogues=false --cleave-plan-memory -mlir-print-debuginfo | cleave-translate --cleave-to-cuda | FileCheck %s

// CHECK:       #include "cleave/runtime/Communicator.h"
// CHECK:       #include "cleave/runtime/Portability.h"
// CHECK:       #include "cleave/runtime/Program.h"

// The fused bias + gelu kernel: the bias is read through its broadcast
// index, the sum never reaches memory.
// CHECK:       template <int V>
// CHECK-NEXT:  CLEAVE_KERNEL void layer_k0_add_gelu(int64_t count,
// CHECK-NEXT:      const float *CLEAVE_RESTRICT in0,
// CHECK-NEXT:      const float *CLEAVE_RESTRICT in1,
// CHECK-NEXT:      float *CLEAVE_RESTRICT out0) {
// CHECK-NEXT:    CLEAVE_PARALLEL_FOR(chunk, count / V) {
// CHECK-NEXT:      const int64_t first = chunk * V;
// CHECK-NEXT:      const cleave::Vector<float, V> x0 = cleave::loadVector<V>(in0 + first % 16);
// CHECK-NEXT:      const cleave::Vector<float, V> x1 = cleave::loadVector<V>(in1 + first);
// CHECK-NEXT:      cleave::Vector<float, V> y0;
// CHECK-NEXT:      for (int lane = 0; lane < V; ++lane) {
// CHECK-NEXT:        // cleave.broadcast at {{.*}}emit.mlir:{{[0-9]+}}:{{[0-9]+}}
// CHECK-NEXT:        const float s0 = cleave::toCompute(x0[lane]);
// CHECK-NEXT:        const float s1 = cleave::toCompute(x1[lane]);
// CHECK-NEXT:        // cleave.add at
// CHECK-NEXT:        const float s2 = s1 + s0;
// CHECK-NEXT:        // cleave.gelu at
// CHECK-NEXT:        const float s3 = cleave::gelu(s2);
// CHECK-NEXT:        y0[lane] = cleave::store<float>(s3);
// CHECK-NEXT:      }
// CHECK-NEXT:      cleave::storeVector(out0 + first, y0);

// A broadcast that does not repeat every V elements is read element by
// element through its index.
// CHECK-LABEL: CLEAVE_KERNEL void layer_k1_mul
// CHECK:           const int64_t i = first + lane;
// CHECK:           cleave::toCompute(in0[(i / 16)]);

// Host code: arguments, then ops in program order on arena pointers.
// CHECK-LABEL: cleave::rt::Status layer(cleave::rt::Context &context
// CHECK:         auto *arg0 = static_cast<float *>(arguments[0]);
// CHECK:         auto *arg3 = static_cast<cleave::bf16 *>(arguments[3]);
// Each op that runs is numbered for the profiler; a reshape runs nothing.
// CHECK:         // cleave.matmul at
// CHECK-NEXT:    cleave::rt::beginOp(context, 0);
// CHECK-NEXT:    auto *[[MM:v[0-9]+]] = reinterpret_cast<float *>(arena + 0);
// CHECK:         .batch = 1;
// CHECK:         .m = 4;
// CHECK:         .n = 16;
// CHECK:         .k = 8;
// CHECK:         CLEAVE_RETURN_IF_ERROR(cleave::rt::gemm(context, cleave::rt::DType::F32,
// CHECK-NEXT:        "{{.*}}emit.mlir:{{[0-9]+}}:{{[0-9]+}}"));
// CHECK-NEXT:    cleave::rt::endOp(context, 0);
// Four elements per iteration where every buffer allows 128-bit accesses.
// CHECK:         if (cleave::canUseVectors<float>(64, {arg2, [[MM]], [[G:v[0-9]+]]}))
// CHECK-NEXT:      CLEAVE_LAUNCH(context, layer_k0_add_gelu<cleave::kVectorWidth<float>>, 64 / cleave::kVectorWidth<float>)(64, arg2, [[MM]], [[G]]);
// CHECK-NEXT:    else
// CHECK-NEXT:      CLEAVE_LAUNCH(context, layer_k0_add_gelu<1>, 64)(64, arg2, [[MM]], [[G]]);
// CHECK-NEXT:    CLEAVE_RETURN_IF_ERROR(context.checkLaunch("layer_k0_add_gelu",
// CHECK:         cleave::rt::reduce(context, cleave::rt::DType::F32, cleave::rt::ReduceKind::Sum, {2, {4, 16}}, 2u, [[G]],
// CHECK:         CLEAVE_LAUNCH(context, layer_k1_mul<1>, 64)(64, {{v[0-9]+}}, [[G]], [[M:v[0-9]+]]);
// CHECK:         // cleave.reshape
// CHECK-NEXT:    auto *[[R:v[0-9]+]] = [[M]];
// CHECK-NEXT:    // func.return
// CHECK:         results[0] = [[R]];
// CHECK:         results[1] = arg3;

// The descriptor the runner reads.
// CHECK-LABEL: const cleave::rt::ArgumentSpec k_layer_arguments[] = {
// CHECK-NEXT:      {{[{][{]}}"x", cleave::rt::DType::F32, {2, {4, 8}}}, cleave::rt::ArgumentKind::Input, nullptr},
// CHECK-NEXT:      {{[{][{]}}"w", cleave::rt::DType::F32, {2, {8, 16}}}, cleave::rt::ArgumentKind::Param, nullptr},
// CHECK:       const cleave::rt::ResultSpec k_layer_results[] = {
// CHECK-NEXT:      {{[{][{]}}"output0", cleave::rt::DType::F32, {2, {16, 4}}}, -1, nullptr},
// The op table: name, location, layer, element type, FLOPs, bytes, and
// its results' places in the arena (offset, elements, type), which
// CLEAVE_CHECK_FINITE reads.
// CHECK:       const cleave::rt::OpResult k_layer_op_results[] = {
// CHECK-NEXT:      {0, 64, cleave::rt::DType::F32},
// CHECK:       const cleave::rt::OpInfo k_layer_ops[] = {
// CHECK-NEXT:      {"cleave.matmul", "{{.*}}emit.mlir:{{[0-9]+}}:{{[0-9]+}}", "", "F32", 1024, 896, k_layer_op_results + 0, 1},
// CHECK-NEXT:      {"cleave.fused", "{{.*}}emit.mlir:{{[0-9]+}}:{{[0-9]+}}", "", "F32", {{[0-9]+}}, {{[0-9]+}}, k_layer_op_results + 1, 1},
// CHECK-NEXT:      {"cleave.reduce_sum",
// CHECK-NEXT:      {"cleave.fused",
// CHECK-NEXT:  };
// CHECK:       const cleave::rt::Program k_layer_program = {
// CHECK-NEXT:      "layer", k_layer_arguments, 4, k_layer_results, 2, 768, &layer, k_layer_index_sites, 0, nullptr, k_layer_ops, 4};
// CHECK:       int main(int argc, char **argv) {
// CHECK-NEXT:    return cleave::rt::runProgramMain(k_layer_program, argc, argv);

func.func @layer(%x: tensor<4x8xf32> {cleave.input = "x"},
                 %w: tensor<8x16xf32> {cleave.param = "w"},
                 %b: tensor<16xf32> {cleave.param = "b"},
                 %t: tensor<2xbf16> {cleave.param = "t"})
    -> (tensor<16x4xf32>, tensor<2xbf16>) {
  %0 = cleave.matmul %x, %w : tensor<4x8xf32>, tensor<8x16xf32> -> tensor<4x16xf32>
  %1 = cleave.broadcast %b dims [1] : tensor<16xf32> -> tensor<4x16xf32>
  %2 = cleave.add %0, %1 : tensor<4x16xf32>
  %3 = cleave.gelu %2 : tensor<4x16xf32>
  %4 = cleave.reduce_sum %3 dims [1] : tensor<4x16xf32> -> tensor<4xf32>
  %5 = cleave.broadcast %4 dims [0] : tensor<4xf32> -> tensor<4x16xf32>
  %6 = cleave.mul %3, %5 : tensor<4x16xf32>
  %7 = cleave.reshape %6 : tensor<4x16xf32> -> tensor<16x4xf32>
  return %7, %t : tensor<16x4xf32>, tensor<2xbf16>
}

// A declaration has no body to emit and is skipped.
// CHECK-NOT: external
func.func private @external(tensor<4xf32>) -> tensor<4xf32>
