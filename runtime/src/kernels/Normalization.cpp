//===- Normalization.cpp - layer_norm and rms_norm, forward and backward --===//
//
// A team per row (a warp for rows up to 1024 wide, a block beyond): the row
// statistics are team reductions, and the row is read again from cache for
// the output. The scale and bias gradients are column sums in two passes
// (KernelSupport.h). Compiled for both backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// The row's mean (0 for rms_norm, which does not center) and reciprocal
/// deviation rsqrt(mean((x - mean)^2) + epsilon), in two passes over it.
template <typename Team, int V, typename T>
CLEAVE_DEVICE void getRowStatistics(const T *x, int64_t cols, double epsilon,
                                    bool centered, compute_t<T> &mean,
                                    compute_t<T> &inverse) {
  using C = compute_t<T>;
  mean = 0;
  if (centered) {
    C sum = 0;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      for (int i = 0; i < V; ++i)
        sum += toCompute(xs[i]);
    }
    mean = Team::reduce(sum, SumOp{}) / C(cols);
  }
  C squares = 0;
  CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
    Vector<T, V> xs = loadVector<V>(x + j);
    for (int i = 0; i < V; ++i) {
      C value = toCompute(xs[i]) - mean;
      squares += value * value;
    }
  }
  inverse = cleave::rsqrt(Team::reduce(squares, SumOp{}) / C(cols) + C(epsilon));
}

/// y = (x - mean) * rsqrt(var + eps) * scale + bias for layer_norm
/// (`centered`); y = x * rsqrt(mean(x^2) + eps) * scale for rms_norm, which
/// has no bias.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void normKernel(int64_t rows, int64_t cols, double epsilon,
                              bool centered, const T *CLEAVE_RESTRICT input,
                              const T *CLEAVE_RESTRICT scale,
                              const T *CLEAVE_RESTRICT bias,
                              T *CLEAVE_RESTRICT output) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = input + row * cols;
    T *y = output + row * cols;
    C mean, inverse;
    getRowStatistics<Team, V>(x, cols, epsilon, centered, mean, inverse);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> gammas = loadVector<V>(scale + j);
      Vector<T, V> ys;
      if (bias) {
        Vector<T, V> betas = loadVector<V>(bias + j);
        for (int i = 0; i < V; ++i)
          ys[i] = store<T>((toCompute(xs[i]) - mean) * inverse *
                               toCompute(gammas[i]) +
                           toCompute(betas[i]));
      } else {
        for (int i = 0; i < V; ++i)
          ys[i] = store<T>((toCompute(xs[i]) - mean) * inverse *
                           toCompute(gammas[i]));
      }
      storeVector(y + j, ys);
    }
  }
}

/// The input gradient of a norm, row by row, saving each row's mean (0 for
/// rms_norm) and reciprocal deviation in `stats` for the column pass.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void normGradRowsKernel(int64_t rows, int64_t cols,
                                      double epsilon, bool centered,
                                      const T *CLEAVE_RESTRICT input,
                                      const T *CLEAVE_RESTRICT scale,
                                      const T *CLEAVE_RESTRICT outputGrad,
                                      T *CLEAVE_RESTRICT inputGrad,
                                      compute_t<T> *CLEAVE_RESTRICT stats) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = input + row * cols;
    const T *dy = outputGrad + row * cols;
    T *dx = inputGrad + row * cols;
    C mean, inverse;
    getRowStatistics<Team, V>(x, cols, epsilon, centered, mean, inverse);
    if (Team::getRank() == 0) {
      stats[2 * row] = mean;
      stats[2 * row + 1] = inverse;
    }
    // g = dy * scale; dx = inverse * (g - mean(g) - xhat * mean(g * xhat)),
    // without the mean(g) term for rms_norm.
    C gradSum = 0, gradDotNormalized = 0;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> dys = loadVector<V>(dy + j);
      Vector<T, V> gammas = loadVector<V>(scale + j);
      for (int i = 0; i < V; ++i) {
        C g = toCompute(dys[i]) * toCompute(gammas[i]);
        gradSum += g;
        gradDotNormalized += g * (toCompute(xs[i]) - mean) * inverse;
      }
    }
    C meanGrad =
        centered ? Team::reduce(gradSum, SumOp{}) / C(cols) : C(0);
    C meanGradDotNormalized =
        Team::reduce(gradDotNormalized, SumOp{}) / C(cols);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> dys = loadVector<V>(dy + j);
      Vector<T, V> gammas = loadVector<V>(scale + j);
      Vector<T, V> dxs;
      for (int i = 0; i < V; ++i) {
        C g = toCompute(dys[i]) * toCompute(gammas[i]);
        C normalized = (toCompute(xs[i]) - mean) * inverse;
        dxs[i] = store<T>(inverse *
                          (g - meanGrad - normalized * meanGradDotNormalized));
      }
      storeVector(dx + j, dxs);
    }
  }
}

