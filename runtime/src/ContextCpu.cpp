//===- ContextCpu.cpp - The CPU backend's context -------------------------===//
//
// On the CPU the "device" is host memory, launches are synchronous calls and
// there is no stream: copies are memcpy and synchronize has nothing to wait
// for.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Context.h"
#include "cleave/runtime/Profile.h"

#include <chrono>

#include <cstdlib>
#include <cstring>
#include <string>

namespace cleave::rt {

constexpr size_t kAlignment = 256;

Context::Context() = default;

Context::~Context() {
  if (gemmCacheDeleter)
    gemmCacheDeleter(gemmCache);
  std::free(arena);
  for (void *buffer : scratch)
    std::free(buffer);
  std::free(indexErrorSlot);
}

const char *Context::getBackendName() { return "cpu"; }

Status Context::initialize() {
  if (indexErrorSlot)
    return Status::success();
  return allocateIndexErrorSlot();
}

Status Context::allocateIndexErrorSlot() {
  void *slot = nullptr;
  CLEAVE_RETURN_IF_ERROR(allocate(sizeof(int32_t), &slot, "index error slot"));
  indexErrorSlot = static_cast<int32_t *>(slot);
  *indexErrorSlot = 0;
  return Status::success();
}

Status Context::allocate(size_t bytes, void **pointer, const char *purpose) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < bytes)
    return Status::error(std::string("cannot allocate ") + purpose +
                         ": size overflows");
  *pointer = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
  if (!*pointer)
    return Status::error(std::string("out of memory allocating ") +
                         std::to_string(bytes) + " bytes for " + purpose);
  noteAllocation(*pointer, bytes);
  return Status::success();
}

void Context::release(void *pointer) {
  noteRelease(pointer);
  std::free(pointer);
}

Status Context::copyToDevice(void *device, const void *host, size_t bytes) {
  if (bytes)
    std::memcpy(device, host, bytes);
  return Status::success();
}

Status Context::copyToHost(void *host, const void *device, size_t bytes) {
  if (bytes)
    std::memcpy(host, device, bytes);
  return Status::success();
}

Status Context::copyOnDevice(void *destination, const void *source,
                             size_t bytes) {
  if (bytes)
    std::memmove(destination, source, bytes);
  return Status::success();
}

Status Context::clear(void *device, size_t bytes) {
  if (bytes)
    std::memset(device, 0, bytes);
  return Status::success();
}

Status Context::synchronize(const char *) { return Status::success(); }

Status Context::checkLaunch(const char *, const char *) {
  return Status::success();
}

Status Context::takeIndexError(int32_t *site) {
  *site = indexErrorSlot ? *indexErrorSlot : 0;
  if (indexErrorSlot)
    *indexErrorSlot = 0;
  return Status::success();
}

namespace {

/// Every CPU call is synchronous: a mark is the host clock's time.
class HostClock final : public ProfileClock {
public:
  Status mark(int &index) override {
    index = static_cast<int>(times.size());
    times.push_back(std::chrono::steady_clock::now());
    return Status::success();
  }
  Status getSeconds(int from, int to, double &seconds) override {
    seconds = std::chrono::duration<double>(times[to] - times[from]).count();
    return Status::success();
  }
  void clear() override { times.clear(); }

private:
  std::vector<std::chrono::steady_clock::time_point> times;
};

} // namespace

std::unique_ptr<ProfileClock> createProfileClock(Context &) {
  return std::make_unique<HostClock>();
}

} // namespace cleave::rt
