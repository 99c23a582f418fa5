//===- Softmax.cpp - softmax, cross-entropy and attention -----------------===//
//
// Row kernels over scores and logits: a team per row finds the row's
// maximum and its sum of exponentials in one pass (an online max/sum, so a
// row of 50,257 logits is read once for the statistics), then writes the
// row. Attention is two GEMMs around the softmax. Compiled for both
// backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// The columns row `row` of a (possibly causal) score matrix sees: with
/// `causal`, row r (query r % s) sees columns j <= r % s + (cols - s).
CLEAVE_HD int64_t getVisibleColumns(int64_t row, int64_t cols, bool causal,
                                    int64_t s) {
  if (!causal)
    return cols;
  int64_t visible = row % s + (cols - s) + 1;
  return visible > cols ? cols : visible;
}

/// The max and exp-sum of `factor * x[j]` over j < visible, for the team.
template <typename Team, int V, typename T>
CLEAVE_DEVICE MaxSum<compute_t<T>> getRowMaxSum(const T *x, int64_t visible,
                                            compute_t<T> factor) {
  using C = compute_t<T>;
  MaxSum<C> state = getEmptyMaxSum<C>();
  CLEAVE_FOR_ROW_CHUNKS(Team, j, visible, V) {
    Vector<T, V> xs = loadVector<V>(x + j);
    for (int i = 0; i < V; ++i)
      if (j + i < visible)
        state = addToMaxSum(state, factor * toCompute(xs[i]));
  }
  return Team::reduce(state, MaxSumOp{});
}

/// Softmax of each row of `cols` scores after scaling; columns a causal row
/// does not see become 0. Works in place: each thread reads its elements
/// before it writes them.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void softmaxKernel(int64_t rows, int64_t cols, double scale,
                                 bool causal, int64_t s, const T *input,
                                 T *output) {
  using C = compute_t<T>;
  C factor = static_cast<C>(scale);
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = input + row * cols;
    T *y = output + row * cols;
    int64_t visible = getVisibleColumns(row, cols, causal, s);
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, visible, factor);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> ys;
      for (int i = 0; i < V; ++i)
        ys[i] = store<T>(
            j + i < visible
                ? cleave::exp(factor * toCompute(xs[i]) - stats.max) / stats.sum
                : C(0));
      storeVector(y + j, ys);
    }
  }
}

/// dx = factor * y * (dy - rowsum(dy * y)). Works in place (dx == dy).
template <typename Team, int V, typename T>
CLEAVE_KERNEL void softmaxGradKernel(int64_t rows, int64_t cols, double factor,
                                     const T *output, const T *outputGrad,
                                     T *inputGrad) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *y = output + row * cols;
    const T *dy = outputGrad + row * cols;
    T *dx = inputGrad + row * cols;
    C dot = 0;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> ys = loadVector<V>(y + j);
      Vector<T, V> dys = loadVector<V>(dy + j);
      for (int i = 0; i < V; ++i)
        dot += toCompute(dys[i]) * toCompute(ys[i]);
    }
    dot = Team::reduce(dot, SumOp{});
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> ys = loadVector<V>(y + j);
      Vector<T, V> dys = loadVector<V>(dy + j);
      Vector<T, V> dxs;
      for (int i = 0; i < V; ++i)
        dxs[i] = store<T>(C(factor) * toCompute(ys[i]) *
                          (toCompute(dys[i]) - dot));
      storeVector(dx + j, dxs);
    }
  }
}

/// Reads the row's target; a target outside [0, vocab) reports `site`.
template <typename Team, typename I>
CLEAVE_DEVICE bool getTarget(const I *targets, int64_t row, int64_t vocab,
                         int32_t site, int32_t *errorSlot, int64_t &target) {
  target = static_cast<int64_t>(targets[row]);
  if (target >= 0 && target < vocab)
    return true;
  if (Team::getRank() == 0)
    CLEAVE_ATOMIC_STORE(errorSlot, site);
  return false;
}

/// loss[row] = logsumexp(x) - x[target], the statistics in one pass.
template <typename Team, int V, typename T, typename I>
CLEAVE_KERNEL void crossEntropyKernel(int64_t rows, int64_t vocab,
                                      const T *CLEAVE_RESTRICT logits,
                                      const I *CLEAVE_RESTRICT targets,
                                      T *CLEAVE_RESTRICT output, int32_t site,
                                      int32_t *errorSlot) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = logits + row * vocab;
    int64_t target;
    if (!getTarget<Team>(targets, row, vocab, site, errorSlot, target)) {
      if (Team::getRank() == 0)
        output[row] = store<T>(C(0));
      continue;
    }
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, vocab, C(1));
    if (Team::getRank() == 0)
      output[row] = store<T>(cleave::log(stats.sum) + stats.max -
                             toCompute(x[target]));
  }
}