/// The first pass of the scale (and bias) gradients: for each chunk of
/// `rowsPerChunk` rows and each column, the sums of dy * xhat (and of dy)
/// over the chunk's rows in row order.
template <typename T>
CLEAVE_KERNEL void normGradPartialsKernel(
    int64_t rows, int64_t cols, int64_t rowsPerChunk, int64_t chunks,
    const T *CLEAVE_RESTRICT input, const T *CLEAVE_RESTRICT outputGrad,
    const compute_t<T> *CLEAVE_RESTRICT stats,
    compute_t<T> *CLEAVE_RESTRICT scalePartials,
    compute_t<T> *CLEAVE_RESTRICT biasPartials) {
  using C = compute_t<T>;
  CLEAVE_PARALLEL_FOR(item, chunks * cols) {
    int64_t column, first, last;
    getChunkItem(item, rows, cols, rowsPerChunk, column, first, last);
    C scaleSum = 0, biasSum = 0;
    for (int64_t row = first; row < last; ++row) {
      C dy = toCompute(outputGrad[row * cols + column]);
      C normalized = (toCompute(input[row * cols + column]) - stats[2 * row]) *
                     stats[2 * row + 1];
      scaleSum += dy * normalized;
      biasSum += dy;
    }
    scalePartials[item] = scaleSum;
    if (biasPartials)
      biasPartials[item] = biasSum;
  }
}

Status normGrad(Context &context, DType dtype, bool centered, int64_t rows,
                int64_t cols, const void *input, const void *scale,
                const void *outputGrad, double epsilon, void *inputGrad,
                void *scaleGrad, void *biasGrad, const char *location) {
  const char *name = centered ? "layer_norm_grad" : "rms_norm_grad";
  return dispatchFloat(dtype, name, location, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    int64_t rowsPerChunk = getRowsPerChunk(rows, cols);
    int64_t chunks = getChunkCount(rows, rowsPerChunk);
    size_t statsBytes = alignScratch(static_cast<size_t>(rows) * 2 * sizeof(C));
    size_t partialBytes =
        alignScratch(static_cast<size_t>(chunks * cols) * sizeof(C));
    void *scratch = nullptr;
    CLEAVE_RETURN_IF_ERROR(context.getScratch(
        ScratchSlot::Norm, statsBytes + 2 * partialBytes, &scratch));
    C *stats = static_cast<C *>(scratch);
    C *scalePartials =
        reinterpret_cast<C *>(static_cast<char *>(scratch) + statsBytes);
    C *biasPartials = reinterpret_cast<C *>(static_cast<char *>(scratch) +
                                            statsBytes + partialBytes);
    bool vectors = canUseVectors<T>(cols, {input, scale, outputGrad, inputGrad});
    CLEAVE_RETURN_IF_ERROR(dispatchRows<T>(cols, vectors, [&](auto team,
                                                              auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (normGradRowsKernel<Team, V, T>), rows)
      (rows, cols, epsilon, centered, static_cast<const T *>(input),
       static_cast<const T *>(scale), static_cast<const T *>(outputGrad),
       static_cast<T *>(inputGrad), stats);
      return context.checkLaunch(name, location);
    }));
    CLEAVE_LAUNCH(context, normGradPartialsKernel<T>, chunks * cols)
    (rows, cols, rowsPerChunk, chunks, static_cast<const T *>(input),
     static_cast<const T *>(outputGrad), stats, scalePartials,
     biasGrad ? biasPartials : nullptr);
    CLEAVE_RETURN_IF_ERROR(context.checkLaunch(name, location));
    CLEAVE_RETURN_IF_ERROR(finishColumns(context, chunks, cols, false, C(1),
                                         scalePartials,
                                         static_cast<T *>(scaleGrad), name,
                                         location));
    if (!biasGrad)
      return Status::success();
    return finishColumns(context, chunks, cols, false, C(1), biasPartials,
                         static_cast<T *>(biasGrad), name, location);
  });
}

Status norm(Context &context, DType dtype, bool centered, int64_t rows,
            int64_t cols, const void *input, const void *scale,
            const void *bias, double epsilon, void *output,
            const char *location) {
  const char *name = centered ? "layer_norm" : "rms_norm";
  return dispatchFloat(dtype, name, location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(
        cols, {input, scale, output, bias ? bias : output});
    return dispatchRows<T>(cols, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (normKernel<Team, V, T>), rows)
      (rows, cols, epsilon, centered, static_cast<const T *>(input),
       static_cast<const T *>(scale), static_cast<const T *>(bias),
       static_cast<T *>(output));
      return context.checkLaunch(name, location);
    });
  });
}

} // namespace

Status layerNorm(Context &context, DType dtype, int64_t rows, int64_t cols,
                 const void *input, const void *scale, const void *bias,
                 double epsilon, void *output, const char *location) {
  return norm(context, dtype, true, rows, cols, input, scale, bias, epsilon,
              output, location);
}

Status rmsNorm(Context &context, DType dtype, int64_t rows, int64_t cols,
               const void *input, const void *scale, double epsilon,
               void *output, const char *location) {
  return norm(context, dtype, false, rows, cols, input, scale, nullptr,
              epsilon, output, location);
}

Status layerNormGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                     const void *input, const void *scale,
                     const void *outputGrad, double epsilon, void *inputGrad,
                     void *scaleGrad, void *biasGrad, const char *location) {
  return normGrad(context, dtype, true, rows, cols, input, scale, outputGrad,
                  epsilon, inputGrad, scaleGrad, biasGrad, location);
}

Status rmsNormGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                   const void *input, const void *scale, const void *outputGrad,
                   double epsilon, void *inputGrad, void *scaleGrad,
                   const char *location) {
  return normGrad(context, dtype, false, rows, cols, input, scale, outputGrad,
                  epsilon, inputGrad, scaleGrad, nullptr, location);
}

} // namespace cleave::rt
