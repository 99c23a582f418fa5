//===- Attention.cpp - attention without the score matrix -----------------===//
//
// Flash attention, shaped for both backends: the keys are visited in tiles
// of kAttentionKeyTile, every query of every batch entry at once, so each
// tile is two batched GEMMs (scores, then probabilities times values) and
// one row kernel between them. Scratch holds one tile's scores, batch * s *
// kAttentionKeyTile values, whatever t is: attention's memory grows with
// the sequence, not with its square.
//
// Forward, per tile: the row kernel takes each query's running maximum and
// sum of exponentials past the tile (the online softmax), rescales the
// output rows accumulated so far, and leaves the tile's probabilities,
// relative to the new maximum, for the second GEMM to add into them. The
// last step divides by the sums and keeps logsumexp per query.
//
// Backward (FlashAttention-2's): D = rowsum(dO * O) once; then per tile the
// probabilities come back from the kept logsumexp, dS = scale * P * (dP -
// D), and the tile's dV = P^T dO and dK = dS^T Q are final, since every
// query is in the tile; dQ += dS K accumulates over tiles.
//
// With causal attention a query sees keys up to its position plus (t - s);
// a tile starts at the first query that sees any of its keys, which skips
// about half the work.
//
// Grouped-query attention: the query heads of a group are consecutive, so
// the group's queries are one [groups * s, d] matrix against its key/value
// matrix, and the same GEMMs serve (dK and dV then sum over the group). A
// row's position is its index modulo s; the tiles do not skip queries then,
// since a group's masked rows are not contiguous (rows that see none of a
// tile's keys add nothing to it). Scores, their gradients and the accumulators
// are in the compute type (f32 for bf16 and f16, from GEMMs with f32 output),
// as a fused kernel keeps them in registers; only the probabilities and score
// gradients that feed the next GEMMs are rounded to the element type. For
// f32 and f64 the accumulators are the output buffers themselves.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

namespace cleave::rt {
namespace {

/// Where one key tile sits: keys [firstKey, firstKey + keys) against rows
/// [firstQuery, s) of every key/value matrix's queries, where s counts the
/// rows of a whole group (groups * the sequence's queries). Its score rows
/// are those rows, batch-major.
struct KeyTile {
  int64_t s, t, d;
  int64_t firstKey, keys, firstQuery;
  /// Queries per sequence: a row's position is its index modulo this.
  int64_t positions;
  bool causal;

