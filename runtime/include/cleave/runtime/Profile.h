//===- Profile.h - Time per op of generated programs ------------*- C++ -*-===//
//
// With CLEAVE_PROFILE=1 a generated program times every op it runs (a
// kernel launch, a library call, a collective) and prints, after the run,
// one row per op: its name, source location and layer, how often it ran,
// its total and mean time, its share of all ops' time, and the bytes and
// FLOPs the compiler recorded for it (OpInfo) as achieved GB/s and TFLOP/s,
// against the device's peaks when CLEAVE_PROFILE_CLUSTER names a cluster
// file. The first step (or run) warms up and is left out when more follow.
// Times come from CUDA events on the stream on CUDA and from the host
// clock on the CPU (where every call is synchronous). With profiling off
// the generated code's begin/end calls test one pointer and record nothing.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_PROFILE_H
#define CLEAVE_RUNTIME_PROFILE_H

#include "cleave/runtime/Context.h"
#include "cleave/runtime/DType.h"

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cleave::rt {

struct Program;

/// One result of an op, in the program's arena.
struct OpResult {
  uint64_t offset;
  uint64_t count;
  DType dtype;
};

/// What the compiler records about one op of a program.
struct OpInfo {
  /// The op, e.g. "cleave.layer_norm" or "cleave.fused".
  const char *name;
  /// "file:line:column", or "" when the op has no location.
  const char *location;
  /// The op's layer tag ("0", "embed", "head"), or "".
  const char *layer;
  /// The element type of its first result ("F32", "BF16", ...).
  const char *dtype;
  double flops;
  /// Bytes read plus bytes written.
  double bytes;
  /// Its results that lie in the arena.
  const OpResult *results = nullptr;
  int numResults = 0;
};

/// Marks on the device's timeline; each backend supplies one.
class ProfileClock {
public:
  virtual ~ProfileClock() = default;
  /// Records a mark when the device reaches this point; returns its number.
  virtual Status mark(int &index) = 0;
  /// Seconds between two marks, once the device has passed both.
  virtual Status getSeconds(int from, int to, double &seconds) = 0;
  /// Forgets every mark (their storage is reused).
  virtual void clear() = 0;
};
std::unique_ptr<ProfileClock> createProfileClock(Context &context);

/// The peaks a profile is compared against (0: unknown).
struct DevicePeaks {
  std::string device;
  double memoryBandwidth = 0;
  /// Peak FLOP/s by element type name ("F32", "BF16", "F16").
  std::map<std::string, double> flops;
};

/// Reads the device section of a cluster file (share/cleave/clusters).
Status readDevicePeaks(const std::string &clusterFile, DevicePeaks &peaks);

class Profiler {
public:
  explicit Profiler(std::unique_ptr<ProfileClock> clock)
      : clock(std::move(clock)) {}

  /// A profiler when CLEAVE_PROFILE=1 or CLEAVE_TRACE is set (installed on
  /// `context`), null otherwise; an error for a CLEAVE_PROFILE other than 0
  /// or 1 or an unreadable CLEAVE_PROFILE_CLUSTER.
  static Status createFromEnvironment(Context &context,
                                      std::unique_ptr<Profiler> &profiler);

  void setPeaks(DevicePeaks value) { peaks = std::move(value); }

  /// Whether the run ends by printing the table (CLEAVE_PROFILE=1), not
  /// only timing ops for a trace.
  bool printsTable = true;

  void begin(int op);
  void end(int op);
  /// Adds the times of the ops `program` ran since the last collect; call
  /// once the device has finished them. With a trace recording
  /// (CLEAVE_TRACE), each op also becomes a trace event.
  Status collect(const Program &program);
  /// The table: one row per op of every program that ran, slowest first.
  void print(std::FILE *out) const;
  /// Forgets what was collected: the first step warms caches, pools and
  /// libraries up and would skew the table.
  void reset() { stats.clear(); }

  /// Statistics of one op (for tests and the table).
  struct OpStats {
    const Program *program = nullptr;
    int op = 0;
    int64_t calls = 0;
    double seconds = 0;
  };
  std::vector<OpStats> getStats() const;

private:
  std::unique_ptr<ProfileClock> clock;
  DevicePeaks peaks;
  /// Begun and ended ops not yet collected: (op, begin mark, end mark).
  struct Span {
    int op, from, to;
  };
  std::vector<Span> spans;
  int openOp = -1, openMark = -1;
  /// The first mark since the last collect, and the host clock then (in
  /// microseconds): where a run's ops start on a trace's timeline.
  int firstMark = -1;
  double firstMarkMicros = 0;
  Status failure = Status::success();
  std::map<std::pair<const Program *, int>, OpStats> stats;
};

/// Lets the collectives the running program started (cleave.wait) make
/// progress: MPI moves nonblocking collectives only inside its calls.
void progressStartedCollectives(Context &context);

/// CLEAVE_CHECK_FINITE=1: after each op of a running program, its float
/// results are read back and scanned, and the first op whose result holds
/// NaN or infinity is reported by its source location. A debugging aid: it
/// synchronizes the device after every op.
class FiniteCheck {
public:
  FiniteCheck(Context &context, const Program &program, uint8_t *arena)
      : context(context), program(program), arena(arena) {}
  /// Whether CLEAVE_CHECK_FINITE asks for the check; an error for a value
  /// other than 0 or 1.
  static Status isRequested(bool &requested);

  void afterOp(int op);
  /// The first non-finite result found, or success.
  const Status &getFailure() const { return failure; }

private:
  Context &context;
  const Program &program;
  uint8_t *arena;
  Status failure = Status::success();
  std::vector<uint8_t> host;
};

/// What generated code calls around each op.
inline void beginOp(Context &context, int op) {
  if (Profiler *profiler = context.getProfiler())
    profiler->begin(op);
}
inline void endOp(Context &context, int op) {
  if (Profiler *profiler = context.getProfiler())
    profiler->end(op);
  if (FiniteCheck *check = context.getFiniteCheck())
    check->afterOp(op);
  if (ResultListener *listener = context.getResultListener())
    listener->progress();
  progressStartedCollectives(context);
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_PROFILE_H
