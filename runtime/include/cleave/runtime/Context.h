//===- Context.h - Device, stream, memory and errors ------------*- C++ -*-===//
//
// A Context owns what one process needs to run generated code on its
// backend: the device and stream (CUDA) or nothing more than host memory
// (CPU), the GEMM library handle, the arena of intermediates, scratch
// buffers for library kernels and the slot kernels use to report an
// out-of-range index. Every call returns a
// Status whose message names the call that failed and what it was doing.
//
// Both backends implement this one class; a program links exactly one of
// libcleave_runtime_cpu and libcleave_runtime_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_CONTEXT_H
#define CLEAVE_RUNTIME_CONTEXT_H

#include "cleave/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace cleave::rt {

struct GemmCall;
class Communicator;
class FiniteCheck;
class Profiler;

/// Hears from running generated code about the pending sums it returns
/// (the training loop's deferred data-parallel reduction: GradientReducer).
class ResultListener {
public:
  virtual ~ResultListener();
  /// Result `index` of the running program is computed, at `data`.
  virtual Status onResultReady(int index, const void *data) = 0;
  /// The running program is about to read its input at `data`: a reduction
  /// that writes it must have finished.
  virtual Status onInputRead(const void *data) = 0;
  /// Between two ops: reductions in flight may progress (MPI makes progress
  /// only inside its calls).
  virtual void progress() = 0;
};

/// Library kernels that keep a scratch buffer between calls. Each has its own,
/// so a kernel can call GEMM without clobbering its own scratch.
enum class ScratchSlot {
  Attention,
  AttentionGrad,
  Norm,
  Reduce,
  Sort,
  Gemm,
  CollectiveSend,
  CollectiveReceive,
  Count
};

class Context {
public:
  Context();
  ~Context();
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;

  /// Selects the device and creates the stream and library handles.
  Status initialize();
  /// "cpu" or "cuda".
  static const char *getBackendName();

  /// Device memory (host memory on the CPU), aligned to 256 bytes.
  Status allocate(size_t bytes, void **pointer, const char *purpose);
  void release(void *pointer);
  Status copyToDevice(void *device, const void *host, size_t bytes);
  Status copyToHost(void *host, const void *device, size_t bytes);
  Status copyOnDevice(void *destination, const void *source, size_t bytes);
  /// Sets `bytes` of device memory to zero.
  Status clear(void *device, size_t bytes);
  /// Waits for all queued work; reports the first asynchronous failure.
  Status synchronize(const char *what);

  /// Reports a failed kernel launch, naming the kernel and its source op.
  Status checkLaunch(const char *kernel, const char *location);

  /// The arena generated code places its intermediates in: at least `bytes`
  /// of device memory, kept (and grown when asked for more) across calls.
  Status reserveArena(size_t bytes, uint8_t **base);

  /// The most device memory allocated through this context at once so far
  /// (the arena, scratch, and every buffer of the program): what the
  /// training log reports as peak_memory. Libraries' own allocations (cuBLAS
  /// workspaces aside, which come from scratch) are not counted.
  size_t getPeakAllocatedBytes() const { return peakAllocatedBytes; }

  /// A scratch buffer of at least `bytes`, reused by later calls.
  Status getScratch(ScratchSlot slot, size_t bytes, void **pointer);
  /// The bytes getScratch(slot, ...) returns without reallocating (which
  /// waits for the device on CUDA).
  size_t getScratchCapacity(ScratchSlot slot) const {
    return scratchBytes[static_cast<int>(slot)];
  }

  /// Device slot where a kernel stores a nonzero site number when it meets an
  /// index outside its table (embedding, cross_entropy targets).
  int32_t *getIndexErrorSlot() const { return indexErrorSlot; }
  /// Reads and clears the slot: 0 when no kernel reported a bad index.
  Status takeIndexError(int32_t *site);

  /// While set, every GEMM on this context is appended to `log` (what the
  /// GEMM-only baseline of a benchmark replays).
  void setGemmLog(std::vector<GemmCall> *log) { gemmLog = log; }
  std::vector<GemmCall> *getGemmLog() const { return gemmLog; }

  /// The per-op profiler generated code reports to (CLEAVE_PROFILE=1), or
  /// null: then the generated code's begin/end calls do nothing.
  void setProfiler(Profiler *value) { profiler = value; }
  Profiler *getProfiler() const { return profiler; }

  /// Checks each op's results for NaN and infinity (CLEAVE_CHECK_FINITE=1),
  /// or null.
  void setFiniteCheck(FiniteCheck *value) { finiteCheck = value; }
  FiniteCheck *getFiniteCheck() const { return finiteCheck; }

  /// Who completes the pending sums of the running program; null when no
  /// training loop does.
  void setResultListener(ResultListener *value) { resultListener = value; }
  ResultListener *getResultListener() const { return resultListener; }

  /// The collectives of a partitioned program; null for a single process.
  void setCommunicator(Communicator *value) { communicator = value; }
  Communicator *getCommunicator() const { return communicator; }

  /// Whether f32 GEMMs may use TF32 tensor cores (CUDA only; off unless
  /// CLEAVE_TF32=1 is set when the context starts): about 8x the f32 rate,
  /// with products rounded to a 10-bit mantissa, so f32 is no longer exact.
  bool getGemmAllowsTf32() const { return gemmAllowsTf32; }
  void setGemmAllowsTf32(bool value) { gemmAllowsTf32 = value; }

  /// The GEMM backend's per-shape plans (descriptors and the algorithm the
  /// library chose), kept for the context's life; the backend owns the
  /// type and supplies its deleter.
  void *getGemmCache() const { return gemmCache; }
  void setGemmCache(void *cache, void (*deleter)(void *)) {
    gemmCache = cache;
    gemmCacheDeleter = deleter;
  }

  /// cudaStream_t on CUDA, null on the CPU.
  void *getStream() const { return stream; }
  /// cublasLtHandle_t on CUDA, null on the CPU.
  void *getBlasHandle() const { return blasHandle; }

private:
  /// Allocates and clears the index error slot, the last step of initialize().
  Status allocateIndexErrorSlot();
  /// Keep count of live device memory for getPeakAllocatedBytes().
  void noteAllocation(void *pointer, size_t bytes);
  void noteRelease(void *pointer);

  void *stream = nullptr;
  void *blasHandle = nullptr;
  int32_t *indexErrorSlot = nullptr;
  std::vector<GemmCall> *gemmLog = nullptr;
  bool gemmAllowsTf32 = false;
  void *gemmCache = nullptr;
  void (*gemmCacheDeleter)(void *) = nullptr;
  Communicator *communicator = nullptr;
  Profiler *profiler = nullptr;
  FiniteCheck *finiteCheck = nullptr;
  ResultListener *resultListener = nullptr;
  std::unordered_map<void *, size_t> allocationSizes;
  size_t allocatedBytes = 0, peakAllocatedBytes = 0;
  void *arena = nullptr;
  size_t arenaBytes = 0;
  void *scratch[static_cast<int>(ScratchSlot::Count)] = {};
  size_t scratchBytes[static_cast<int>(ScratchSlot::Count)] = {};
};

/// Device memory released when it goes out of scope.
class DeviceBuffer {
public:
  explicit DeviceBuffer(Context &context) : context(context) {}
  ~DeviceBuffer() { context.release(pointer); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  Status allocate(size_t bytes, const char *purpose) {
    context.release(pointer);
    pointer = nullptr;
    return context.allocate(bytes, &pointer, purpose);
  }
  void *get() const { return pointer; }

private:
  Context &context;
  void *pointer = nullptr;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_CONTEXT_H
