//===- KernelShapesTest.cpp - Library kernels at shapes that stress them --===//
//
// Every row, column and data-movement kernel against a plain reference in
// double, for f32, bf16, f16 and f64, at the shapes that exercise each
// structure: one row, a row of 50,257, rows shorter than a warp, rows that
// are not a multiple of the vector width, rows long enough for a block, and
// buffers that start off a 128-bit boundary. Buffers live in device memory
// (Context::allocate), so the same source tests either backend: it builds
// as CleaveRuntimeTests on the CPU and as CleaveRuntimeCudaKernelTests,
// which runs on a GPU machine (bench/gpu). Each kernel also runs twice and
// must give the same bits.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Kernels.h"
#include "cleave/runtime/Portability.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace cleave::rt;
using cleave::bf16;
using cleave::f16;

namespace {

template <typename T> struct TypeInfo;
template <> struct TypeInfo<float> {
  static constexpr DType kDType = DType::F32;
  static constexpr double kTolerance = 2e-5;
  static constexpr double kSmallest = 0;
};
template <> struct TypeInfo<double> {
  static constexpr DType kDType = DType::F64;
  static constexpr double kTolerance = 1e-11;
  static constexpr double kSmallest = 0;
};
template <> struct TypeInfo<bf16> {
  static constexpr DType kDType = DType::BF16;
  static constexpr double kTolerance = 2e-2;
  static constexpr double kSmallest = 0;
};
template <> struct TypeInfo<f16> {
  static constexpr DType kDType = DType::F16;
  static constexpr double kTolerance = 3e-3;
  // The subnormal step: values below 2^-14 keep only absolute precision.
  static constexpr double kSmallest = 5.9604644775390625e-8;
};

template <typename T> double toDouble(T value) {
  return static_cast<double>(cleave::toCompute(value));
}
template <typename T> T fromDouble(double value) {
  return cleave::convert<T>(value);
}

/// Values in [-range, range) from a counter hash, stored as T.
template <typename T>
std::vector<T> makeValues(size_t count, uint32_t seed, double range = 2.0) {
  std::vector<T> values(count);
  uint32_t state = seed * 2654435761u + 12345u;
  for (T &value : values) {
    state = state * 1664525u + 1013904223u;
    double unit = static_cast<double>(state >> 8) / double(1u << 24);
    value = fromDouble<T>((2 * unit - 1) * range);
  }
  return values;
}

template <typename T> std::vector<double> widen(const std::vector<T> &values) {
  std::vector<double> wide(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    wide[i] = toDouble(values[i]);
  return wide;
}

/// A device buffer of `count` elements of T, `offset` elements past an
/// aligned allocation (offset 1 defeats 128-bit accesses).
template <typename T> class DeviceTensor {
public:
  DeviceTensor(Context &context, size_t count, size_t offset)
      : context(context), count(count), offset(offset) {
    Status status =
        context.allocate((count + offset + 1) * sizeof(T), &base, "test");
    EXPECT_TRUE(status.ok()) << status.message();
  }
  DeviceTensor(Context &context, const std::vector<T> &values, size_t offset)
      : DeviceTensor(context, values.size(), offset) {
    write(values);
  }
  ~DeviceTensor() { context.release(base); }
  DeviceTensor(const DeviceTensor &) = delete;
  DeviceTensor &operator=(const DeviceTensor &) = delete;

  T *get() const { return static_cast<T *>(base) + offset; }
  void write(const std::vector<T> &values) {
    Status status = context.copyToDevice(get(), values.data(),
                                         values.size() * sizeof(T));
    EXPECT_TRUE(status.ok()) << status.message();
  }
  std::vector<T> read() const {
    std::vector<T> values(count);
    Status status = context.copyToHost(values.data(), get(), count * sizeof(T));
    EXPECT_TRUE(status.ok()) << status.message();
    return values;
  }

private:
  Context &context;
  void *base = nullptr;
  size_t count, offset;
};

template <typename T> bool sameBits(const std::vector<T> &a,
                                    const std::vector<T> &b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// Elementwise |got - expected| <= tolerance * (|expected| + floor) plus
/// the storage type's subnormal step, where the floor is a tenth of the
/// largest expected magnitude: values near zero come out of sums and
/// differences of the tensor's larger values, so they are held to the
/// tensor's scale, not to their own.
template <typename T>
void expectClose(const std::vector<T> &got, const std::vector<double> &expected,
                 double tolerance, const std::string &what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  double largest = 0;
  for (double value : expected)
    largest = std::max(largest, std::fabs(value));
  double floor = 0.1 * largest + 1e-30;
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double value = toDouble(got[i]);
    double bound = tolerance * (std::fabs(expected[i]) + floor) +
                   TypeInfo<T>::kSmallest;
    if (!(std::fabs(value - expected[i]) <= bound) && reported++ < 5)
      ADD_FAILURE() << what << ": element " << i << " is " << value
                    << ", expected " << expected[i] << " (bound " << bound
                    << ")";
  }
}

struct RowShape {
  int64_t rows, cols;
};

/// One row; a row of GPT-2's vocabulary; rows shorter than a warp; a warp;
/// widths off the vector width; the longest warp row; block rows, off and
/// on the vector width.
const RowShape kRowShapes[] = {{1, 1},    {1, 50257}, {3, 5},    {7, 31},
                               {4, 32},   {5, 771},   {4, 768},  {3, 1024},
                               {2, 1030}, {2, 4099},  {3, 2048}, {2, 3072}};

std::string describe(const RowShape &shape, size_t offset) {
  return std::to_string(shape.rows) + "x" + std::to_string(shape.cols) +
         (offset ? " unaligned" : "");
}

template <typename T> class KernelShapesTest : public ::testing::Test {
protected:
  void SetUp() override {
    Status status = context.initialize();
    ASSERT_TRUE(status.ok()) << status.message();
  }

  static constexpr DType kDType = TypeInfo<T>::kDType;
  static constexpr double kTolerance = TypeInfo<T>::kTolerance;

  /// Runs `launch` into `output` twice; the runs must agree bit for bit.
  template <typename Launch>
  std::vector<T> runTwice(DeviceTensor<T> &output, Launch &&launch,
                          const std::string &what) {
    Status status = launch();
    EXPECT_TRUE(status.ok()) << what << ": " << status.message();
    std::vector<T> first = output.read();
    status = launch();
    EXPECT_TRUE(status.ok()) << what << ": " << status.message();
    std::vector<T> second = output.read();
    EXPECT_TRUE(sameBits(first, second)) << what << ": runs differ";
    return first;
  }

  Context context;
};

using ElementTypes = ::testing::Types<float, double, bf16, f16>;
TYPED_TEST_SUITE(KernelShapesTest, ElementTypes);

TYPED_TEST(KernelShapesTest, SoftmaxAndItsGradient) {
  using T = TypeParam;
  for (const RowShape &shape : kRowShapes)
    for (size_t offset : {0, 1}) {
      std::string what = "softmax " + describe(shape, offset);
      size_t count = shape.rows * shape.cols;
      std::vector<T> x = makeValues<T>(count, 1, 4.0);
      DeviceTensor<T> input(this->context, x, offset),
          output(this->context, count, offset);
      std::vector<T> y = this->runTwice(output, [&] {
        return softmax(this->context, this->kDType, shape.rows, shape.cols,
                       input.get(), output.get(), "test");
      }, what);
      std::vector<double> expected(count), wide = widen(x);
      for (int64_t r = 0; r < shape.rows; ++r) {
        const double *row = &wide[r * shape.cols];
        double largest = *std::max_element(row, row + shape.cols), sum = 0;
        for (int64_t j = 0; j < shape.cols; ++j)
          sum += std::exp(row[j] - largest);
        for (int64_t j = 0; j < shape.cols; ++j)
          expected[r * shape.cols + j] = std::exp(row[j] - largest) / sum;
      }
      expectClose(y, expected, this->kTolerance, what);

      what = "softmax_grad " + describe(shape, offset);
      std::vector<T> dy = makeValues<T>(count, 2);
      DeviceTensor<T> outputGrad(this->context, dy, offset),
          inputGrad(this->context, count, offset);
      std::vector<T> dx = this->runTwice(inputGrad, [&] {
        return softmaxGrad(this->context, this->kDType, shape.rows, shape.cols,
                           output.get(), outputGrad.get(), inputGrad.get(),
                           "test");
      }, what);
      std::vector<double> wideY = widen(y), wideDy = widen(dy);
      for (int64_t r = 0; r < shape.rows; ++r) {
        double dot = 0;
        for (int64_t j = 0; j < shape.cols; ++j)
          dot += wideY[r * shape.cols + j] * wideDy[r * shape.cols + j];
        for (int64_t j = 0; j < shape.cols; ++j) {
          int64_t i = r * shape.cols + j;
          expected[i] = wideY[i] * (wideDy[i] - dot);
        }
      }
      expectClose(dx, expected, this->kTolerance, what);
    }
}

struct AttentionShape {
  int64_t batch, s, t, d;
  bool causal;
  /// Query matrices per key/value matrix (grouped-query attention).
  int64_t groups = 1;
};

/// Fewer queries than keys (the causal offset) in one key tile and over
/// several (tiles that start inside the queries, at rows off any alignment),
/// several tiles of which the last is partial, non-causal over many keys,
/// and head size 128; grouped-query attention over one tile and over
/// several (with rows a later tile is wholly masked for), causal or not,
/// and multi-query attention.
const AttentionShape kAttentionShapes[] = {
    {2, 3, 16, 8, true},      {2, 100, 300, 16, true},
    {1, 129, 257, 8, true},   {1, 300, 300, 64, true},
    {2, 5, 200, 16, false},   {1, 130, 130, 128, true},
    {4, 7, 9, 8, true, 2},    {6, 200, 260, 16, true, 3},
    {4, 5, 140, 8, false, 2}, {4, 130, 130, 8, true, 4}};

/// Attention and its gradients in double, from the definition: the
/// probabilities of the whole score matrix.
struct AttentionReference {
  std::vector<double> output, statistics, queryGrad, keyGrad, valueGrad;

  AttentionReference(const AttentionShape &shape, double scale,
                     const std::vector<double> &q, const std::vector<double> &k,
                     const std::vector<double> &v,
                     const std::vector<double> &outputGrad) {
    const int64_t s = shape.s, t = shape.t, d = shape.d;
    const int64_t groups = shape.groups;
    output.assign(shape.batch * s * d, 0);
    statistics.assign(shape.batch * s, 0);
    queryGrad.assign(q.size(), 0);
    keyGrad.assign(k.size(), 0);
    valueGrad.assign(v.size(), 0);
    for (int64_t b = 0; b < shape.batch; ++b)
      for (int64_t i = 0; i < s; ++i) {
        int64_t visible = shape.causal ? i + (t - s) + 1 : t;
        const double *qi = &q[(b * s + i) * d];
        const double *doi = &outputGrad[(b * s + i) * d];
        std::vector<double> p(visible);
        double largest = -INFINITY, sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (int64_t l = 0; l < d; ++l)
            dot += qi[l] * k[(b / groups * t + j) * d + l];
          p[j] = scale * dot;
          largest = std::max(largest, p[j]);
        }
        for (double &w : p)
          sum += (w = std::exp(w - largest));
        for (double &w : p)
          w /= sum;
        statistics[b * s + i] = largest + std::log(sum);
        // dP = dO v^T, dS = P (dP - sum(P dP)).
        std::vector<double> dp(visible);
        double delta = 0;
        for (int64_t j = 0; j < visible; ++j) {
          const double *vj = &v[(b / groups * t + j) * d];
          for (int64_t l = 0; l < d; ++l) {
            output[(b * s + i) * d + l] += p[j] * vj[l];
            valueGrad[(b / groups * t + j) * d + l] += p[j] * doi[l];
            dp[j] += doi[l] * vj[l];
          }
          delta += p[j] * dp[j];
        }
        for (int64_t j = 0; j < visible; ++j) {
          double ds = scale * p[j] * (dp[j] - delta);
          for (int64_t l = 0; l < d; ++l) {
            queryGrad[(b * s + i) * d + l] +=
                ds * k[(b / groups * t + j) * d + l];
            keyGrad[(b / groups * t + j) * d + l] += ds * qi[l];
          }
        }
      }
  }
};

TYPED_TEST(KernelShapesTest, AttentionAndItsGradientsByKeyTiles) {
  using T = TypeParam;
  using C = cleave::compute_t<T>;
  for (const AttentionShape &shape : kAttentionShapes) {
    std::string what =
        "attention " + std::to_string(shape.batch) + "x" +
        std::to_string(shape.s) + "x" + std::to_string(shape.t) + "x" +
        std::to_string(shape.d) + (shape.causal ? " causal" : "") +
        (shape.groups > 1 ? " groups " + std::to_string(shape.groups) : "");
    const int64_t queryCount = shape.batch * shape.s * shape.d;
    const int64_t keyCount = shape.batch / shape.groups * shape.t * shape.d;
    std::vector<T> q = makeValues<T>(queryCount, 3),
                   k = makeValues<T>(keyCount, 4),
                   v = makeValues<T>(keyCount, 5),
                   outputGrad = makeValues<T>(queryCount, 6);
    DeviceTensor<T> dq(this->context, q, 0), dk(this->context, k, 0),
        dv(this->context, v, 0), ddo(this->context, outputGrad, 0),
        out(this->context, queryCount, 0), gq(this->context, queryCount, 0),
        gk(this->context, keyCount, 0), gv(this->context, keyCount, 0);
    DeviceTensor<C> stats(this->context, shape.batch * shape.s, 0);
    AttentionArgs args;
    args.batch = shape.batch;
    args.s = shape.s;
    args.t = shape.t;
    args.d = shape.d;
    args.causal = shape.causal;
    args.groups = shape.groups;
    args.scale = 0.35;
    args.q = dq.get();
    args.k = dk.get();
    args.v = dv.get();
    args.output = out.get();
    args.statistics = stats.get();
    std::vector<T> got = this->runTwice(
        out,
        [&] { return attention(this->context, this->kDType, args, "test"); },
        what);
    AttentionReference reference(shape, args.scale, widen(q), widen(k),
                                 widen(v), widen(outputGrad));
    // Probabilities are rounded to T before they weigh the values.
    expectClose(got, reference.output, 4 * this->kTolerance, what);
    // The scores themselves are rounded to T.
    std::vector<double> gotStats = widen(stats.read());
    for (size_t i = 0; i < gotStats.size(); ++i)
      EXPECT_NEAR(gotStats[i], reference.statistics[i],
                  this->kTolerance * (1 + std::fabs(reference.statistics[i])))
          << what << ": logsumexp of row " << i;

    AttentionGradArgs grad;
    grad.forward = args;
    grad.outputGrad = ddo.get();
    grad.queryGrad = gq.get();
    grad.keyGrad = gk.get();
    grad.valueGrad = gv.get();
    auto runGrad = [&] {
      return attentionGrad(this->context, this->kDType, grad, "test");
    };
    std::vector<T> keyGrad = this->runTwice(gk, runGrad, what + " dK");
    // The probabilities and their gradients are rounded to T, and dQ and
    // dK sum over many of them.
    double tolerance = 8 * this->kTolerance;
    expectClose(gq.read(), reference.queryGrad, tolerance, what + " dQ");
    expectClose(keyGrad, reference.keyGrad, tolerance, what + " dK");
    expectClose(gv.read(), reference.valueGrad, tolerance, what + " dV");
  }
}

TYPED_TEST(KernelShapesTest, NormsAndTheirGradients) {
  using T = TypeParam;
  for (const RowShape &shape : kRowShapes)
    for (size_t offset : {0, 1})
      for (bool centered : {true, false}) {
        std::string what = std::string(centered ? "layer_norm " : "rms_norm ") +
                           describe(shape, offset);
        const double epsilon = 1e-5;
        size_t count = shape.rows * shape.cols;
        std::vector<T> x = makeValues<T>(count, 6),
                       gamma = makeValues<T>(shape.cols, 7),
                       beta = makeValues<T>(shape.cols, 8),
                       dy = makeValues<T>(count, 9);
        DeviceTensor<T> input(this->context, x, offset),
            scale(this->context, gamma, offset),
            bias(this->context, beta, offset),
            outputGrad(this->context, dy, offset),
            output(this->context, count, offset),
            inputGrad(this->context, count, offset),
            scaleGrad(this->context, shape.cols, offset),
            biasGrad(this->context, shape.cols, offset);
        std::vector<T> y = this->runTwice(output, [&] {
          return centered
                     ? layerNorm(this->context, this->kDType, shape.rows,
                                 shape.cols, input.get(), scale.get(),
                                 bias.get(), epsilon, output.get(), "test")
                     : rmsNorm(this->context, this->kDType, shape.rows,
                               shape.cols, input.get(), scale.get(), epsilon,
                               output.get(), "test");
        }, what);
        std::vector<T> dx = this->runTwice(inputGrad, [&] {
          return centered
                     ? layerNormGrad(this->context, this->kDType, shape.rows,
                                     shape.cols, input.get(), scale.get(),
                                     outputGrad.get(), epsilon, inputGrad.get(),
                                     scaleGrad.get(), biasGrad.get(), "test")
                     : rmsNormGrad(this->context, this->kDType, shape.rows,
                                   shape.cols, input.get(), scale.get(),
                                   outputGrad.get(), epsilon, inputGrad.get(),
                                   scaleGrad.get(), "test");
        }, what + " grad");
        std::vector<T> dgamma = scaleGrad.read(), dbeta = biasGrad.read();

        std::vector<double> wx = widen(x), wg = widen(gamma), wb = widen(beta),
                            wdy = widen(dy);
        std::vector<double> ey(count), edx(count), edg(shape.cols, 0),
            edb(shape.cols, 0);
        for (int64_t r = 0; r < shape.rows; ++r) {
          const double *row = &wx[r * shape.cols];
          double mean = 0, squares = 0;
          if (centered) {
            for (int64_t j = 0; j < shape.cols; ++j)
              mean += row[j];
            mean /= shape.cols;
          }
          for (int64_t j = 0; j < shape.cols; ++j)
            squares += (row[j] - mean) * (row[j] - mean);
          double inverse = 1 / std::sqrt(squares / shape.cols + epsilon);
          double meanG = 0, meanGX = 0;
          for (int64_t j = 0; j < shape.cols; ++j) {
            int64_t i = r * shape.cols + j;
            double normalized = (row[j] - mean) * inverse;
            ey[i] = normalized * wg[j] + (centered ? wb[j] : 0.0);
            double g = wdy[i] * wg[j];
            meanG += g / shape.cols;
            meanGX += g * normalized / shape.cols;
            edg[j] += wdy[i] * normalized;
            edb[j] += wdy[i];
          }
          for (int64_t j = 0; j < shape.cols; ++j) {
            int64_t i = r * shape.cols + j;
            double normalized = (row[j] - mean) * inverse;
            edx[i] = inverse * (wdy[i] * wg[j] - (centered ? meanG : 0.0) -
                                normalized * meanGX);
          }
        }
        // A row of one element normalizes to 0: its input gradient is all
        // cancellation, so it is held to the scale of the others.
        expectClose(y, ey, 2 * this->kTolerance, what);
        if (shape.cols > 1)
          expectClose(dx, edx, 8 * this->kTolerance, what + " input grad");
        expectClose(dgamma, edg, 4 * this->kTolerance, what + " scale grad");
        if (centered)
          expectClose(dbeta, edb, 4 * this->kTolerance, what + " bias grad");
      }
}

TYPED_TEST(KernelShapesTest, CrossEntropyAndItsGradient) {
  using T = TypeParam;
  for (const RowShape &shape : kRowShapes)
    for (size_t offset : {0, 1})
      // Every column a class, and a padded vocabulary whose last columns
      // (up to 131 of them) are masked.
      for (int64_t classes :
           {shape.cols, shape.cols - (shape.cols / 4) % 132}) {
        std::string what = "cross_entropy " + describe(shape, offset) +
                           " classes " + std::to_string(classes);
        size_t count = shape.rows * shape.cols;
        std::vector<T> x = makeValues<T>(count, 10, 6.0);
        std::vector<int32_t> targets(shape.rows);
        for (int64_t r = 0; r < shape.rows; ++r)
          targets[r] = static_cast<int32_t>((r * 7919 + 3) % classes);
        std::vector<T> lossGradValues = makeValues<T>(shape.rows, 11);
        DeviceTensor<T> logits(this->context, x, offset),
            loss(this->context, shape.rows, offset),
            lossGrad(this->context, lossGradValues, offset),
            logitsGrad(this->context, count, offset);
        DeviceTensor<int32_t> target(this->context, targets, 0);
        std::vector<T> got = this->runTwice(
            loss,
            [&] {
              return crossEntropy(this->context, this->kDType, DType::I32,
                                  shape.rows, shape.cols, classes, logits.get(),
                                  target.get(), loss.get(), 1, "test");
            },
            what);
        std::vector<T> dx = this->runTwice(
            logitsGrad,
            [&] {
              return crossEntropyGrad(
                  this->context, this->kDType, DType::I32, shape.rows,
                  shape.cols, classes, logits.get(), target.get(),
                  lossGrad.get(), logitsGrad.get(), 1, "test");
            },
            what + " grad");
        std::vector<double> wx = widen(x), wlg = widen(lossGradValues);
        std::vector<double> expected(shape.rows), edx(count, 0.0);
        for (int64_t r = 0; r < shape.rows; ++r) {
          const double *row = &wx[r * shape.cols];
          double largest = *std::max_element(row, row + classes), sum = 0;
          for (int64_t j = 0; j < classes; ++j)
            sum += std::exp(row[j] - largest);
          expected[r] = std::log(sum) + largest - row[targets[r]];
          for (int64_t j = 0; j < classes; ++j)
            edx[r * shape.cols + j] =
                (std::exp(row[j] - largest) / sum - (j == targets[r])) * wlg[r];
        }
        expectClose(got, expected, this->kTolerance, what);
        expectClose(dx, edx, this->kTolerance, what + " grad");
        for (int64_t r = 0; r < shape.rows; ++r)
          for (int64_t j = classes; j < shape.cols; ++j)
            ASSERT_EQ(toDouble(dx[r * shape.cols + j]), 0.0)
                << what << ": masked column " << j;
        int32_t site = -1;
        ASSERT_TRUE(this->context.takeIndexError(&site).ok());
        EXPECT_EQ(site, 0) << what;
      }
}

TYPED_TEST(KernelShapesTest, CrossEntropyReportsTargetsOutsideTheVocabulary) {
  using T = TypeParam;
  const int64_t rows = 2, vocab = 1030;
  std::vector<T> x = makeValues<T>(rows * vocab, 12);
  DeviceTensor<T> logits(this->context, x, 0), loss(this->context, rows, 0),
      lossGrad(this->context, std::vector<T>(rows, fromDouble<T>(1.0)), 0),
      grad(this->context, rows * vocab, 0);
  // A masked class is outside the vocabulary too.
  const int64_t classes = vocab - 6;
  DeviceTensor<int64_t> targets(this->context, std::vector<int64_t>{5, classes},
                                0);
  ASSERT_TRUE(crossEntropy(this->context, this->kDType, DType::I64, rows, vocab,
                           classes, logits.get(), targets.get(), loss.get(), 3,
                           "test")
                  .ok());
  int32_t site = 0;
  ASSERT_TRUE(this->context.takeIndexError(&site).ok());
  EXPECT_EQ(site, 3);
  EXPECT_EQ(toDouble(loss.read()[1]), 0.0);
  ASSERT_TRUE(crossEntropyGrad(this->context, this->kDType, DType::I64, rows,
                               vocab, classes, logits.get(), targets.get(),
                               lossGrad.get(), grad.get(), 4, "test")
                  .ok());
  ASSERT_TRUE(this->context.takeIndexError(&site).ok());
  EXPECT_EQ(site, 4);
  std::vector<T> dx = grad.read();
  for (int64_t j = 0; j < vocab; ++j)
    ASSERT_EQ(toDouble(dx[vocab + j]), 0.0) << j;
  // More classes than columns is refused.
  EXPECT_FALSE(crossEntropy(this->context, this->kDType, DType::I64, rows,
                            vocab, vocab + 1, logits.get(), targets.get(),
                            loss.get(), 3, "test")
                   .ok());
}

TYPED_TEST(KernelShapesTest, ReductionsOverTrailingLeadingAndMiddle) {
  using T = TypeParam;
  struct Case {
    std::vector<int64_t> dims;
    uint32_t mask;
  };
  // Trailing (rows), leading (columns in two passes) and a middle mix, at
  // widths below, at and above a warp's rows.
  const Case cases[] = {{{3, 5}, 0b10},       {{2, 50257}, 0b10},
                        {{4, 771}, 0b10},     {{2, 3, 1030}, 0b110},
                        {{1000, 3}, 0b01},    {{8, 64, 768}, 0b011},
                        {{333, 771}, 0b01},   {{2, 37, 5}, 0b010},
                        {{1, 1}, 0b01},       {{4, 4}, 0b11},
                        {{3, 2048}, 0b10},    {{5, 3072}, 0b01}};
  for (const Case &c : cases)
    for (ReduceKind kind : {ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max})
      for (size_t offset : {0, 1}) {
        Shape shape;
        for (int64_t dim : c.dims)
          shape.dims[shape.rank++] = dim;
        std::string what = "reduce " + std::to_string(int(kind)) + " mask " +
                           std::to_string(c.mask) + " of " +
                           std::to_string(shape.rank) + "-d, first " +
                           std::to_string(c.dims[0]) +
                           (offset ? " unaligned" : "");
        size_t count = 1, kept = 1, reduced = 1;
        for (int i = 0; i < shape.rank; ++i) {
          count *= c.dims[i];
          ((c.mask >> i) & 1 ? reduced : kept) *= c.dims[i];
        }
        std::vector<T> x = makeValues<T>(count, 13);
        DeviceTensor<T> input(this->context, x, offset),
            output(this->context, kept, offset);
        std::vector<T> got = this->runTwice(output, [&] {
          return reduce(this->context, this->kDType, kind, shape, c.mask,
                        input.get(), output.get(), "test");
        }, what);
        std::vector<double> wx = widen(x), expected(kept, 0);
        std::vector<bool> seen(kept, false);
        for (size_t linear = 0; linear < count; ++linear) {
          size_t rest = linear, keptIndex = 0, keptStride = 1;
          for (int i = shape.rank - 1; i >= 0; --i) {
            size_t index = rest % c.dims[i];
            rest /= c.dims[i];
            if (!((c.mask >> i) & 1)) {
              keptIndex += index * keptStride;
              keptStride *= c.dims[i];
            }
          }
          double &e = expected[keptIndex];
          if (kind == ReduceKind::Max)
            e = seen[keptIndex] ? std::max(e, wx[linear]) : wx[linear];
          else
            e += wx[linear];
          seen[keptIndex] = true;
        }
        if (kind == ReduceKind::Mean)
          for (double &e : expected)
            e /= reduced;
        // Sums of many signed terms cancel: hold them to the terms' scale.
        expectClose(got, expected,
                    kind == ReduceKind::Max ? 0.0 : 8 * this->kTolerance,
                    what);
      }
}

TYPED_TEST(KernelShapesTest, EmbeddingAndItsGradient) {
  using T = TypeParam;
  for (int64_t width : {1, 5, 31, 768, 771, 1030, 2048})
    for (size_t offset : {0, 1}) {
      std::string what = "embedding width " + std::to_string(width) +
                         (offset ? " unaligned" : "");
      const int64_t vocab = 37, count = 300;
      std::vector<T> table = makeValues<T>(vocab * width, 14);
      std::vector<int32_t> indices(count);
      for (int64_t i = 0; i < count; ++i) // Repeats, and rows never named.
        indices[i] = static_cast<int32_t>((i * i * 7 + 3) % (vocab - 4));
      DeviceTensor<T> deviceTable(this->context, table, offset),
          output(this->context, count * width, offset);
      DeviceTensor<int32_t> deviceIndices(this->context, indices, 0);
      std::vector<T> got = this->runTwice(output, [&] {
        return embedding(this->context, this->kDType, DType::I32, count, vocab,
                         width, deviceTable.get(), deviceIndices.get(),
                         output.get(), 1, "test");
      }, what);
      for (int64_t i = 0; i < count; ++i)
        ASSERT_TRUE(std::memcmp(&got[i * width], &table[indices[i] * width],
                                width * sizeof(T)) == 0)
            << what << " row " << i;

      std::vector<T> updates = makeValues<T>(count * width, 15);
      DeviceTensor<T> deviceUpdates(this->context, updates, offset),
          grad(this->context, vocab * width, offset);
      std::vector<T> dtable = this->runTwice(grad, [&] {
        return scatterAdd(this->context, this->kDType, DType::I32, count,
                          vocab, width, deviceIndices.get(),
                          deviceUpdates.get(), grad.get(), 1, "test");
      }, what + " grad");
      std::vector<double> expected(vocab * width, 0), wu = widen(updates);
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = 0; j < width; ++j)
          expected[indices[i] * width + j] += wu[i * width + j];
      expectClose(dtable, expected, 8 * this->kTolerance, what + " grad");
      int32_t site = -1;
      ASSERT_TRUE(this->context.takeIndexError(&site).ok());
      EXPECT_EQ(site, 0) << what;
    }
}