/// dx = (softmax(x) - onehot(target)) * lossGrad[row]. The logits are read
/// twice: once for the statistics, once for the gradient.
template <typename Team, int V, typename T, typename I>
CLEAVE_KERNEL void crossEntropyGradKernel(
    int64_t rows, int64_t vocab, const T *CLEAVE_RESTRICT logits,
    const I *CLEAVE_RESTRICT targets, const T *CLEAVE_RESTRICT lossGrad,
    T *CLEAVE_RESTRICT logitsGrad, int32_t site, int32_t *errorSlot) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = logits + row * vocab;
    T *dx = logitsGrad + row * vocab;
    int64_t target;
    if (!getTarget<Team>(targets, row, vocab, site, errorSlot, target)) {
      CLEAVE_FOR_ROW_CHUNKS(Team, j, vocab, V) {
        Vector<T, V> zeros;
        for (int i = 0; i < V; ++i)
          zeros[i] = store<T>(C(0));
        storeVector(dx + j, zeros);
      }
      continue;
    }
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, vocab, C(1));
    C grad = toCompute(lossGrad[row]);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, vocab, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> dxs;
      for (int i = 0; i < V; ++i) {
        C probability = cleave::exp(toCompute(xs[i]) - stats.max) / stats.sum;
        dxs[i] = store<T>((probability - (j + i == target ? C(1) : C(0))) *
                          grad);
      }
      storeVector(dx + j, dxs);
    }
  }
}

/// Softmax over `rows` rows of `cols` scores in place (attention's).
Status launchSoftmax(Context &context, DType dtype, int64_t rows, int64_t cols,
                     double scale, bool causal, int64_t s, const void *input,
                     void *output, const char *name, const char *location) {
  return dispatchFloat(dtype, name, location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(cols, {input, output});
    return dispatchRows<T>(cols, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (softmaxKernel<Team, V, T>), rows)
      (rows, cols, scale, causal, s, static_cast<const T *>(input),
       static_cast<T *>(output));
      return context.checkLaunch(name, location);
    });
  });
}

Status launchSoftmaxGrad(Context &context, DType dtype, int64_t rows,
                         int64_t cols, double factor, const void *output,
                         const void *outputGrad, void *inputGrad,
                         const char *name, const char *location) {
  return dispatchFloat(dtype, name, location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(cols, {output, outputGrad, inputGrad});
    return dispatchRows<T>(cols, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (softmaxGradKernel<Team, V, T>), rows)
      (rows, cols, factor, static_cast<const T *>(output),
       static_cast<const T *>(outputGrad), static_cast<T *>(inputGrad));
      return context.checkLaunch(name, location);
    });
  });
}

} // namespace

Status softmax(Context &context, DType dtype, int64_t rows, int64_t cols,
               const void *input, void *output, const char *location) {
  return launchSoftmax(context, dtype, rows, cols, 1.0, false, 1, input,
                       output, "softmax", location);
}

Status softmaxGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                   const void *output, const void *outputGrad, void *inputGrad,
                   const char *location) {
  return launchSoftmaxGrad(context, dtype, rows, cols, 1.0, output, outputGrad,
                           inputGrad, "softmax_grad", location);
}

Status crossEntropy(Context &context, DType dtype, DType targetType,
                    int64_t rows, int64_t vocab, const void *logits,
                    const void *targets, void *output, int32_t site,
                    const char *location) {
  return dispatchFloat(dtype, "cross_entropy", location, [&](auto tag) {
    using T = decltype(tag);
    return dispatchIndex(targetType, "cross_entropy", location, [&](auto index) {
      using I = decltype(index);
      bool vectors = canUseVectors<T>(vocab, {logits});
      return dispatchRows<T>(vocab, vectors, [&](auto team, auto width) {
        using Team = decltype(team);
        constexpr int V = decltype(width)::value;
        CLEAVE_LAUNCH_ROWS(context, Team, (crossEntropyKernel<Team, V, T, I>),
                           rows)
        (rows, vocab, static_cast<const T *>(logits),
         static_cast<const I *>(targets), static_cast<T *>(output), site,
         context.getIndexErrorSlot());
        return context.checkLaunch("cross_entropy", location);
      });
    });
  });
}

Status crossEntropyGrad(Context &context, DType dtype, DType targetType,
                        int64_t rows, int64_t vocab, const void *logits,
                        const void *targets, const void *lossGrad,
                        void *logitsGrad, int32_t site, const char *location) {
  return dispatchFloat(dtype, "cross_entropy_grad", location, [&](auto tag) {
    using T = decltype(tag);
    return dispatchIndex(targetType, "cross_entropy_grad", location,
                         [&](auto index) {
      using I = decltype(index);
      bool vectors = canUseVectors<T>(vocab, {logits, logitsGrad});
      return dispatchRows<T>(vocab, vectors, [&](auto team, auto width) {
        using Team = decltype(team);
        constexpr int V = decltype(width)::value;
        CLEAVE_LAUNCH_ROWS(context, Team,
                           (crossEntropyGradKernel<Team, V, T, I>), rows)
        (rows, vocab, static_cast<const T *>(logits),
         static_cast<const I *>(targets), static_cast<const T *>(lossGrad),
         static_cast<T *>(logitsGrad), site, context.getIndexErrorSlot());
        return context.checkLaunch("cross_entropy_grad", location);
      });
    });
  });
}

