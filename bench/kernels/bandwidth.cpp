// The memory-bound kernels of the runtime at large shapes: for each, the
// time per call and the bandwidth it achieves, counting the bytes the ideal
// kernel moves (every input read once, every output written once), next to
// a device-to-device copy measured in the same run. A kernel at 100% moves
// its bytes as fast as a copy does.
//
//   kernel-bandwidth [--quick] [--dtype f32|bf16]
//
// Written against the runtime's host API only, so it builds against either
// backend: on a GPU (bench/gpu/run.sh) it measures the CUDA kernels; on the
// CPU it measures the OpenMP ones (--quick shrinks every shape, for a smoke
// test). Times are the median of repeated calls after a warm-up.

#include "cleave/runtime/Context.h"
#include "cleave/runtime/Kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace cleave::rt;

namespace {

void check(const Status &status, const char *what) {
  if (status.ok())
    return;
  std::fprintf(stderr, "kernel-bandwidth: %s: %s\n", what,
               status.message().c_str());
  std::exit(1);
}

/// Device memory filled with small values of `dtype` (a fixed pattern, so
/// softmax and cross-entropy see ordinary magnitudes), or with indices
/// below `indexLimit` for i32.
class Buffer {
public:
  Buffer(Context &context, DType dtype, size_t count, uint32_t indexLimit = 1)
      : context(context), bytes(count * getDTypeSize(dtype)) {
    check(context.allocate(bytes, &pointer, "a benchmark buffer"), "allocate");
    std::vector<uint8_t> host(bytes);
    size_t elementBytes = getDTypeSize(dtype);
    for (size_t i = 0; i < count; ++i) {
      float value = 0.01f * static_cast<float>(static_cast<int>((i * 7919) % 201) - 100);
      if (dtype == DType::F32) {
        std::memcpy(&host[i * 4], &value, 4);
      } else if (dtype == DType::BF16) {
        uint32_t bits;
        std::memcpy(&bits, &value, 4);
        uint16_t half = static_cast<uint16_t>(bits >> 16);
        std::memcpy(&host[i * 2], &half, 2);
      } else if (dtype == DType::I32) {
        int32_t index = static_cast<int32_t>((i * 2654435761u) % indexLimit);
        std::memcpy(&host[i * 4], &index, 4);
      } else {
        std::memset(&host[i * elementBytes], 0, elementBytes);
      }
    }
    check(context.copyToDevice(pointer, host.data(), bytes), "copy in");
  }
  ~Buffer() { context.release(pointer); }
  void *get() const { return pointer; }

private:
  Context &context;
  size_t bytes;
  void *pointer = nullptr;
};

/// The median seconds of one call, after two warm-up calls.
double timeCalls(Context &context, const std::function<Status()> &call,
                 int repeats) {
  for (int i = 0; i < 2; ++i)
    check(call(), "warm-up");
  check(context.synchronize("warm-up"), "synchronize");
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    check(call(), "call");
    check(context.synchronize("a timed call"), "synchronize");
    times.push_back(std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

} // namespace

int main(int argc, char **argv) {
  bool quick = false;
  DType dtype = DType::F32;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--quick") {
      quick = true;
    } else if (flag == "--dtype" && i + 1 < argc) {
      std::string name = argv[++i];
      if (name != "f32" && name != "bf16") {
        std::fprintf(stderr, "kernel-bandwidth: --dtype is f32 or bf16\n");
        return 1;
      }
      dtype = name == "f32" ? DType::F32 : DType::BF16;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--dtype f32|bf16]\n", argv[0]);
      return flag == "--help" ? 0 : 1;
    }
  }
  Context context;
  check(context.initialize(), "initialize");
  size_t element = getDTypeSize(dtype);
  // GPT-2 small at batch 8 x 1024 (rows of 768, 3,072 and 50,257 columns;
  // 12 heads of 1,024 x 1,024 scores); --quick divides the rows.
  int64_t tokens = quick ? 64 : 8192, hidden = 768, ffn = 3072,
          vocab = quick ? 1031 : 50257, heads = 12, seq = quick ? 64 : 1024;
  int64_t scoreRows = (quick ? 1 : 8) * heads * seq;
  int repeats = quick ? 3 : 20;

  // The copy every kernel is measured against: read and write `bytes`.
  size_t copyBytes = static_cast<size_t>(tokens) * ffn * element * 4;
  Buffer copyFrom(context, dtype, copyBytes / element),
      copyTo(context, dtype, copyBytes / element);
  double copySeconds = timeCalls(context, [&] {
    return context.copyOnDevice(copyTo.get(), copyFrom.get(), copyBytes);
  }, repeats);
  double copyRate = 2.0 * copyBytes / copySeconds;
  std::printf("backend %s, %s, device copy of %.0f MiB: %.1f GB/s (read + "
              "write)\n",
              Context::getBackendName(), dtype == DType::F32 ? "f32" : "bf16",
              copyBytes / 1048576.0, copyRate / 1e9);
  std::printf("%-26s %-18s %10s %10s %8s\n", "kernel", "shape", "time us",
              "GB/s", "of copy");

  auto report = [&](const char *name, const std::string &shape, double bytes,
                    const std::function<Status()> &call) {
    double seconds = timeCalls(context, call, repeats);
    double rate = bytes / seconds;
    std::printf("%-26s %-18s %10.1f %10.1f %7.0f%%\n", name, shape.c_str(),
                seconds * 1e6, rate / 1e9, 100.0 * rate / copyRate);
    std::fflush(stdout);
  };
  auto shape2 = [](int64_t a, int64_t b) {
    return std::to_string(a) + "x" + std::to_string(b);
  };

  {
    Buffer x(context, dtype, tokens * hidden), y(context, dtype, tokens * hidden),
        dy(context, dtype, tokens * hidden), dx(context, dtype, tokens * hidden),
        scale(context, dtype, hidden), bias(context, dtype, hidden),
        dscale(context, dtype, hidden), dbias(context, dtype, hidden);
    double tensor = static_cast<double>(tokens) * hidden * element;
    report("layer_norm", shape2(tokens, hidden), 2 * tensor, [&] {
      return layerNorm(context, dtype, tokens, hidden, x.get(), scale.get(),
                       bias.get(), 1e-5, y.get(), "bench");
    });
    report("layer_norm_grad", shape2(tokens, hidden), 3 * tensor, [&] {
      return layerNormGrad(context, dtype, tokens, hidden, x.get(), scale.get(),
                           dy.get(), 1e-5, dx.get(), dscale.get(), dbias.get(),
                           "bench");
    });
    report("rms_norm", shape2(tokens, hidden), 2 * tensor, [&] {
      return rmsNorm(context, dtype, tokens, hidden, x.get(), scale.get(), 1e-5,
                     y.get(), "bench");
    });
    report("rms_norm_grad", shape2(tokens, hidden), 3 * tensor, [&] {
      return rmsNormGrad(context, dtype, tokens, hidden, x.get(), scale.get(),
                         dy.get(), 1e-5, dx.get(), dscale.get(), "bench");
    });
    report("accumulate", shape2(tokens, hidden), 3 * tensor, [&] {
      return accumulate(context, dtype, tokens * hidden, 0.5, x.get(), y.get(),
                        false, "bench");
    });
    Shape batched;
    batched.rank = 4;
    int64_t dims[] = {tokens / seq, seq, heads, hidden / heads};
    std::copy(dims, dims + 4, batched.dims);
    int perm[] = {0, 2, 1, 3};
    report("transpose (heads)", "[b,s,h,d]->[b,h,s,d]", 2 * tensor, [&] {
      return transpose(context, element, batched, perm, x.get(), y.get(),
                       "bench");
    });
  }
  {
    Buffer x(context, dtype, tokens * ffn), bias(context, dtype, ffn),
        row(context, dtype, tokens);
    double tensor = static_cast<double>(tokens) * ffn * element;
    Shape shape;
    shape.rank = 2;
    shape.dims[0] = tokens;
    shape.dims[1] = ffn;
    report("reduce sum (bias grad)", shape2(tokens, ffn), tensor, [&] {
      return reduce(context, dtype, ReduceKind::Sum, shape, 0b01, x.get(),
                    bias.get(), "bench");
    });
    report("reduce sum (rows)", shape2(tokens, ffn), tensor, [&] {
      return reduce(context, dtype, ReduceKind::Sum, shape, 0b10, x.get(),
                    row.get(), "bench");
    });
  }
  {
    Buffer scores(context, dtype, scoreRows * seq),
        probabilities(context, dtype, scoreRows * seq),
        grad(context, dtype, scoreRows * seq);
    double tensor = static_cast<double>(scoreRows) * seq * element;
    report("softmax", shape2(scoreRows, seq), 2 * tensor, [&] {
      return softmax(context, dtype, scoreRows, seq, scores.get(),
                     probabilities.get(), "bench");
    });
    report("softmax_grad", shape2(scoreRows, seq), 3 * tensor, [&] {
      return softmaxGrad(context, dtype, scoreRows, seq, probabilities.get(),
                         scores.get(), grad.get(), "bench");
    });
  }
  {
    Buffer logits(context, dtype, tokens * vocab), grad(context, dtype, tokens * vocab),
        targets(context, DType::I32, tokens, vocab), loss(context, dtype, tokens),
        lossGrad(context, dtype, tokens);
    double tensor = static_cast<double>(tokens) * vocab * element;
    report("cross_entropy", shape2(tokens, vocab), tensor, [&] {
      return crossEntropy(context, dtype, DType::I32, tokens, vocab, vocab,
                          logits.get(), targets.get(), loss.get(), 1, "bench");
    });
    report("cross_entropy_grad", shape2(tokens, vocab), 2 * tensor, [&] {
      return crossEntropyGrad(context, dtype, DType::I32, tokens, vocab, vocab,
                              logits.get(), targets.get(), lossGrad.get(),
                              grad.get(), 1, "bench");
    });
  }
  {
    Buffer table(context, dtype, vocab * hidden), out(context, dtype, tokens * hidden),
        indices(context, DType::I32, tokens, vocab), tableGrad(context, dtype, vocab * hidden);
    double rows = static_cast<double>(tokens) * hidden * element;
    report("embedding", shape2(tokens, hidden), 2 * rows, [&] {
      return embedding(context, dtype, DType::I32, tokens, vocab, hidden,
                       table.get(), indices.get(), out.get(), 1, "bench");
    });
    // The gradient writes the whole table and reads every update once.
    report("embedding grad", shape2(vocab, hidden),
           rows + static_cast<double>(vocab) * hidden * element, [&] {
      return scatterAdd(context, dtype, DType::I32, tokens, vocab, hidden,
                        indices.get(), out.get(), tableGrad.get(), 1, "bench");
    });
  }
  int32_t site = 0;
  check(context.takeIndexError(&site), "index check");
  if (site != 0) {
    std::fprintf(stderr, "kernel-bandwidth: a kernel reported a bad index\n");
    return 1;
  }
  return 0;
}
