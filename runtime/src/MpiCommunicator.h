//===- MpiCommunicator.h - Collectives over MPI -----------------*- C++ -*-===//
//
// Internal to the runtime. The CPU backend's collectives, and the CUDA
// backend's when asked for MPI: Debian's Open MPI is not CUDA-aware, so on
// CUDA every buffer is staged through host memory.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_MPICOMMUNICATOR_H
#define CLEAVE_RUNTIME_SRC_MPICOMMUNICATOR_H

#include "cleave/runtime/Communicator.h"

#include <memory>

namespace cleave::rt {

/// Initializes MPI once per process (MPI_Init, errors returned rather than
/// fatal) and reads the world rank and size. Finalized at exit.
Status initializeMpi(int &rank, int &size);

/// Ends every process of the job (MPI_Abort), or this one when MPI never
/// started.
[[noreturn]] void abortMpiJob(int code);

/// Broadcasts `bytes` of host memory from world rank 0.
Status broadcastFromRootMpi(void *data, size_t bytes);

/// The MPI communicator of `spec`; `stageThroughHost` when buffers are
/// device memory MPI cannot read.
Status createMpiCommunicator(Context &context, const MeshSpec &spec,
                             bool stageThroughHost,
                             std::unique_ptr<Communicator> &communicator);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_MPICOMMUNICATOR_H
