//===- ProgramSupport.h - What the runner and trainer share -----*- C++ -*-===//
//
// Internal to the runtime: tensor sizes of program specs, scalar results,
// and the shape of a generated program's main.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_PROGRAMSUPPORT_H
#define CLEAVE_RUNTIME_SRC_PROGRAMSUPPORT_H

#include "cleave/runtime/Communicator.h"
#include "cleave/runtime/Portability.h"
#include "cleave/runtime/Profile.h"
#include "cleave/runtime/Program.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace cleave::rt {

inline std::vector<int64_t> getDims(const Shape &shape) {
  return std::vector<int64_t>(shape.dims, shape.dims + shape.rank);
}

inline uint64_t getByteSize(const TensorSpec &spec) {
  return *getNumElements(getDims(spec.shape)) * getDTypeSize(spec.dtype);
}

/// A float scalar stored as `dtype` at `bytes`, as a double (NaN for other
/// types).
inline double readScalar(DType dtype, const uint8_t *bytes) {
  switch (dtype) {
  case DType::F64: {
    double value;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  case DType::F32: {
    float value;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  case DType::BF16: {
    ::cleave::bf16 value;
    std::memcpy(&value, bytes, sizeof(value));
    return ::cleave::toCompute(value);
  }
  case DType::F16: {
    ::cleave::f16 value;
    std::memcpy(&value, bytes, sizeof(value));
    return ::cleave::toCompute(value);
  }
  default:
    return std::nan("");
  }
}

/// Runs `program` once, waits for it (and its collectives) and reports an
/// index a kernel found out of range, by the op's source location.
inline Status runProgram(Context &context, const Program &program,
                         const std::vector<void *> &arguments,
                         std::vector<void *> &results, uint8_t *arena) {
  results.assign(program.numResults, nullptr);
  bool checkFinite = false;
  CLEAVE_RETURN_IF_ERROR(FiniteCheck::isRequested(checkFinite));
  std::optional<FiniteCheck> check;
  if (checkFinite)
    check.emplace(context, program, arena);
  context.setFiniteCheck(check ? &*check : nullptr);
  Status ran = program.entry(context, arguments.data(), results.data(), arena);
  context.setFiniteCheck(nullptr);
  CLEAVE_RETURN_IF_ERROR(ran);
  if (Communicator *communicator = context.getCommunicator())
    CLEAVE_RETURN_IF_ERROR(communicator->drain(program.name));
  CLEAVE_RETURN_IF_ERROR(context.synchronize(program.name));
  if (check && !check->getFailure().ok())
    return check->getFailure();
  if (Profiler *profiler = context.getProfiler())
    CLEAVE_RETURN_IF_ERROR(profiler->collect(program));
  int32_t site = 0;
  CLEAVE_RETURN_IF_ERROR(context.takeIndexError(&site));
  if (site > 0 && site <= program.numIndexSites)
    return Status::error(std::string(program.indexSites[site - 1]) +
                         ": index out of range");
  if (site != 0)
    return Status::error("a kernel reported an index out of range");
  return Status::success();
}

/// Uninstalls a profiler from the context when the run that created it
/// ends, whichever way.
class ProfilerInstallation {
public:
  ProfilerInstallation(Context &context, Profiler *profiler)
      : context(context) {
    context.setProfiler(profiler);
  }
  ~ProfilerInstallation() { context.setProfiler(nullptr); }
  ProfilerInstallation(const ProfilerInstallation &) = delete;
  ProfilerInstallation &operator=(const ProfilerInstallation &) = delete;

private:
  Context &context;
};

/// What the usage of every generated program ends with.
constexpr const char *kMeshUsage =
    "A program built with --mesh runs as one process per mesh device, started\n"
    "by mpirun -np N (or srun -n N); every rank takes the same options.\n"
    "  CLEAVE_COLLECTIVE_TIMEOUT=S  end the job when a collective waits longer\n"
    "                               than S seconds (300): a dead or stuck peer\n"
    "  CLEAVE_COLLECTIVES=nccl|mpi  on CUDA: NCCL (default), or MPI staged\n"
    "                               through host memory\n"
    "  CLEAVE_TRACE=DIR             a pipeline writes each rank's passes and\n"
    "                               transfers as a Chrome trace,\n"
    "                               DIR/trace-rank<R>.json\n"
    "  CLEAVE_PROFILE=1             time every op; print a table per op\n"
    "                               (rank 0) after the run\n"
    "  CLEAVE_PROFILE_CLUSTER=FILE  compare those times with the peaks of\n"
    "                               this cluster file's device\n"
    "  CLEAVE_TF32=1                on CUDA: f32 GEMMs on TF32 tensor cores\n";

/// The end of every generated main: a failed parse prints its error (none
/// for --help) and the usage; then `run` runs and its error is printed.
/// Returns the exit status.
inline int finishMain(const char *self, const char *usage, const Status &parsed,
                      const std::function<Status()> &run) {
  if (!parsed.ok()) {
    if (!parsed.message().empty())
      std::fprintf(stderr, "%s: error: %s\n", self, parsed.message().c_str());
    std::fprintf(stderr, usage, self);
    std::fprintf(stderr, "%s", kMeshUsage);
    return parsed.message().empty() ? 0 : 1;
  }
  Status status = run();
  if (!status.ok()) {
    std::fprintf(stderr, "%s: error: %s\n", self, status.message().c_str());
    return 1;
  }
  return 0;
}

/// Under cleavec (CLEAVE_STOP_WITH_LAUNCHER=1), ends this process once the
/// process that launched it is gone: a killed mpirun must not leave its
/// ranks training. A watcher thread polls the parent, which is robust
/// where a parent-death signal fires on the exit of the parent's thread.
inline void stopWithLauncher() {
  const char *wanted = std::getenv("CLEAVE_STOP_WITH_LAUNCHER");
  if (!wanted || std::string(wanted) != "1")
    return;
  pid_t launcher = ::getppid();
  std::thread([launcher] {
    while (::getppid() == launcher)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::fprintf(stderr,
                 "cleave: the launcher (pid %d) of this process is gone; "
                 "stopping\n",
                 static_cast<int>(launcher));
    std::_Exit(1);
  }).detach();
}

/// After a failure on one rank of several, prints it and ends the whole job:
/// the peers may be waiting for this rank in a collective.
inline void abortPeersOnError(const char *self, const Status &status,
                              Communicator *communicator) {
  if (status.ok() || !communicator || communicator->getSize() <= 1)
    return;
  std::fprintf(stderr, "%s: error: rank %d: %s\n", self,
               communicator->getRank(), status.message().c_str());
  std::fflush(stderr);
  communicator->abortJob(1);
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_PROGRAMSUPPORT_H
