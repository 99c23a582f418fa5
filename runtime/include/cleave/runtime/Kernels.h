//===- Kernels.h - GEMM and the library kernels -----------------*- C++ -*-===//
//
// The operations generated code calls instead of emitting a kernel: GEMM
// (OpenBLAS on the CPU, cuBLASLt on CUDA) and the kernels whose structure
// does not fit an elementwise loop. Tensors are dense row-major device
// pointers; the element type is passed as a DType. All calls are queued on
// the context's stream. `location` names the source op in error messages.
//
// The kernels other than GEMM are one source per family (src/kernels/)
// compiled for both backends. Determinism: a call is bit-reproducible for
// the same shapes, buffers and device: reductions run in an order fixed by
// those (a team reduction's fixed tree on CUDA, element order on the CPU)
// and nothing sums with atomics. cuBLASLt may pick algorithms whose results depend on the GPU
// model and library version.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_KERNELS_H
#define CLEAVE_RUNTIME_KERNELS_H

#include "cleave/runtime/Context.h"
#include "cleave/runtime/DType.h"

#include <cstdint>

namespace cleave::rt {

constexpr int kMaxRank = 8;

/// A shape passed by value into kernels.
struct Shape {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
};

/// What a GEMM does to its product as it stores it.
enum class GemmEpilogue {
  None,
  /// c = product + bias, bias ([n], c's type) added to every row.
  Bias,
  /// c = gelu(product + bias); the sum goes to preActivation when set.
  BiasGelu,
};

/// c[i] = op(a[i]) * op(b[i]) for i < batch, with op(a) of shape [m, k] and
/// op(b) of shape [k, n]; op transposes when the flag is set. A stride of 0
/// repeats the same matrix for every batch element. Rows of each matrix are
/// contiguous (the leading dimension is the row length); the strides place
/// the matrices, so a block of rows inside a larger tensor is addressed by
/// offsetting the pointer.
struct GemmArgs {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  const void *a = nullptr, *b = nullptr;
  void *c = nullptr;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  /// c += product instead of c = product.
  bool accumulate = false;
  /// c holds the type the product accumulates in: f32 for bf16 and f16
  /// operands (f32 and f64 operands already give their own type).
  bool wideOutput = false;
  /// Applied as c is stored (not with accumulate). preActivation, when
  /// set, is laid out as c is.
  GemmEpilogue epilogue = GemmEpilogue::None;
  const void *bias = nullptr;
  void *preActivation = nullptr;
};
Status gemm(Context &context, DType dtype, const GemmArgs &args,
            const char *location);

/// Applies `args.epilogue` to the product already stored in `args.c`, of
/// type `outputType`: what gemm() does after the BLAS call where the BLAS
/// library has no such epilogue.
Status applyGemmEpilogue(Context &context, DType outputType,
                         const GemmArgs &args, const char *location);

/// The element type gemm() stores `args.c` in for operands of `dtype`.
inline DType getGemmOutputType(DType dtype, const GemmArgs &args) {
  return args.wideOutput && (dtype == DType::BF16 || dtype == DType::F16)
             ? DType::F32
             : dtype;
}

/// Why gemm() cannot run `args` (a null string when it can): the checks
/// both backends share.
const char *getGemmArgsError(const GemmArgs &args);

/// One recorded gemm() call (see Context::setGemmLog).
struct GemmCall {
  DType dtype;
  GemmArgs args;
};

/// Softmax over rows of `cols` elements.
Status softmax(Context &context, DType dtype, int64_t rows, int64_t cols,
               const void *input, void *output, const char *location);

Status layerNorm(Context &context, DType dtype, int64_t rows, int64_t cols,
                 const void *input, const void *scale, const void *bias,
                 double epsilon, void *output, const char *location);

Status rmsNorm(Context &context, DType dtype, int64_t rows, int64_t cols,
               const void *input, const void *scale, double epsilon,
               void *output, const char *location);

/// Keys per tile of attention(): its scratch holds batch * s * this many
/// scores, never batch * s * t.
constexpr int64_t kAttentionKeyTile = 128;

/// softmax(scale * q k^T + causal mask) v without the [s, t] score matrix
/// (flash attention): the keys are visited in tiles of kAttentionKeyTile, a
/// GEMM scores every query against a tile, an online softmax rescales what
/// earlier tiles added, and a second GEMM adds the tile's values; causal
/// attention skips the queries a tile is wholly masked for. q is
/// [batch, s, d]; k and v are [batch, t, d]. `statistics` receives each
/// query's logsumexp of its scaled, masked scores, [batch, s] in the
/// compute type (f32; f64 for f64), which attentionGrad() reads.
/// Grouped-query attention: with `groups` > 1, k and v are
/// [batch / groups, t, d] and query matrix i reads k and v matrix
/// i / groups (the query heads of a group are consecutive).
struct AttentionArgs {
  int64_t batch = 1, s = 0, t = 0, d = 0;
  int64_t groups = 1;
  bool causal = false;
  double scale = 1.0;
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  void *output = nullptr;
  void *statistics = nullptr;
};
Status attention(Context &context, DType dtype, const AttentionArgs &args,
                 const char *location);

/// Per row of `vocab` logits: logsumexp(logits[:classes]) -
/// logits[target]. Columns from `classes` on are a padded vocabulary's
/// masked classes: they take no probability. A target outside
/// [0, classes) stores `site` in the context's index error slot.
Status crossEntropy(Context &context, DType dtype, DType targetType,
                    int64_t rows, int64_t vocab, int64_t classes,
                    const void *logits, const void *targets, void *output,
                    int32_t site, const char *location);

/// output[i, :] = table[indices[i], :] for a [vocab, width] table.
Status embedding(Context &context, DType dtype, DType indexType, int64_t count,
                 int64_t vocab, int64_t width, const void *table,
                 const void *indices, void *output, int32_t site,
                 const char *location);

/// Llama 3.1's rescaled rotary frequencies (`#cleave.rope_scaling`);
/// factor 0 leaves them as they are.
struct RopeScaling {
  double factor = 0, lowFreqFactor = 0, highFreqFactor = 0;
  double originalMaxPositions = 0;
};

/// Rotary embedding of `outer` matrices of [seq, dim]; `inverse` rotates by
/// the opposite angle (the gradient).
Status rotary(Context &context, DType dtype, int64_t outer, int64_t seq,
              int64_t dim, double base, const RopeScaling &scaling,
              bool inverse, const void *input, void *output,
              const char *location);

//===----------------------------------------------------------------------===//
// Gradients
//===----------------------------------------------------------------------===//

/// dx = y * (dy - rowsum(dy * y)).
Status softmaxGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                   const void *output, const void *outputGrad, void *inputGrad,
                   const char *location);

