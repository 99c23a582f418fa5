//===- CommandLine.h - The generated programs' flags ------------*- C++ -*-===//
//
// Internal to the runtime: one walk over a generated program's command line
// for the runner and the training loop alike (`--flag value` pairs and a
// few switches), and the readers of their values.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SRC_COMMANDLINE_H
#define CLEAVE_RUNTIME_SRC_COMMANDLINE_H

#include "cleave/runtime/Status.h"

#include "Support.h"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

namespace cleave::rt {

/// Calls `visit(flag, value)` for each flag in order: `value` is the next
/// argument, or empty for a flag named in `switches`. `--help` and `-h`
/// return an empty error (print the usage); a flag with no value after it
/// is an error. `visit` answers unknownOption() for flags it does not know.
inline Status walkCommandLine(
    int argc, char **argv, std::initializer_list<const char *> switches,
    const std::function<Status(const std::string &, const std::string &)>
        &visit) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h")
      return Status::error("");
    bool isSwitch = false;
    for (const char *name : switches)
      isSwitch |= flag == name;
    std::string value;
    if (!isSwitch) {
      if (i + 1 >= argc)
        return Status::error("missing value after '" + flag + "'");
      value = argv[++i];
    }
    CLEAVE_RETURN_IF_ERROR(visit(flag, value));
  }
  return Status::success();
}

inline Status unknownOption(const std::string &flag) {
  return Status::error("unknown option '" + flag + "'");
}

/// `value` as a whole number in [0, limit]; the error names `flag` and
/// what it needs (`what`).
inline Status readCount(const std::string &flag, const std::string &value,
                        uint64_t &out, uint64_t limit = UINT64_MAX,
                        const char *what = "a non-negative integer") {
  std::optional<uint64_t> count = parseCount(value, limit);
  if (!count)
    return Status::error(flag + " needs " + what + ", got '" + value + "'");
  out = *count;
  return Status::success();
}

inline Status readNumber(const std::string &flag, const std::string &value,
                         double &out) {
  std::optional<double> number = parseNumber(value);
  if (!number)
    return Status::error(flag + " needs a number, got '" + value + "'");
  out = *number;
  return Status::success();
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SRC_COMMANDLINE_H
