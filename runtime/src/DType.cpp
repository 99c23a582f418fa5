//===- DType.cpp - Tensor element types -----------------------------------===//

#include "cleave/runtime/DType.h"
#include "cleave/runtime/Portability.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace cleave::rt {

namespace {
struct DTypeEntry {
  DType dtype;
  const char *name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4},  {DType::BF16, "BF16", 2},
    {DType::F16, "F16", 2},  {DType::I64, "I64", 8},  {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},  {DType::I8, "I8", 1},    {DType::U8, "U8", 1},
    {DType::U16, "U16", 2},  {DType::U32, "U32", 4},  {DType::Bool, "BOOL", 1},
};

const DTypeEntry &lookup(DType dtype) {
  for (const DTypeEntry &entry : kDTypes)
    if (entry.dtype == dtype)
      return entry;
  return kDTypes[0]; // Unreachable: every enumerator is listed.
}
} // namespace

size_t getDTypeSize(DType dtype) { return lookup(dtype).size; }

const char *getDTypeName(DType dtype) { return lookup(dtype).name; }

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeEntry &entry : kDTypes)
    if (name == entry.name)
      return entry.dtype;
  return std::nullopt;
}

std::optional<uint64_t> getNumElements(const std::vector<int64_t> &shape) {
  uint64_t count = 1;
  for (int64_t size : shape) {
    if (size < 0)
      return std::nullopt;
    if (size != 0 &&
        count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(size))
      return std::nullopt;
    count *= static_cast<uint64_t>(size);
  }
  return count;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

bool isFloatDType(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::BF16 ||
         dtype == DType::F16;
}

bool readFloatElement(DType dtype, const uint8_t *data, double &value) {
  switch (dtype) {
  case DType::F64:
    std::memcpy(&value, data, sizeof(double));
    return true;
  case DType::F32: {
    float narrow;
    std::memcpy(&narrow, data, sizeof(float));
    value = narrow;
    return true;
  }
  case DType::BF16: {
    ::cleave::bf16 narrow;
    std::memcpy(&narrow, data, sizeof(narrow));
    value = ::cleave::toCompute(narrow);
    return true;
  }
  case DType::F16: {
    ::cleave::f16 narrow;
    std::memcpy(&narrow, data, sizeof(narrow));
    value = ::cleave::toCompute(narrow);
    return true;
  }
  default:
    return false;
  }
}

void writeFloatElement(DType dtype, double value, uint8_t *data) {
  if (dtype == DType::F64) {
    std::memcpy(data, &value, sizeof(double));
  } else if (dtype == DType::F32) {
    float narrow = static_cast<float>(value);
    std::memcpy(data, &narrow, sizeof(float));
  } else if (dtype == DType::BF16) {
    ::cleave::bf16 narrow = ::cleave::convert<::cleave::bf16>(value);
    std::memcpy(data, &narrow, sizeof(narrow));
  } else {
    ::cleave::f16 narrow = ::cleave::convert<::cleave::f16>(value);
    std::memcpy(data, &narrow, sizeof(narrow));
  }
}

std::optional<std::pair<uint64_t, double>>
findNonFiniteElement(DType dtype, const uint8_t *data, uint64_t count) {
  if (!isFloatDType(dtype))
    return std::nullopt;
  size_t width = getDTypeSize(dtype);
  for (uint64_t i = 0; i < count; ++i) {
    double value = 0;
    if (readFloatElement(dtype, data + i * width, value) &&
        !std::isfinite(value))
      return std::make_pair(i, value);
  }
  return std::nullopt;
}

} // namespace cleave::rt
