//===- Trace.h - Chrome trace events of a run -------------------*- C++ -*-===//
//
// Internal to the runtime. With CLEAVE_TRACE=DIR a pipeline run records,
// per rank, one event per forward or backward pass and one per wait for a
// peer's activations, and writes them as DIR/trace-rank<R>.json in the
// Chrome trace format (chrome://tracing, ui.perfetto.dev). Times are the
// host's monotonic clock in microseconds, shared by the ranks of a
// machine, so the ranks' traces line up.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_TRACE_H
#define CLEAVE_RUNTIME_SRC_TRACE_H

#include "cleave/runtime/Status.h"

#include <string>
#include <vector>

namespace cleave::rt {

class Trace {
public:
  /// The trace being recorded, or null (the default).
  static Trace *get();
  /// Starts recording for `rank`, to be written into `directory`; with
  /// `ops`, the profiler adds an event per op.
  static void start(const std::string &directory, int rank, bool ops = false);
  bool recordsOps() const { return ops; }

  /// Microseconds on the monotonic clock.
  static double now();
  void add(const char *category, std::string name, double start, double end);
  /// Writes the events recorded so far.
  Status write() const;

private:
  struct Event {
    const char *category;
    std::string name;
    double start, end;
  };
  std::string directory;
  int rank = 0;
  bool ops = false;
  std::vector<Event> events;
};

/// Records the span of its lifetime when a trace is on.
class TraceScope {
public:
  TraceScope(const char *category, std::string name)
      : trace(Trace::get()), category(category), name(std::move(name)),
        start(trace ? Trace::now() : 0) {}
  ~TraceScope() { finish(); }
  TraceScope(const TraceScope &) = delete;
  TraceScope &operator=(const TraceScope &) = delete;

  /// Records the event now rather than at the end of the scope.
  void finish() {
    if (trace)
      trace->add(category, name, start, Trace::now());
    trace = nullptr;
  }

private:
  Trace *trace;
  const char *category;
  std::string name;
  double start;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_TRACE_H
