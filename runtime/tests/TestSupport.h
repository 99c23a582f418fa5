//===- TestSupport.h - Helpers the runtime's tests share --------*- C++ -*-===//

#ifndef CLEAVE_RUNTIME_TESTS_TESTSUPPORT_H
#define CLEAVE_RUNTIME_TESTS_TESTSUPPORT_H

#include "cleave/runtime/Kernels.h"

#include <initializer_list>

namespace cleave::rt {

/// A Shape of `dims`.
inline Shape makeShape(std::initializer_list<int64_t> dims) {
  Shape shape;
  for (int64_t dim : dims)
    shape.dims[shape.rank++] = dim;
  return shape;
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_TESTS_TESTSUPPORT_H