  static KeyTile get(const AttentionArgs &args, int64_t firstKey) {
    KeyTile tile{args.groups * args.s, args.t, args.d, firstKey, 0, 0, args.s,
                 args.causal};
    tile.keys = args.t - firstKey < kAttentionKeyTile ? args.t - firstKey
                                                      : kAttentionKeyTile;
    // Query r sees key j when j <= r + (t - s).
    int64_t first =
        args.causal && args.groups == 1 ? firstKey - (args.t - args.s) : 0;
    tile.firstQuery = first > 0 ? first : 0;
    return tile;
  }
  int64_t getQueries() const { return s - firstQuery; }
  /// The [batch * s] index of score row `row`.
  CLEAVE_HD int64_t getQueryRow(int64_t row) const {
    int64_t queries = s - firstQuery;
    return row / queries * s + firstQuery + row % queries;
  }
  /// The keys of the tile that score row `row` sees (none, for a row of a
  /// group that the tile is wholly masked for).
  CLEAVE_HD int64_t getVisibleKeys(int64_t row) const {
    if (!causal)
      return keys;
    int64_t query = (firstQuery + row % (s - firstQuery)) % positions;
    int64_t visible = query + (t - positions) + 1 - firstKey;
    return visible < 0 ? 0 : visible < keys ? visible : keys;
  }
};

/// rowMax = -inf, rowSum = 0 and the output accumulator 0.
template <typename C>
CLEAVE_KERNEL void startForwardKernel(int64_t rows, int64_t d, C *rowMax,
                                      C *rowSum, C *accumulator) {
  CLEAVE_PARALLEL_FOR(i, rows * d) {
    accumulator[i] = C(0);
    if (i % d == 0) {
      rowMax[i / d] = -static_cast<C>(INFINITY);
      rowSum[i / d] = C(0);
    }
  }
}

/// The online softmax over one tile's scores (see the file comment), into
/// `probabilities`, which may be `scores`. Every row sees a key of the
/// first tile, so its running maximum is finite from then on, and a later
/// tile it sees none of leaves it as it was.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void
softmaxTileKernel(int64_t rows, KeyTile tile, compute_t<T> factor,
                  const compute_t<T> *scores, T *probabilities,
                  compute_t<T> *rowMax, compute_t<T> *rowSum,
                  compute_t<T> *accumulator) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    int64_t query = tile.getQueryRow(row);
    int64_t visible = tile.getVisibleKeys(row);
    const C *x = scores + row * tile.keys;
    T *p = probabilities + row * tile.keys;
    // Read before the team's reduction, which every thread passes before
    // rank 0 writes the new values.
    C oldMax = rowMax[query], oldSum = rowSum[query];
    MaxSum<C> local = getEmptyMaxSum<C>();
    CLEAVE_FOR_ROW_CHUNKS(Team, j, visible, V) {
      Vector<C, V> xs = loadVector<V>(x + j);
      for (int i = 0; i < V; ++i)
        if (j + i < visible)
          local = addToMaxSum(local, factor * xs[i]);
    }
    MaxSum<C> stats = Team::reduce(local, MaxSumOp{});
    C newMax = cleave::max(oldMax, stats.max);
    CLEAVE_FOR_ROW_CHUNKS(Team, j, tile.keys, V) {
      Vector<C, V> xs = loadVector<V>(x + j);
      Vector<T, V> ps;
      for (int i = 0; i < V; ++i)
        ps[i] = store<T>(j + i < visible ? cleave::exp(factor * xs[i] - newMax)
                                         : C(0));
      storeVector(p + j, ps);
    }
    // exp(-inf) = 0 drops nothing on a row's first tile.
    C correction = cleave::exp(oldMax - newMax);
    C *out = accumulator + query * tile.d;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, tile.d, 1)
    out[j] *= correction;
    if (Team::getRank() == 0) {
      rowMax[query] = newMax;
      rowSum[query] =
          oldSum * correction + stats.sum * cleave::exp(stats.max - newMax);
    }
  }
}

/// output = accumulator / rowSum; statistics = rowMax + log(rowSum).
/// `accumulator` may be `output`.
template <typename T, typename C>
CLEAVE_KERNEL void finishForwardKernel(int64_t rows, int64_t d, const C *rowMax,
                                       const C *rowSum, const C *accumulator,
                                       T *output, C *statistics) {
  CLEAVE_PARALLEL_FOR(i, rows * d) {
    int64_t row = i / d;
    output[i] = store<T>(accumulator[i] / rowSum[row]);
    if (i % d == 0)
      statistics[row] = rowMax[row] + cleave::log(rowSum[row]);
  }
}

/// delta[row] = sum(outputGrad[row] * output[row]); the dQ accumulator 0.
template <typename Team, int V, typename T>
CLEAVE_KERNEL void startBackwardKernel(int64_t rows, int64_t d, const T *output,
                                       const T *outputGrad, compute_t<T> *delta,
                                       compute_t<T> *queryAccumulator) {
  using C = compute_t<T>;
  CLEAVE_FOR_EACH_ROW(Team, row, rows) {
    C dot = 0;
    CLEAVE_FOR_ROW_CHUNKS(Team, j, d, V) {
      Vector<T, V> os = loadVector<V>(output + row * d + j);
      Vector<T, V> dos = loadVector<V>(outputGrad + row * d + j);
      for (int i = 0; i < V; ++i) {
        dot += toCompute(os[i]) * toCompute(dos[i]);
        queryAccumulator[row * d + j + i] = C(0);
      }
    }
    dot = Team::reduce(dot, SumOp{});
    if (Team::getRank() == 0)
      delta[row] = dot;
  }
}

