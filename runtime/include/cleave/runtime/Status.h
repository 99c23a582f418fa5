//===- Status.h - Runtime error reporting -----------------------*- C++ -*-===//
//
// Runtime calls report failure as a Status carrying a message that names
// what failed (file, tensor, call). Generated programs print it and exit 1.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_STATUS_H
#define CLEAVE_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace cleave::rt {

class [[nodiscard]] Status {
public:
  static Status success() { return Status(); }
  static Status error(std::string message) {
    Status status;
    status.failed = true;
    status.text = std::move(message);
    return status;
  }

  bool ok() const { return !failed; }
  explicit operator bool() const { return ok(); }
  const std::string &message() const { return text; }

private:
  bool failed = false;
  std::string text;
};

} // namespace cleave::rt

/// Returns from the enclosing function when `expr` yields a failed Status.
#define CLEAVE_RETURN_IF_ERROR(expr)                                           \
  do {                                                                         \
    ::cleave::rt::Status cleaveStatus = (expr);                                \
    if (!cleaveStatus.ok())                                                    \
      return cleaveStatus;                                                     \
  } while (false)

#endif // CLEAVE_RUNTIME_STATUS_H