TYPED_TEST(KernelShapesTest, EmbeddingGradientReportsBadIndices) {
  using T = TypeParam;
  const int64_t vocab = 4, width = 3;
  std::vector<int64_t> indices = {1, -1, 4, 1};
  std::vector<T> updates = makeValues<T>(4 * width, 16);
  DeviceTensor<int64_t> deviceIndices(this->context, indices, 0);
  DeviceTensor<T> deviceUpdates(this->context, updates, 0),
      grad(this->context, vocab * width, 0);
  ASSERT_TRUE(scatterAdd(this->context, this->kDType, DType::I64, 4, vocab,
                         width, deviceIndices.get(), deviceUpdates.get(),
                         grad.get(), 9, "test")
                  .ok());
  int32_t site = 0;
  ASSERT_TRUE(this->context.takeIndexError(&site).ok());
  EXPECT_EQ(site, 9);
  // Row 1 sums positions 0 and 3; bad indices land nowhere.
  std::vector<T> got = grad.read();
  for (int64_t j = 0; j < width; ++j) {
    double expected = toDouble(updates[j]) + toDouble(updates[3 * width + j]);
    EXPECT_NEAR(toDouble(got[width + j]), expected,
                4 * TypeInfo<T>::kTolerance * (1 + std::fabs(expected)));
    EXPECT_EQ(toDouble(got[j]), 0.0);
    EXPECT_EQ(toDouble(got[2 * width + j]), 0.0);
    EXPECT_EQ(toDouble(got[3 * width + j]), 0.0);
  }
}