/// Scores become probabilities P = exp(factor * s - logsumexp) and the
/// probabilities' gradients dP become the scores' dS = factor * P * (dP -
/// delta), masked keys 0. Each output may be its input.
template <typename T>
CLEAVE_KERNEL void
gradientTileKernel(int64_t rows, KeyTile tile, compute_t<T> factor,
                   const compute_t<T> *statistics, const compute_t<T> *delta,
                   const compute_t<T> *scores,
                   const compute_t<T> *probabilityGrads, T *probabilities,
                   T *scoreGrads) {
  using C = compute_t<T>;
  CLEAVE_PARALLEL_FOR(i, rows * tile.keys) {
    int64_t row = i / tile.keys;
    int64_t query = tile.getQueryRow(row);
    C p = i % tile.keys < tile.getVisibleKeys(row)
              ? cleave::exp(factor * scores[i] - statistics[query])
              : C(0);
    C dp = probabilityGrads[i];
    probabilities[i] = store<T>(p);
    scoreGrads[i] = store<T>(factor * p * (dp - delta[query]));
  }
}

template <typename T, typename C>
CLEAVE_KERNEL void narrowKernel(int64_t count, const C *CLEAVE_RESTRICT input,
                                T *CLEAVE_RESTRICT output) {
  CLEAVE_PARALLEL_FOR(i, count) { output[i] = store<T>(input[i]); }
}

/// Carves `sizes` bytes, each 256-byte aligned, out of one scratch slot.
template <int N>
Status getScratchParts(Context &context, ScratchSlot slot,
                       const size_t (&sizes)[N], void *(&parts)[N]) {
  size_t total = 0;
  for (size_t size : sizes)
    total += alignScratch(size);
  char *base = nullptr;
  CLEAVE_RETURN_IF_ERROR(
      context.getScratch(slot, total, reinterpret_cast<void **>(&base)));
  for (int i = 0; i < N; ++i) {
    parts[i] = base;
    base += alignScratch(sizes[i]);
  }
  return Status::success();
}

/// The batched product of a tile: c[batch] = op(a) op(b) with each
/// operand's pointer already at the tile's first row.
GemmArgs getTileProduct(int64_t batch, int64_t m, int64_t n, int64_t k,
                        bool transposeA, bool transposeB, const void *a,
                        int64_t strideA, const void *b, int64_t strideB,
                        void *c, int64_t strideC) {
  GemmArgs args;
  args.batch = batch;
  args.m = m;
  args.n = n;
  args.k = k;
  args.transposeA = transposeA;
  args.transposeB = transposeB;
  args.a = a;
  args.b = b;
  args.c = c;
  args.strideA = strideA;
  args.strideB = strideB;
  args.strideC = strideC;
  return args;
}

Status checkShape(const AttentionArgs &args, const char *op,
                  const char *location) {
  if (args.batch <= 0 || args.s <= 0 || args.t <= 0 || args.d <= 0 ||
      args.groups <= 0 || args.batch % args.groups != 0 ||
      (args.causal && args.t < args.s))
    return Status::error(std::string(op) + " at " + location +
                         ": invalid shape");
  return Status::success();
}