/// dlogits = (softmax(logits) - onehot(target)) * lossGrad[row] over the
/// first `classes` columns; the masked columns' gradient is 0.
Status crossEntropyGrad(Context &context, DType dtype, DType targetType,
                        int64_t rows, int64_t vocab, int64_t classes,
                        const void *logits, const void *targets,
                        const void *lossGrad, void *logitsGrad, int32_t site,
                        const char *location);

/// Input, scale and bias gradients of layer_norm; the row statistics are
/// recomputed. Scale and bias gradients sum over rows in row order.
Status layerNormGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                     const void *input, const void *scale,
                     const void *outputGrad, double epsilon, void *inputGrad,
                     void *scaleGrad, void *biasGrad, const char *location);

Status rmsNormGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                   const void *input, const void *scale, const void *outputGrad,
                   double epsilon, void *inputGrad, void *scaleGrad,
                   const char *location);

/// Gradients of attention(), tile by tile as the forward: each key tile's
/// probabilities are recomputed from the kept statistics, its dK and dV
/// are complete after one tile, and dQ accumulates over tiles.
struct AttentionGradArgs {
  AttentionArgs forward; // q, k, v, the output and statistics, the shape
  const void *outputGrad = nullptr;
  void *queryGrad = nullptr, *keyGrad = nullptr, *valueGrad = nullptr;
};
Status attentionGrad(Context &context, DType dtype,
                     const AttentionGradArgs &args, const char *location);

/// output[V, width] = 0, then output[indices[i], :] += updates[i, :] in index
/// order.
Status scatterAdd(Context &context, DType dtype, DType indexType, int64_t count,
                  int64_t vocab, int64_t width, const void *indices,
                  const void *updates, void *output, int32_t site,
                  const char *location);

/// y = alpha * x + (overwrite ? 0 : y), elementwise over `count` elements:
/// accumulates gradients over micro-batches.
Status accumulate(Context &context, DType dtype, int64_t count, double alpha,
                  const void *x, void *y, bool overwrite, const char *location);

/// Zero-fills `output` (of `outputShape`) and writes `input` at `offsets`.
Status pad(Context &context, size_t elementBytes, const Shape &inputShape,
           const int64_t *offsets, const Shape &outputShape, const void *input,
           void *output, const char *location);

enum class ReduceKind { Sum, Mean, Max };
/// Reduces `input` of `shape` over the dimensions set in `reducedMask`
/// (bit i = dimension i), keeping the others in order.
Status reduce(Context &context, DType dtype, ReduceKind kind,
              const Shape &shape, uint32_t reducedMask, const void *input,
              void *output, const char *location);

/// output = input transposed: output dimension i is input dimension perm[i].
Status transpose(Context &context, size_t elementBytes, const Shape &shape,
                 const int *perm, const void *input, void *output,
                 const char *location);

/// Copies the block of `output`'s shape at `offsets` out of `input`.
/// Each i32 element of `shape` set to its index along `dim`.
Status iota(Context &context, const Shape &shape, int dim, int32_t *output,
            const char *location);

Status extractSlice(Context &context, size_t elementBytes,
                    const Shape &inputShape, const int64_t *offsets,
                    const Shape &outputShape, const void *input, void *output,
                    const char *location);

/// Writes `input` (of `inputShape`) into `output` at `offsets`.
Status insertSlice(Context &context, size_t elementBytes,
                   const Shape &inputShape, const int64_t *offsets,
                   const Shape &outputShape, const void *input, void *output,
                   const char *location);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_KERNELS_H
