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

/// A row kernel over the `rows` rows of `cols` elements of c's matrices
/// (`rowsPerMatrix` each, matrices `stride` elements apart): a team per
/// row, so the bias is read with the row and accesses stay contiguous.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void biasEpilogueKernel(int64_t rows, int64_t rowsPerMatrix,
                                      int64_t cols, int64_t stride, bool gelu,
                                      const T *CLEAVE_RESTRICT bias,
                                      T *CLEAVE_RESTRICT output,
                                      T *CLEAVE_RESTRICT preActivation) {
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    int64_t matrix = row / rowsPerMatrix;
    int64_t offset = matrix * stride + (row - matrix * rowsPerMatrix) * cols;
    T *y = output + offset;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> ys = loadVector<V>(y + j);
      Vector<T, V> bs = loadVector<V>(bias + j);
      Vector<T, V> sums;
      for (int i = 0; i < V; ++i) {
        compute_t<T> sum = toCompute(ys[i]) + toCompute(bs[i]);
        sums[i] = store<T>(sum);
        ys[i] = store<T>(gelu ? cleave::gelu(sum) : sum);
      }
      if (gelu && preActivation)
        storeVector(preActivation + offset + j, sums);
      storeVector(y + j, ys);
    }
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
    // Vector accesses need every row to start on a vector boundary.
    bool vectors =
        canUseVectors<T>(args.n, {args.c, args.bias, args.preActivation}) &&
        args.strideC % args.n == 0;
    return dispatchRows<T>(args.n, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (biasEpilogueKernel<Team, V, T>),
                         matrices * args.m)
      (matrices * args.m, args.m, args.n, args.strideC, gelu,
       static_cast<const T *>(args.bias), static_cast<T *>(args.c),
       static_cast<T *>(args.preActivation));
      return context.checkLaunch("gemm", location);
    });
  });
}

} // namespace cleave::rt
