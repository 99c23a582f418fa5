//===- Softmax.cpp - softmax and cross-entropy ----------------------------===//
//
// Row kernels over scores and logits: a team per row finds the row's
// maximum and its sum of exponentials in one pass (an online max/sum, so a
// row of 50,257 logits is read once for the statistics), then writes the
// row. Compiled for both backends.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// The max and exp-sum of the first `count` elements of the row `x`, for
/// the team. Vector loads may read past `count` within the row.
template <typename Team, int V, typename T>
CLEAVE_DEVICE MaxSum<compute_t<T>> getRowMaxSum(const T *x, int64_t count) {
  using C = compute_t<T>;
  MaxSum<C> state = getEmptyMaxSum<C>();
  CLEAVE_FOR_ROW_CHUNKS(Team, j, count, V) {
    Vector<T, V> xs = loadVector<V>(x + j);
    for (int i = 0; i < V; ++i)
      if (j + i < count)
        state = addToMaxSum(state, toCompute(xs[i]));
  }
  return Team::reduce(state, MaxSumOp{});
}

/// Softmax of each row of `cols` elements. Works in place: each thread
/// reads its elements before it writes them.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void softmaxKernel(int64_t rows, int64_t cols, const T *input,
                                 T *output) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = input + row * cols;
    T *y = output + row * cols;
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, cols);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, cols, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> ys;
      for (int i = 0; i < V; ++i)
        ys[i] = store<T>(cleave::exp(toCompute(xs[i]) - stats.max) / stats.sum);
      storeVector(y + j, ys);
    }
  }
}

/// dx = y * (dy - rowsum(dy * y)). Works in place (dx == dy).
template <typename Team, int V, typename T>
CLEAVE_KERNEL void softmaxGradKernel(int64_t rows, int64_t cols,
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
        dxs[i] = store<T>(toCompute(ys[i]) * (toCompute(dys[i]) - dot));
      storeVector(dx + j, dxs);
    }
  }
}

/// Reads the row's target; a target outside [0, classes) reports `site`.
template <typename Team, typename I>
CLEAVE_DEVICE bool getTarget(const I *targets, int64_t row, int64_t classes,
                             int32_t site, int32_t *errorSlot,
                             int64_t &target) {
  target = static_cast<int64_t>(targets[row]);
  if (target >= 0 && target < classes)
    return true;
  if (Team::getRank() == 0)
    CLEAVE_ATOMIC_STORE(errorSlot, site);
  return false;
}

/// loss[row] = logsumexp(x[:classes]) - x[target], the statistics in one
/// pass.
template <typename Team, int V, typename T, typename I>
CLEAVE_KERNEL void
crossEntropyKernel(int64_t rows, int64_t vocab, int64_t classes,
                   const T *CLEAVE_RESTRICT logits,
                   const I *CLEAVE_RESTRICT targets, T *CLEAVE_RESTRICT output,
                   int32_t site, int32_t *errorSlot) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = logits + row * vocab;
    int64_t target;
    if (!getTarget<Team>(targets, row, classes, site, errorSlot, target)) {
      if (Team::getRank() == 0)
        output[row] = store<T>(C(0));
      continue;
    }
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, classes);
    if (Team::getRank() == 0)
      output[row] = store<T>(cleave::log(stats.sum) + stats.max -
                             toCompute(x[target]));
  }
}

