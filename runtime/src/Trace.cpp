//===- Trace.cpp - Chrome trace events of a run ---------------------------===//

#include "Trace.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace cleave::rt {

static std::unique_ptr<Trace> &getRecording() {
  static std::unique_ptr<Trace> recording;
  return recording;
}

Trace *Trace::get() { return getRecording().get(); }

void Trace::start(const std::string &directory, int rank, bool ops) {
  auto trace = std::make_unique<Trace>();
  trace->directory = directory;
  trace->rank = rank;
  trace->ops = ops;
  getRecording() = std::move(trace);
}

double Trace::now() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Trace::add(const char *category, std::string name, double start,
                double end) {
  events.push_back({category, std::move(name), start, end});
}

/// `text` as the inside of a JSON string (op names carry file paths).
static std::string escapeJson(const std::string &text) {
  std::string escaped;
  for (char c : text) {
    if (c == '"' || c == '\\')
      escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20)
      escaped += c;
  }
  return escaped;
}

Status Trace::write() const {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  std::string path = directory + "/trace-rank" + std::to_string(rank) + ".json";
  FILE *file = std::fopen(path.c_str(), "w");
  if (!file)
    return Status::error("cannot write the trace '" + path + "'");
  std::fprintf(file, "{\"traceEvents\": [\n");
  std::fprintf(file,
               "  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, "
               "\"args\": {\"name\": \"rank %d\"}}",
               rank, rank);
  // Collectives in flight run beside the compute: a lane of their own.
  for (auto [lane, name] :
       {std::pair(0, "compute"), std::pair(1, "collectives in flight")})
    std::fprintf(file,
                 ",\n  {\"name\": \"thread_name\", \"ph\": \"M\", "
                 "\"pid\": %d, \"tid\": %d, \"args\": {\"name\": \"%s\"}}",
                 rank, lane, name);
  for (const Event &event : events)
    std::fprintf(file,
                 ",\n  {\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", "
                 "\"pid\": %d, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f}",
                 escapeJson(event.name).c_str(), event.category, rank,
                 std::strcmp(event.category, "reduction") == 0 ? 1 : 0,
                 event.start, event.end - event.start);
  std::fprintf(file, "\n], \"displayTimeUnit\": \"ms\"}\n");
  bool ok = std::fclose(file) == 0;
  return ok ? Status::success()
            : Status::error("cannot write the trace '" + path + "'");
}

} // namespace cleave::rt
