//===- ContextCuda.cu - The CUDA backend's context ------------------------===//
//
// One device, one stream, one cuBLASLt handle. Errors name the CUDA call and
// what it was doing; asynchronous kernel faults surface at the next
// synchronize, named by its caller.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Context.h"
#include "cleave/runtime/Portability.h"
#include "cleave/runtime/Profile.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

namespace cleave::rt {
namespace {

Status check(cudaError_t error, const std::string &what) {
  if (error == cudaSuccess)
    return Status::success();
  return Status::error(what + ": " + cudaGetErrorName(error) + " (" +
                       cudaGetErrorString(error) + ")");
}

cudaStream_t asStream(void *stream) { return static_cast<cudaStream_t>(stream); }

} // namespace

Context::Context() = default;

Context::~Context() {
  if (gemmCacheDeleter)
    gemmCacheDeleter(gemmCache);
  cudaFree(arena);
  for (void *buffer : scratch)
    cudaFree(buffer);
  cudaFree(indexErrorSlot);
  if (blasHandle)
    cublasLtDestroy(static_cast<cublasLtHandle_t>(blasHandle));
  if (stream)
    cudaStreamDestroy(asStream(stream));
}

const char *Context::getBackendName() { return "cuda"; }

Status Context::initialize() {
  if (indexErrorSlot)
    return Status::success();
  // One process per GPU: the launcher's local rank picks it.
  int device = 0, count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0)
    device = getLocalRank() % count;
  if (const char *chosen = std::getenv("CLEAVE_DEVICE")) {
    char *end = nullptr;
    long value = std::strtol(chosen, &end, 10);
    if (!*chosen || *end || value < 0 || value > 1024)
      return Status::error(std::string("CLEAVE_DEVICE must be a device "
                                       "number, got '") +
                           chosen + "'");
    device = static_cast<int>(value);
  }
  CLEAVE_RETURN_IF_ERROR(check(cudaSetDevice(device),
                               "cudaSetDevice(" + std::to_string(device) + ")"));
  // Launches ask for the blocks the device keeps resident, no more.
  int processors = 0, threadsPerProcessor = 0;
  if (cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount,
                             device) == cudaSuccess &&
      cudaDeviceGetAttribute(&threadsPerProcessor,
                             cudaDevAttrMaxThreadsPerMultiProcessor,
                             device) == cudaSuccess &&
      processors > 0 && threadsPerProcessor >= kThreadsPerBlock)
    getGridLimit() = static_cast<int64_t>(processors) *
                     (threadsPerProcessor / kThreadsPerBlock);
  if (!stream) {
    cudaStream_t created;
    CLEAVE_RETURN_IF_ERROR(
        check(cudaStreamCreate(&created), "cudaStreamCreate"));
    stream = created;
  }
  if (const char *tf32 = std::getenv("CLEAVE_TF32")) {
    std::string value = tf32;
    if (value != "0" && value != "1")
      return Status::error("CLEAVE_TF32 must be 0 or 1, got '" + value + "'");
    gemmAllowsTf32 = value == "1";
  }
  if (blasHandle)
    return allocateIndexErrorSlot();
  cublasLtHandle_t handle;
  cublasStatus_t status = cublasLtCreate(&handle);
  if (status != CUBLAS_STATUS_SUCCESS)
    return Status::error(std::string("cublasLtCreate: ") +
                         cublasLtGetStatusString(status));
  blasHandle = handle;
  return allocateIndexErrorSlot();
}

Status Context::allocateIndexErrorSlot() {
  void *slot = nullptr;
  CLEAVE_RETURN_IF_ERROR(allocate(sizeof(int32_t), &slot, "index error slot"));
  Status cleared = check(cudaMemset(slot, 0, sizeof(int32_t)),
                         "cudaMemset(index error slot)");
  if (!cleared.ok()) {
    release(slot);
    return cleared;
  }
  // Set last: initialize() is done once this is non-null.
  indexErrorSlot = static_cast<int32_t *>(slot);
  return Status::success();
}

