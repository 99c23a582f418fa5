//===- GemmCpu.cpp - GEMM on OpenBLAS -------------------------------------===//
//
// f32 and f64 go straight to cblas; bf16 and f16 are widened to f32 in a
// scratch buffer, multiplied, and rounded back (or, with wideOutput, left
// in f32). A batch that shares its
// right-hand side and has contiguous left-hand sides is one tall GEMM, which
// is how every `[batch, seq, hidden] x [hidden, out]` projection runs.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Portability.h"

#include <cblas.h>

#include <string>
#include <type_traits>

namespace cleave::rt {
namespace {

template <typename T>
void multiply(const GemmArgs &args, const T *a, const T *b, T *c) {
  T beta = args.accumulate ? T(1) : T(0);
  CBLAS_TRANSPOSE transA = args.transposeA ? CblasTrans : CblasNoTrans;
  CBLAS_TRANSPOSE transB = args.transposeB ? CblasTrans : CblasNoTrans;
  blasint lda = static_cast<blasint>(args.transposeA ? args.m : args.k);
  blasint ldb = static_cast<blasint>(args.transposeB ? args.k : args.n);
  blasint ldc = static_cast<blasint>(args.n);

  int64_t batch = args.batch, m = args.m;
  bool foldBatch = !args.transposeA && args.strideB == 0 &&
                   args.strideA == args.m * args.k &&
                   args.strideC == args.m * args.n;
  if (foldBatch) {
    m *= batch;
    batch = 1;
  }
  for (int64_t i = 0; i < batch; ++i) {
    const T *ai = a + i * args.strideA;
    const T *bi = b + i * args.strideB;
    T *ci = c + i * args.strideC;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, transA, transB, static_cast<blasint>(m),
                  static_cast<blasint>(args.n), static_cast<blasint>(args.k),
                  1.0f, ai, lda, bi, ldb, beta, ci, ldc);
    else
      cblas_dgemm(CblasRowMajor, transA, transB, static_cast<blasint>(m),
                  static_cast<blasint>(args.n), static_cast<blasint>(args.k),
                  1.0, ai, lda, bi, ldb, beta, ci, ldc);
  }
}

int64_t getOperandElements(int64_t batch, int64_t stride, int64_t matrix) {
  return stride == 0 ? matrix : (batch - 1) * stride + matrix;
}

template <typename T>
CLEAVE_KERNEL void widenKernel(int64_t count, const T *CLEAVE_RESTRICT input,
                               float *CLEAVE_RESTRICT output) {
  CLEAVE_PARALLEL_FOR(i, count) { output[i] = toCompute(input[i]); }
}

template <typename T>
CLEAVE_KERNEL void narrowKernel(int64_t count,
                                const float *CLEAVE_RESTRICT input,
                                T *CLEAVE_RESTRICT output) {
  CLEAVE_PARALLEL_FOR(i, count) { output[i] = store<T>(input[i]); }
}

template <typename T>
Status multiplyNarrow(Context &context, const GemmArgs &args) {
  int64_t countA = getOperandElements(args.batch, args.strideA, args.m * args.k);
  int64_t countB = getOperandElements(args.batch, args.strideB, args.k * args.n);
  int64_t countC =
      args.wideOutput
          ? 0
          : getOperandElements(args.batch, args.strideC, args.m * args.n);
  void *buffer = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.getScratch(
      ScratchSlot::Gemm, (countA + countB + countC) * sizeof(float), &buffer));
  float *a = static_cast<float *>(buffer);
  float *b = a + countA;
  widenKernel(countA, static_cast<const T *>(args.a), a);
  widenKernel(countB, static_cast<const T *>(args.b), b);
  if (args.wideOutput) {
    multiply<float>(args, a, b, static_cast<float *>(args.c));
    return Status::success();
  }
  // Only the matrices of C: a stride past m * n leaves rows between them
  // (a tile of a larger tensor) that belong to someone else.
  float *c = b + countB;
  T *out = static_cast<T *>(args.c);
  int64_t matrix = args.m * args.n;
  int64_t matrices = args.strideC == 0 ? 1 : args.batch;
  if (args.accumulate)
    for (int64_t i = 0; i < matrices; ++i)
      widenKernel(matrix, out + i * args.strideC, c + i * args.strideC);
  multiply<float>(args, a, b, c);
  for (int64_t i = 0; i < matrices; ++i)
    narrowKernel(matrix, c + i * args.strideC, out + i * args.strideC);
  return Status::success();
}

/// The product alone, stored in c.
Status multiplyAny(Context &context, DType dtype, const GemmArgs &args,
                   const char *location) {
  switch (dtype) {
  case DType::F32:
    multiply(args, static_cast<const float *>(args.a),
             static_cast<const float *>(args.b), static_cast<float *>(args.c));
    return Status::success();
  case DType::F64:
    multiply(args, static_cast<const double *>(args.a),
             static_cast<const double *>(args.b),
             static_cast<double *>(args.c));
    return Status::success();
  case DType::BF16:
    return multiplyNarrow<bf16>(context, args);
  case DType::F16:
    return multiplyNarrow<f16>(context, args);
  default:
    return Status::error(std::string("gemm at ") + location +
                         ": unsupported element type " + getDTypeName(dtype));
  }
}

} // namespace

// The epilogue is a second pass over c: OpenBLAS has no hook inside its
// GEMM, and c is still in cache for all but the largest products.
Status gemm(Context &context, DType dtype, const GemmArgs &args,
            const char *location) {
  if (const char *error = getGemmArgsError(args))
    return Status::error(std::string("gemm at ") + location + ": " + error);
  if (std::vector<GemmCall> *log = context.getGemmLog())
    log->push_back({dtype, args});
  CLEAVE_RETURN_IF_ERROR(multiplyAny(context, dtype, args, location));
  return applyGemmEpilogue(context, getGemmOutputType(dtype, args), args,
                           location);
}

} // namespace cleave::rt