TYPED_TEST(KernelShapesTest, AccumulateAddsOrOverwrites) {
  using T = TypeParam;
  for (int64_t count : {1, 7, 8, 1001, 4096})
    for (size_t offset : {0, 1})
      for (bool overwrite : {false, true}) {
        std::string what = "accumulate " + std::to_string(count) +
                           (offset ? " unaligned" : "") +
                           (overwrite ? " overwrite" : "");
        std::vector<T> x = makeValues<T>(count, 17), y = makeValues<T>(count, 18);
        DeviceTensor<T> dx(this->context, x, offset), dy(this->context, y, offset);
        ASSERT_TRUE(accumulate(this->context, this->kDType, count, 0.5,
                               dx.get(), dy.get(), overwrite, "test")
                        .ok());
        std::vector<double> expected(count);
        for (int64_t i = 0; i < count; ++i)
          expected[i] = 0.5 * toDouble(x[i]) + (overwrite ? 0 : toDouble(y[i]));
        expectClose(dy.read(), expected, this->kTolerance, what);
      }
}

/// Data movement is exact, whatever the element size.
TEST(KernelLayoutTest, TransposesAndSlicesMoveEveryElement) {
  Context context;
  ASSERT_TRUE(context.initialize().ok());
  struct Case {
    std::vector<int64_t> dims;
    std::vector<int> perm;
  };
  const Case cases[] = {{{2, 3, 4}, {2, 0, 1}},    {{4, 5, 6, 8}, {0, 2, 1, 3}},
                        {{33, 65}, {1, 0}},        {{2, 7, 3, 64}, {0, 2, 1, 3}},
                        {{1, 1}, {1, 0}},          {{3, 1030}, {1, 0}},
                        {{5}, {0}},                {{4, 7, 2, 64}, {0, 2, 1, 3}},
                        {{3, 2048}, {0, 1}}};
  for (const Case &c : cases)
    for (size_t offset : {0, 1}) {
      Shape shape;
      for (int64_t dim : c.dims)
        shape.dims[shape.rank++] = dim;
      size_t count = 1;
      for (int64_t dim : c.dims)
        count *= dim;
      std::vector<uint16_t> x(count);
      for (size_t i = 0; i < count; ++i)
        x[i] = static_cast<uint16_t>(i * 31 + 7);
      DeviceTensor<uint16_t> input(context, x, offset),
          output(context, count, offset);
      ASSERT_TRUE(transpose(context, 2, shape, c.perm.data(), input.get(),
                            output.get(), "test")
                      .ok());
      std::vector<uint16_t> got = output.read();
      // Output index (in the permuted shape) back to the input's.
      int64_t strides[kMaxRank];
      getRowMajorStridesForTest(shape, strides);
      for (size_t linear = 0; linear < count; ++linear) {
        size_t rest = linear, source = 0;
        for (int i = shape.rank - 1; i >= 0; --i) {
          int64_t size = c.dims[c.perm[i]];
          source += (rest % size) * strides[c.perm[i]];
          rest /= size;
        }
        ASSERT_EQ(got[linear], x[source])
            << "transpose of rank " << shape.rank << " at " << linear;
      }

      // The block [1:, skip:] of a [rows, cols] view, and back into zeros:
      // skip 1 breaks 128-bit alignment, skip 8 keeps it (as q/k/v splits
      // of a fused projection do).
      int64_t cols = c.dims.back(), rows = count / cols;
      for (int64_t skip : {1, 8}) {
        if (rows < 2 || cols <= skip)
          continue;
        int64_t offsets[] = {1, skip};
        Shape outer = makeShape({rows, cols}),
              block = makeShape({rows - 1, cols - skip});
        DeviceTensor<uint16_t> sliced(context, (rows - 1) * (cols - skip),
                                      offset),
            padded(context, count, offset);
        ASSERT_TRUE(extractSlice(context, 2, outer, offsets, block, input.get(),
                                 sliced.get(), "test")
                        .ok());
        ASSERT_TRUE(pad(context, 2, block, offsets, outer, sliced.get(),
                        padded.get(), "test")
                        .ok());
        std::vector<uint16_t> back = padded.read();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < cols; ++j)
            ASSERT_EQ(back[r * cols + j], r && j >= skip ? x[r * cols + j] : 0)
                << r << ", " << j << " skipping " << skip;
      }
    }
}

} // namespace
