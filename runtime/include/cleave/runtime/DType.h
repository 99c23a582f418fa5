//===- DType.h - Tensor element types ---------------------------*- C++ -*-===//

#ifndef CLEAVE_RUNTIME_DTYPE_H
#define CLEAVE_RUNTIME_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cleave::rt {

/// Element types, named as in the safetensors format.
enum class DType { F64, F32, BF16, F16, I64, I32, I16, I8, U8, U16, U32, Bool };

/// Bytes per element.
size_t getDTypeSize(DType dtype);
/// The safetensors name: "F32", "BF16", "BOOL", ...
const char *getDTypeName(DType dtype);
std::optional<DType> parseDType(const std::string &name);

/// Number of elements of `shape` (1 for a scalar), or nullopt on overflow.
std::optional<uint64_t> getNumElements(const std::vector<int64_t> &shape);
/// "[2, 3, 4]".
std::string formatShape(const std::vector<int64_t> &shape);

/// F64, F32, BF16 or F16.
bool isFloatDType(DType dtype);
/// The float element of `dtype` at `data` as a double (false: not a float).
bool readFloatElement(DType dtype, const uint8_t *data, double &value);
/// The first of `count` elements of `dtype` at `data` that is NaN or
/// infinite, with its value; none for integer types.
std::optional<std::pair<uint64_t, double>>
findNonFiniteElement(DType dtype, const uint8_t *data, uint64_t count);
/// Stores `value`, rounded to nearest even, as one element of float
/// `dtype` at `data`.
void writeFloatElement(DType dtype, double value, uint8_t *data);

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_DTYPE_H
