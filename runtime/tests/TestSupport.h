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

/// Row-major strides of `shape`, in elements.
inline void getRowMajorStridesForTest(const Shape &shape, int64_t *strides) {
  int64_t stride = 1;
  for (int i = shape.rank - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape.dims[i];
  }
}

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_TESTS_TESTSUPPORT_H
