//===- ContextShared.cpp - Context methods both backends share ------------===//
//
// Built into each backend library: these use only the backend's allocate()
// and release().
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Context.h"

#include <algorithm>

namespace cleave::rt {

Status Context::reserveArena(size_t bytes, uint8_t **base) {
  if (!arena || arenaBytes < bytes) {
    release(arena);
    arena = nullptr;
    arenaBytes = 0;
    CLEAVE_RETURN_IF_ERROR(allocate(bytes, &arena, "the arena"));
    arenaBytes = bytes;
  }
  *base = static_cast<uint8_t *>(arena);
  return Status::success();
}

Status Context::getScratch(ScratchSlot slot, size_t bytes, void **pointer) {
  int index = static_cast<int>(slot);
  if (scratchBytes[index] < bytes) {
    // On CUDA, release() (cudaFree) first waits for queued work that may
    // still read the old buffer.
    release(scratch[index]);
    scratch[index] = nullptr;
    scratchBytes[index] = 0;
    CLEAVE_RETURN_IF_ERROR(allocate(bytes, &scratch[index], "scratch"));
    scratchBytes[index] = bytes;
  }
  *pointer = scratch[index];
  return Status::success();
}

void Context::noteAllocation(void *pointer, size_t bytes) {
  if (!pointer)
    return;
  allocationSizes[pointer] = bytes;
  allocatedBytes += bytes;
  peakAllocatedBytes = std::max(peakAllocatedBytes, allocatedBytes);
}

void Context::noteRelease(void *pointer) {
  auto found = allocationSizes.find(pointer);
  if (found == allocationSizes.end())
    return;
  allocatedBytes -= found->second;
  allocationSizes.erase(found);
}

} // namespace cleave::rt