Status attention(Context &context, DType dtype, const AttentionArgs &args,
                 const char *location) {
  size_t scoreCount = static_cast<size_t>(args.batch * args.s * args.t);
  void *scores = nullptr;
  CLEAVE_RETURN_IF_ERROR(context.getScratch(
      ScratchSlot::Attention, scoreCount * getDTypeSize(dtype), &scores));

  GemmArgs product;
  product.batch = args.batch;
  product.m = args.s;
  product.n = args.t;
  product.k = args.d;
  product.transposeB = true;
  product.a = args.q;
  product.b = args.k;
  product.c = scores;
  product.strideA = args.s * args.d;
  product.strideB = args.t * args.d;
  product.strideC = args.s * args.t;
  CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, product, location));
  CLEAVE_RETURN_IF_ERROR(launchSoftmax(context, dtype, args.batch * args.s,
                                       args.t, args.scale, args.causal, args.s,
                                       scores, scores, "attention softmax",
                                       location));

  GemmArgs mix;
  mix.batch = args.batch;
  mix.m = args.s;
  mix.n = args.d;
  mix.k = args.t;
  mix.a = scores;
  mix.b = args.v;
  mix.c = args.output;
  mix.strideA = args.s * args.t;
  mix.strideB = args.t * args.d;
  mix.strideC = args.s * args.d;
  return gemm(context, dtype, mix, location);
}

Status attentionGrad(Context &context, DType dtype,
                     const AttentionGradArgs &args, const char *location) {
  const AttentionArgs &f = args.forward;
  size_t scoreBytes =
      static_cast<size_t>(f.batch * f.s * f.t) * getDTypeSize(dtype);
  void *probabilities = nullptr, *scoreGrad = nullptr;
  CLEAVE_RETURN_IF_ERROR(
      context.getScratch(ScratchSlot::Attention, scoreBytes, &probabilities));
  CLEAVE_RETURN_IF_ERROR(
      context.getScratch(ScratchSlot::AttentionGrad, scoreBytes, &scoreGrad));
  auto product = [&](int64_t m, int64_t n, int64_t k, bool transposeA,
                     bool transposeB, const void *a, int64_t strideA,
                     const void *b, int64_t strideB, void *c) {
    GemmArgs gemmArgs;
    gemmArgs.batch = f.batch;
    gemmArgs.m = m;
    gemmArgs.n = n;
    gemmArgs.k = k;
    gemmArgs.transposeA = transposeA;
    gemmArgs.transposeB = transposeB;
    gemmArgs.a = a;
    gemmArgs.b = b;
    gemmArgs.c = c;
    gemmArgs.strideA = strideA;
    gemmArgs.strideB = strideB;
    gemmArgs.strideC = m * n;
    return gemm(context, dtype, gemmArgs, location);
  };
  int64_t sd = f.s * f.d, td = f.t * f.d, st = f.s * f.t;
  int64_t rows = f.batch * f.s;
  // P = softmax(scale q k^T + mask), recomputed.
  CLEAVE_RETURN_IF_ERROR(product(f.s, f.t, f.d, false, true, f.q, sd, f.k, td,
                                 probabilities));
  CLEAVE_RETURN_IF_ERROR(launchSoftmax(context, dtype, rows, f.t, f.scale,
                                       f.causal, f.s, probabilities,
                                       probabilities, "attention_grad softmax",
                                       location));
  // dV = P^T dO and dP = dO V^T.
  CLEAVE_RETURN_IF_ERROR(product(f.t, f.d, f.s, true, false, probabilities, st,
                                 args.outputGrad, sd, args.valueGrad));
  CLEAVE_RETURN_IF_ERROR(product(f.s, f.t, f.d, false, true, args.outputGrad,
                                 sd, f.v, td, scoreGrad));
  // dS = scale * P * (dP - rowsum(P * dP)), in place.
  CLEAVE_RETURN_IF_ERROR(launchSoftmaxGrad(context, dtype, rows, f.t, f.scale,
                                           probabilities, scoreGrad, scoreGrad,
                                           "attention_grad softmax", location));
  // dQ = dS K and dK = dS^T Q.
  CLEAVE_RETURN_IF_ERROR(product(f.s, f.d, f.t, false, false, scoreGrad, st,
                                 f.k, td, args.queryGrad));
  return product(f.t, f.d, f.s, true, false, scoreGrad, st, f.q, sd,
                 args.keyGrad);
}

} // namespace cleave::rt
