//===- GemmEpilogue.cpp - bias and gelu after a GEMM ----------------------===//
//
// What a GEMM epilogue does, as a loop over the stored product: the CPU
// backend runs it after OpenBLAS, the CUDA backend where cuBLASLt has no
// epilogue for the types or layout. It computes as the unfused program's
// kernel would (the sum in the compute type, rounded once into each output),
// so a matmul_bias gives the bits of its matmul, add and gelu. Compiled for
// both backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// Over the `matrices` [rows, cols] matrices of c, `stride` elements apart.
template <typename T>
CLEAVE_KERNEL void biasEpilogueKernel(int64_t matrices, int64_t rows,
                                      int64_t cols, int64_t stride, bool gelu,
                                      const T *CLEAVE_RESTRICT bias,
                                      T *CLEAVE_RESTRICT output,
                                      T *CLEAVE_RESTRICT preActivation) {
  int64_t perMatrix = rows * cols;
  CLEAVE_PARALLEL_FOR(item, matrices * perMatrix) {
    int64_t matrix = item / perMatrix;
    int64_t within = item - matrix * perMatrix;
    int64_t index = matrix * stride + within;
    compute_t<T> sum =
        toCompute(output[index]) + toCompute(bias[within % cols]);
    if (!gelu) {
      output[index] = store<T>(sum);
      continue;
    }
    if (preActivation)
      preActivation[index] = store<T>(sum);
    output[index] = store<T>(cleave::gelu(sum));
  }
}

} // namespace

const char *getGemmArgsError(const GemmArgs &args) {
  if (args.batch <= 0 || args.m <= 0 || args.n <= 0 || args.k <= 0)
    return "empty or negative dimensions";
  if (args.epilogue == GemmEpilogue::None)
    return args.preActivation ? "a pre-activation output without an epilogue"
                              : nullptr;
  if (!args.bias)
    return "a bias epilogue without a bias";
  if (args.accumulate)
    return "an epilogue on an accumulating GEMM";
  if (args.preActivation && args.epilogue != GemmEpilogue::BiasGelu)
    return "a pre-activation output without gelu";
  return nullptr;
}

Status applyGemmEpilogue(Context &context, DType outputType,
                         const GemmArgs &args, const char *location) {
  if (args.epilogue == GemmEpilogue::None)
    return Status::success();
  if (const char *error = getGemmArgsError(args))
    return Status::error(std::string("gemm at ") + location + ": " + error);
  // A stride of 0 writes one matrix, whatever the batch.
  int64_t matrices = args.strideC == 0 ? 1 : args.batch;
  bool gelu = args.epilogue == GemmEpilogue::BiasGelu;
  return dispatchFloat(outputType, "gemm", location, [&](auto zero) {
    using T = decltype(zero);
    CLEAVE_LAUNCH(context, biasEpilogueKernel<T>, matrices * args.m * args.n)
    (matrices, args.m, args.n, args.strideC, gelu,
     static_cast<const T *>(args.bias), static_cast<T *>(args.c),
     static_cast<T *>(args.preActivation));
    return context.checkLaunch("gemm", location);
  });
}

} // namespace cleave::rt
