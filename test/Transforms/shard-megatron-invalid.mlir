// RUN: cleave-opt %s -split-input-file -verify-diagnostics --cleave-shard-megatron=function=f

cleave.mesh @mesh(tp = 2)
func.func @f(%w: tensor<8x12xf32> {cleave.param = "layers.0.attn.q.weight"},
             %q: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> {
  // expected-error@+1 {{3 attention heads do not split over tp=2}}
  %0:2 = cleave.attention %q, %q, %q causal : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
  return %0#0 : tensor<1x3x4x4xf32>
}

// -----

cleave.mesh @mesh(tp = 4)
// expected-error@+1 {{'embed.tokens': dimension 0 of size 50257 does not split over tp=4; pad it to 50260 or use fewer devices}}
func.func @f(%table: tensor<50257x8xf32> {cleave.param = "embed.tokens"},
             %ids: tensor<2xi32> {cleave.input = "tokens"}) -> tensor<2x8xf32> {
  %0 = cleave.embedding %table, %ids : tensor<50257x8xf32>, tensor<2xi32> -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// A product alone in its block has no row-parallel partner: nothing to split.
cleave.mesh @mesh(tp = 2)
// expected-error@+1 {{found nothing the Megatron strategy splits: no embedding, output head, or pair of column- and row-parallel products in a transformer block}}
func.func @f(%w: tensor<8x8xf32> {cleave.param = "layers.0.attn.q.weight"},
             %x: tensor<4x8xf32> {cleave.input = "features"}) -> tensor<4x8xf32> {
  %0 = cleave.matmul %x, %w {cleave.layer = #cleave.layer<0>} : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// expected-error@+1 {{the Megatron strategy needs exactly one cleave.mesh with axis 'tp', found 0}}
module {
  cleave.mesh @mesh(dp = 2)
  func.func @f(%w: tensor<8x8xf32> {cleave.param = "layers.0.attn.q.weight"}) -> tensor<8x8xf32> {
    return %w : tensor<8x8xf32>
  }
}