template <typename T>
Status runAttention(Context &context, DType dtype, const AttentionArgs &args,
                    const char *location) {
  using C = compute_t<T>;
  constexpr bool kWide = !std::is_same_v<T, C>;
  const int64_t rows = args.batch * args.s, d = args.d;
  const size_t tileElements = rows * kAttentionKeyTile;
  const size_t statsBytes = rows * sizeof(C);
  void *parts[5];
  CLEAVE_RETURN_IF_ERROR(getScratchParts(
      context, ScratchSlot::Attention,
      {tileElements * sizeof(C), kWide ? tileElements * sizeof(T) : 0,
       statsBytes, statsBytes, kWide ? rows * d * sizeof(C) : 0},
      parts));
  C *scores = static_cast<C *>(parts[0]);
  T *probabilities =
      kWide ? static_cast<T *>(parts[1]) : reinterpret_cast<T *>(scores);
  C *rowMax = static_cast<C *>(parts[2]);
  C *rowSum = static_cast<C *>(parts[3]);
  T *output = static_cast<T *>(args.output);
  C *accumulator =
      kWide ? static_cast<C *>(parts[4]) : reinterpret_cast<C *>(output);

  CLEAVE_LAUNCH(context, (startForwardKernel<C>), rows * d)
  (rows, d, rowMax, rowSum, accumulator);
  CLEAVE_RETURN_IF_ERROR(context.checkLaunch("attention", location));
  const T *q = static_cast<const T *>(args.q);
  const T *k = static_cast<const T *>(args.k);
  const T *v = static_cast<const T *>(args.v);
  // One GEMM batch entry per key/value matrix, with its group's queries.
  const int64_t matrices = args.batch / args.groups;
  const int64_t sd = args.groups * args.s * d, td = args.t * d;
  for (int64_t firstKey = 0; firstKey < args.t; firstKey += kAttentionKeyTile) {
    KeyTile tile = KeyTile::get(args, firstKey);
    const int64_t queries = tile.getQueries(), tileRows = matrices * queries;
    const int64_t tileSize = queries * tile.keys;
    // scores = q k^T over the tile.
    GemmArgs product = getTileProduct(matrices, queries, tile.keys, d, false,
                                      true, q + tile.firstQuery * d, sd,
                                      k + firstKey * d, td, scores, tileSize);
    product.wideOutput = kWide;
    CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, product, location));
    bool vectors = canUseVectors<T>(tile.keys, {probabilities}) &&
                   canUseVectors<C>(tile.keys, {scores});
    CLEAVE_RETURN_IF_ERROR(
        dispatchRows<T>(tile.keys, vectors, [&](auto team, auto width) {
          using Team = decltype(team);
          constexpr int V = decltype(width)::value;
          CLEAVE_LAUNCH_ROWS(context, Team, (softmaxTileKernel<Team, V, T>),
                             tileRows)
          (tileRows, tile, static_cast<C>(args.scale), scores, probabilities,
           rowMax, rowSum, accumulator);
          return context.checkLaunch("attention", location);
        }));
    // accumulator += P v over the tile.
    GemmArgs mix = getTileProduct(matrices, queries, d, tile.keys, false, false,
                                  probabilities, tileSize, v + firstKey * d, td,
                                  accumulator + tile.firstQuery * d, sd);
    mix.accumulate = true;
    mix.wideOutput = kWide;
    CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, mix, location));
  }
  CLEAVE_LAUNCH(context, (finishForwardKernel<T, C>), rows * d)
  (rows, d, rowMax, rowSum, accumulator, output,
   static_cast<C *>(args.statistics));
  return context.checkLaunch("attention", location);
}