Status Context::allocate(size_t bytes, void **pointer, const char *purpose) {
  *pointer = nullptr;
  // cudaMalloc aligns to at least 256 bytes.
  CLEAVE_RETURN_IF_ERROR(check(cudaMalloc(pointer, bytes ? bytes : 1),
                               std::string("cudaMalloc(") +
                                   std::to_string(bytes) + " bytes for " +
                                   purpose + ")"));
  noteAllocation(*pointer, bytes);
  return Status::success();
}

void Context::release(void *pointer) {
  noteRelease(pointer);
  if (pointer)
    cudaFree(pointer);
}

Status Context::copyToDevice(void *device, const void *host, size_t bytes) {
  CLEAVE_RETURN_IF_ERROR(check(cudaMemcpyAsync(device, host, bytes,
                                               cudaMemcpyHostToDevice,
                                               asStream(stream)),
                               "cudaMemcpyAsync(host to device)"));
  return synchronize("copy to device");
}

Status Context::copyToHost(void *host, const void *device, size_t bytes) {
  CLEAVE_RETURN_IF_ERROR(check(cudaMemcpyAsync(host, device, bytes,
                                               cudaMemcpyDeviceToHost,
                                               asStream(stream)),
                               "cudaMemcpyAsync(device to host)"));
  return synchronize("copy to host");
}

Status Context::copyOnDevice(void *destination, const void *source,
                             size_t bytes) {
  return check(cudaMemcpyAsync(destination, source, bytes,
                               cudaMemcpyDeviceToDevice, asStream(stream)),
               "cudaMemcpyAsync(device to device)");
}

Status Context::clear(void *device, size_t bytes) {
  return check(cudaMemsetAsync(device, 0, bytes, asStream(stream)),
               "cudaMemsetAsync");
}

Status Context::synchronize(const char *what) {
  return check(cudaStreamSynchronize(asStream(stream)),
               std::string("cudaStreamSynchronize after ") + what);
}

Status Context::checkLaunch(const char *kernel, const char *location) {
  return check(cudaGetLastError(), std::string("launching ") + kernel +
                                       " at " + location);
}

Status Context::takeIndexError(int32_t *site) {
  *site = 0;
  CLEAVE_RETURN_IF_ERROR(copyToHost(site, indexErrorSlot, sizeof(int32_t)));
  if (*site == 0)
    return Status::success();
  return check(cudaMemsetAsync(indexErrorSlot, 0, sizeof(int32_t),
                               asStream(stream)),
               "cudaMemsetAsync(index error slot)");
}

namespace {

/// Marks are events recorded on the context's stream, pooled across steps.
class EventClock final : public ProfileClock {
public:
  explicit EventClock(Context &context) : context(context) {}
  ~EventClock() override {
    for (cudaEvent_t event : events)
      cudaEventDestroy(event);
  }
  Status mark(int &index) override {
    if (used == events.size()) {
      cudaEvent_t event;
      CLEAVE_RETURN_IF_ERROR(
          check(cudaEventCreate(&event), "cudaEventCreate (profiler)"));
      events.push_back(event);
    }
    index = static_cast<int>(used++);
    return check(cudaEventRecord(events[index], asStream(context.getStream())),
                 "cudaEventRecord (profiler)");
  }
  Status getSeconds(int from, int to, double &seconds) override {
    float milliseconds = 0;
    CLEAVE_RETURN_IF_ERROR(
        check(cudaEventElapsedTime(&milliseconds, events[from], events[to]),
              "cudaEventElapsedTime (profiler)"));
    seconds = milliseconds * 1e-3;
    return Status::success();
  }
  void clear() override { used = 0; }

private:
  Context &context;
  std::vector<cudaEvent_t> events;
  size_t used = 0;
};

} // namespace

std::unique_ptr<ProfileClock> createProfileClock(Context &context) {
  return std::make_unique<EventClock>(context);
}

} // namespace cleave::rt
