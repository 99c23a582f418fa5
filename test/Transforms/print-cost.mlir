// RUN: cleave-opt %s --cleave-print-cost -o /dev/null | FileCheck %s --check-prefix=TABLE
// RUN: cleave-opt %s --cleave-print-cost=json=true -o /dev/null | FileCheck %s --check-prefix=JSON
// RUN: cleave-opt %s --cleave-print-cost | FileCheck %s --check-prefix=IR

// Hand-computed:
//   params   = 4*8 + 8                                  = 40
//   matmul   = 2 * 2*8*4                                = 128 FLOPs (all matmul)
//   add      = 2*8                                      = 16
//   softmax  = 5 * 2*8                                  = 80
//   attention: matmul 4 * batch 2 * S 3 * T 3 * D 4     = 288, + 6 * 2*3*3 = 396
//   total = 128 + 16 + 80 + 396 = 620, matmul = 128 + 288 = 416
//   activation bytes (f32): matmul 64 + broadcast 64 + add 64 + reshape 0
//                           + softmax 64 + attention 96 + its logsumexp 24
//                           = 376
//   bytes read: matmul 32 + 128, broadcast 32, add 128, softmax 64,
//               attention 3 * 96 = 672

// TABLE-LABEL: cost of @small
// TABLE-NEXT:   parameters 40
// TABLE-NEXT:   activation bytes 376
// TABLE-NEXT:   op count FLOPs
// TABLE-NEXT:   cleave.matmul 1 128
// TABLE-NEXT:   cleave.broadcast 1 0
// TABLE-NEXT:   cleave.add 1 16
// TABLE-NEXT:   cleave.reshape 1 0
// TABLE-NEXT:   cleave.softmax 1 80
// TABLE-NEXT:   cleave.attention 1 396
// TABLE-NEXT:   matmul FLOPs 416
// TABLE-NEXT:   total FLOPs 620
// TABLE-LABEL: cost of @big
// TABLE-NEXT:   parameters 0
// TABLE-NEXT:   activation bytes 70,368,744,177,664
// TABLE:        total FLOPs 147,573,952,589,676,412,928

// JSON: {"function": "small", "params": 40, "flops": 620, "matmul_flops": 416, "activation_bytes": 376, "bytes_read": 672, "comm_bytes": 0, "ops": {"cleave.matmul": {"count": 1, "flops": 128}, "cleave.broadcast": {"count": 1, "flops": 0}, "cleave.add": {"count": 1, "flops": 16}, "cleave.reshape": {"count": 1, "flops": 0}, "cleave.softmax": {"count": 1, "flops": 80}, "cleave.attention": {"count": 1, "flops": 396}}}
// JSON-NEXT: {"function": "big", "params": 0, "flops": 147573952589676412928, "matmul_flops": 147573952589676412928,

// The report comes before the module, which is printed unchanged.
// IR: cost of @small
// IR: func.func @small

func.func @small(%w: tensor<4x8xf32> {cleave.param = "w"}, %b: tensor<8xf32> {cleave.param = "b"},
                 %x: tensor<2x4xf32> {cleave.input = "x"}, %q: tensor<2x3x4xf32> {cleave.input = "q"})
    -> (tensor<16xf32>, tensor<2x3x4xf32>) {
  %0 = cleave.matmul %x, %w : tensor<2x4xf32>, tensor<4x8xf32> -> tensor<2x8xf32>
  %1 = cleave.broadcast %b dims [1] : tensor<8xf32> -> tensor<2x8xf32>
  %2 = cleave.add %0, %1 : tensor<2x8xf32>
  %3 = cleave.reshape %2 : tensor<2x8xf32> -> tensor<16xf32>
  %4 = cleave.softmax %2 : tensor<2x8xf32>
  %5:2 = cleave.attention %q, %q, %q causal : tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>
  return %3, %5#0 : tensor<16xf32>, tensor<2x3x4xf32>
}

// 2 * (2^22)^3 = 2^67 FLOPs overflow 64-bit integers but not the double
// totals, and are printed exactly.
func.func @big(%a: tensor<4194304x4194304xf32>) -> tensor<4194304x4194304xf32> {
  %0 = cleave.matmul %a, %a : tensor<4194304x4194304xf32>, tensor<4194304x4194304xf32> -> tensor<4194304x4194304xf32>
  return %0 : tensor<4194304x4194304xf32>
}

// Parameter counts beyond int64 stay exact; a zero head size gives no matmul
// FLOPs (not NaN), only the 6 per score of scaling and softmax: 6 * 2*4*4.
// JSON-NEXT: {"function": "edge", "params": 18446744073709551616, "flops": 192, "matmul_flops": 0,
// TABLE-LABEL: cost of @edge
// TABLE-NEXT: parameters 18,446,744,073,709,551,616
func.func @edge(%w: tensor<4294967296x4294967296xf32> {cleave.param = "w"}, %q: tensor<2x4x0xf32>) {
  %0:2 = cleave.attention %q, %q, %q : tensor<2x4x0xf32>, tensor<2x4x0xf32>, tensor<2x4x0xf32>
  return
}