template <typename T>
Status runAttentionGrad(Context &context, DType dtype,
                        const AttentionGradArgs &args, const char *location) {
  using C = compute_t<T>;
  constexpr bool kWide = !std::is_same_v<T, C>;
  const AttentionArgs &f = args.forward;
  const int64_t rows = f.batch * f.s, d = f.d;
  const size_t tileElements = rows * kAttentionKeyTile;
  void *parts[6];
  CLEAVE_RETURN_IF_ERROR(
      getScratchParts(context, ScratchSlot::AttentionGrad,
                      {tileElements * sizeof(C), tileElements * sizeof(C),
                       kWide ? tileElements * sizeof(T) : 0,
                       kWide ? tileElements * sizeof(T) : 0, rows * sizeof(C),
                       kWide ? rows * d * sizeof(C) : 0},
                      parts));
  C *scores = static_cast<C *>(parts[0]);
  C *probabilityGrads = static_cast<C *>(parts[1]);
  T *probabilities =
      kWide ? static_cast<T *>(parts[2]) : reinterpret_cast<T *>(scores);
  T *scoreGrads = kWide ? static_cast<T *>(parts[3])
                        : reinterpret_cast<T *>(probabilityGrads);
  C *delta = static_cast<C *>(parts[4]);
  T *queryGrad = static_cast<T *>(args.queryGrad);
  C *queryAccumulator =
      kWide ? static_cast<C *>(parts[5]) : reinterpret_cast<C *>(queryGrad);
  const T *output = static_cast<const T *>(f.output);
  const T *outputGrad = static_cast<const T *>(args.outputGrad);

  bool rowVectors = canUseVectors<T>(d, {output, outputGrad});
  CLEAVE_RETURN_IF_ERROR(
      dispatchRows<T>(d, rowVectors, [&](auto team, auto width) {
        using Team = decltype(team);
        constexpr int V = decltype(width)::value;
        CLEAVE_LAUNCH_ROWS(context, Team, (startBackwardKernel<Team, V, T>),
                           rows)
        (rows, d, output, outputGrad, delta, queryAccumulator);
        return context.checkLaunch("attention_grad", location);
      }));

  const T *q = static_cast<const T *>(f.q);
  const T *k = static_cast<const T *>(f.k);
  const T *v = static_cast<const T *>(f.v);
  T *keyGrad = static_cast<T *>(args.keyGrad);
  T *valueGrad = static_cast<T *>(args.valueGrad);
  const C *statistics = static_cast<const C *>(f.statistics);
  const int64_t matrices = f.batch / f.groups;
  const int64_t sd = f.groups * f.s * d, td = f.t * d;
  for (int64_t firstKey = 0; firstKey < f.t; firstKey += kAttentionKeyTile) {
    KeyTile tile = KeyTile::get(f, firstKey);
    const int64_t queries = tile.getQueries(), tileRows = matrices * queries;
    const int64_t tileSize = queries * tile.keys;
    const T *qTile = q + tile.firstQuery * d;
    const T *outputGradTile = outputGrad + tile.firstQuery * d;
    const T *kTile = k + firstKey * d;
    // scores = q k^T and dP = dO v^T, then P and dS.
    GemmArgs product =
        getTileProduct(matrices, queries, tile.keys, d, false, true, qTile, sd,
                       kTile, td, scores, tileSize);
    product.wideOutput = kWide;
    CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, product, location));
    product.a = outputGradTile;
    product.b = v + firstKey * d;
    product.c = probabilityGrads;
    CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, product, location));
    CLEAVE_LAUNCH(context, (gradientTileKernel<T>), tileRows * tile.keys)
    (tileRows, tile, static_cast<C>(f.scale), statistics, delta, scores,
     probabilityGrads, probabilities, scoreGrads);
    CLEAVE_RETURN_IF_ERROR(context.checkLaunch("attention_grad", location));
    // dV = P^T dO and dK = dS^T q: the queries before the tile's first see
    // none of its keys, so these are whole.
    CLEAVE_RETURN_IF_ERROR(
        gemm(context, dtype,
             getTileProduct(matrices, tile.keys, d, queries, true, false,
                            probabilities, tileSize, outputGradTile, sd,
                            valueGrad + firstKey * d, td),
             location));
    CLEAVE_RETURN_IF_ERROR(gemm(
        context, dtype,
        getTileProduct(matrices, tile.keys, d, queries, true, false, scoreGrads,
                       tileSize, qTile, sd, keyGrad + firstKey * d, td),
        location));
    // dQ += dS k.
    GemmArgs queryProduct = getTileProduct(
        matrices, queries, d, tile.keys, false, false, scoreGrads, tileSize,
        kTile, td, queryAccumulator + tile.firstQuery * d, sd);
    queryProduct.accumulate = true;
    queryProduct.wideOutput = kWide;
    CLEAVE_RETURN_IF_ERROR(gemm(context, dtype, queryProduct, location));
  }
  if (!kWide)
    return Status::success();
  CLEAVE_LAUNCH(context, (narrowKernel<T, C>), rows * d)
  (rows * d, queryAccumulator, queryGrad);
  return context.checkLaunch("attention_grad", location);
}

} // namespace

Status attention(Context &context, DType dtype, const AttentionArgs &args,
                 const char *location) {
  CLEAVE_RETURN_IF_ERROR(checkShape(args, "attention", location));
  return dispatchFloat(dtype, "attention", location, [&](auto tag) {
    return runAttention<decltype(tag)>(context, dtype, args, location);
  });
}

Status attentionGrad(Context &context, DType dtype,
                     const AttentionGradArgs &args, const char *location) {
  CLEAVE_RETURN_IF_ERROR(checkShape(args.forward, "attention_grad", location));
  return dispatchFloat(dtype, "attention_grad", location, [&](auto tag) {
    return runAttentionGrad<decltype(tag)>(context, dtype, args, location);
  });
}

} // namespace cleave::rt