/// dx = (softmax(x) - onehot(target)) * lossGrad[row], 0 from `classes`
/// on. The logits are read twice: once for the statistics, once for the
/// gradient.
template <typename Team, int V, typename T, typename I>
CLEAVE_KERNEL void crossEntropyGradKernel(int64_t rows, int64_t vocab,
                                          int64_t classes,
                                          const T *CLEAVE_RESTRICT logits,
                                          const I *CLEAVE_RESTRICT targets,
                                          const T *CLEAVE_RESTRICT lossGrad,
                                          T *CLEAVE_RESTRICT logitsGrad,
                                          int32_t site, int32_t *errorSlot) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    const T *x = logits + row * vocab;
    T *dx = logitsGrad + row * vocab;
    int64_t target;
    if (!getTarget<Team>(targets, row, classes, site, errorSlot, target)) {
      CLEAVE_FOR_ROW_CHUNKS(Team, j, vocab, V) {
        Vector<T, V> zeros;
        for (int i = 0; i < V; ++i)
          zeros[i] = store<T>(C(0));
        storeVector(dx + j, zeros);
      }
      continue;
    }
    MaxSum<C> stats = getRowMaxSum<Team, V>(x, classes);
    C grad = toCompute(lossGrad[row]);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, vocab, V) {
      Vector<T, V> xs = loadVector<V>(x + j);
      Vector<T, V> dxs;
      for (int i = 0; i < V; ++i) {
        C probability =
            j + i < classes
                ? cleave::exp(toCompute(xs[i]) - stats.max) / stats.sum
                : C(0);
        dxs[i] = store<T>((probability - (j + i == target ? C(1) : C(0))) *
                          grad);
      }
      storeVector(dx + j, dxs);
    }
  }
}

Status checkClasses(int64_t vocab, int64_t classes, const char *op,
                    const char *location) {
  if (classes >= 1 && classes <= vocab)
    return Status::success();
  return Status::error(std::string(op) + " at " + location + ": " +
                       std::to_string(classes) + " classes in a row of " +
                       std::to_string(vocab));
}

} // namespace

Status softmax(Context &context, DType dtype, int64_t rows, int64_t cols,
               const void *input, void *output, const char *location) {
  return dispatchFloat(dtype, "softmax", location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(cols, {input, output});
    return dispatchRows<T>(cols, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (softmaxKernel<Team, V, T>), rows)
      (rows, cols, static_cast<const T *>(input), static_cast<T *>(output));
      return context.checkLaunch("softmax", location);
    });
  });
}

Status softmaxGrad(Context &context, DType dtype, int64_t rows, int64_t cols,
                   const void *output, const void *outputGrad, void *inputGrad,
                   const char *location) {
  return dispatchFloat(dtype, "softmax_grad", location, [&](auto tag) {
    using T = decltype(tag);
    bool vectors = canUseVectors<T>(cols, {output, outputGrad, inputGrad});
    return dispatchRows<T>(cols, vectors, [&](auto team, auto width) {
      using Team = decltype(team);
      constexpr int V = decltype(width)::value;
      CLEAVE_LAUNCH_ROWS(context, Team, (softmaxGradKernel<Team, V, T>), rows)
      (rows, cols, static_cast<const T *>(output),
       static_cast<const T *>(outputGrad), static_cast<T *>(inputGrad));
      return context.checkLaunch("softmax_grad", location);
    });
  });
}

Status crossEntropy(Context &context, DType dtype, DType targetType,
                    int64_t rows, int64_t vocab, int64_t classes,
                    const void *logits, const void *targets, void *output,
                    int32_t site, const char *location) {
  CLEAVE_RETURN_IF_ERROR(
      checkClasses(vocab, classes, "cross_entropy", location));
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
        (rows, vocab, classes, static_cast<const T *>(logits),
         static_cast<const I *>(targets), static_cast<T *>(output), site,
         context.getIndexErrorSlot());
        return context.checkLaunch("cross_entropy", location);
      });
    });
  });
}

Status crossEntropyGrad(Context &context, DType dtype, DType targetType,
                        int64_t rows, int64_t vocab, int64_t classes,
                        const void *logits, const void *targets,
                        const void *lossGrad, void *logitsGrad, int32_t site,
                        const char *location) {
  CLEAVE_RETURN_IF_ERROR(
      checkClasses(vocab, classes, "cross_entropy_grad", location));
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
        (rows, vocab, classes, static_cast<const T *>(logits),
         static_cast<const I *>(targets), static_cast<const T *>(lossGrad),
         static_cast<T *>(logitsGrad), site, context.getIndexErrorSlot());
        return context.checkLaunch("cross_entropy_grad", location);
      });
    });
  });
}

} // namespace cleave::rt
