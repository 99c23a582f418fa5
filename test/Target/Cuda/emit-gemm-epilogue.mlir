// RUN: cleave-opt %s --cleave-fuse --cleave-plan-memory | cleave-translate --cleave-to-cuda | FileCheck %s

// A matmul_bias is one gemm call whose arguments name the epilogue, the bias
// and, when the backward reads it, the pre-activation buffer.
// CHECK-LABEL: cleave::rt::Status mlp(cleave::rt::Context &context
// CHECK:         auto *[[B:arg[0-9]+]] = static_cast<cleave::bf16 *>(arguments[2]);
// CHECK:         // cleave.matmul_bias
// CHECK-NEXT:    cleave::rt::beginOp(context, 0);
// CHECK-NEXT:    auto *[[Y:v[0-9]+]] = reinterpret_cast<cleave::bf16 *>(arena + {{[0-9]+}});
// CHECK-NEXT:    auto *[[PRE:v[0-9]+]] = reinterpret_cast<cleave::bf16 *>(arena + {{[0-9]+}});
// CHECK:         [[G:g[0-9]+]].batch = 2;
// CHECK-NEXT:    [[G]].m = 4;
// CHECK-NEXT:    [[G]].n = 16;
// CHECK-NEXT:    [[G]].k = 8;
// CHECK-NEXT:    [[G]].transposeA = false;
// CHECK-NEXT:    [[G]].transposeB = true;
// CHECK:         [[G]].c = [[Y]];
// CHECK:         [[G]].epilogue = cleave::rt::GemmEpilogue::BiasGelu;
// CHECK-NEXT:    [[G]].bias = [[B]];
// CHECK-NEXT:    [[G]].preActivation = [[PRE]];
// CHECK-NEXT:    CLEAVE_RETURN_IF_ERROR(cleave::rt::gemm(context, cleave::rt::DType::BF16, [[G]],
// A bias alone.
// CHECK:         // cleave.matmul_bias
// CHECK:         [[G2:g[0-9]+]].epilogue = cleave::rt::GemmEpilogue::Bias;
// CHECK-NOT:     preActivation
// CHECK:         cleave::rt::gemm(context, cleave::rt::DType::BF16, [[G2]],
// The profiler counts the product and the epilogue's add and gelu.
// CHECK:       const cleave::rt::OpInfo k_mlp_ops[] = {
// CHECK-NEXT:      {"cleave.matmul_bias", "{{.*}}", "", "BF16", 3200, {{[0-9]+}}, k_mlp_op_results + 0, 2},
// CHECK-NEXT:      {"cleave.fused",
// CHECK-NEXT:      {"cleave.matmul_bias", "{{.*}}", "", "BF16", 2112, {{[0-9]+}}, k_mlp_op_results + {{[0-9]+}}, {{[12]}}},
func.func @mlp(%x: tensor<2x4x8xbf16>, %w: tensor<16x8xbf16>, %b: tensor<16xbf16>,
               %dy: tensor<2x4x16xbf16>, %w2: tensor<16x8xbf16>, %b2: tensor<8xbf16>)
    -> (tensor<2x4x16xbf16>, tensor<2x4x16xbf16>, tensor<2x4x8xbf16>) {
  %0 = cleave.matmul %x, %w transpose_rhs : tensor<2x4x8xbf16>, tensor<16x8xbf16> -> tensor<2x4x16xbf16>
  %1 = cleave.broadcast %b dims [2] : tensor<16xbf16> -> tensor<2x4x16xbf16>
  %2 = cleave.add %0, %1 : tensor<2x4x16xbf16>
  %3 = cleave.gelu %2 : tensor<2x4x16xbf16>
  %4 = cleave.mul %2, %dy : tensor<2x4x16xbf16>
  %5 = cleave.matmul %3, %w2 : tensor<2x4x16xbf16>, tensor<16x8xbf16> -> tensor<2x4x8xbf16>
  %6 = cleave.broadcast %b2 dims [2] : tensor<8xbf16> -> tensor<2x4x8xbf16>
  %7 = cleave.add %5, %6 : tensor<2x4x8xbf16>
  return %3, %4, %7 : tensor<2x4x16xbf16>, tensor<2x4x16xbf16>, tensor<2x4x8xbf16>
}
