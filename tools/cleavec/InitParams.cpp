//===- InitParams.cpp - Deterministic initial parameters ------------------===//

#include "InitParams.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Portability.h"
#include "cleave/runtime/Safetensors.h"

#include <deque>
#include <vector>

using namespace mlir;
using namespace mlir::cleave;
namespace rt = ::cleave::rt;

namespace {

/// 1 + the largest N of a "layers.N." prefix, or 1 when there is none.
int64_t countLayers(func::FuncOp function) {
  int64_t layers = 1;
  for (unsigned i = 0; i < function.getNumArguments(); ++i) {
    auto name =
        function.getArgAttrOfType<StringAttr>(i, CleaveDialect::kParamAttrName);
    if (!name || !name.getValue().starts_with("layers."))
      continue;
    int64_t index;
    StringRef rest = name.getValue().drop_front(strlen("layers."));
    if (!rest.consumeInteger(10, index) && rest.starts_with("."))
      layers = std::max(layers, index + 1);
  }
  return layers;
}

/// Element `index` of the parameter as bytes of `type`.
template <typename T> void appendAs(std::vector<uint8_t> &bytes, T value) {
  const auto *raw = reinterpret_cast<const uint8_t *>(&value);
  bytes.insert(bytes.end(), raw, raw + sizeof(T));
}

} // namespace

FailureOr<int64_t> mlir::cleave::writeInitialParams(func::FuncOp function,
                                                    const std::string &path,
                                                    uint64_t seed) {
  int64_t layers = countLayers(function);
  rt::SafetensorsWriter writer;
  // The writer keeps pointers until write(): a deque never moves elements.
  std::deque<std::vector<uint8_t>> buffers;
  int64_t count = 0;
  for (unsigned i = 0; i < function.getNumArguments(); ++i) {
    auto name =
        function.getArgAttrOfType<StringAttr>(i, CleaveDialect::kParamAttrName);
    if (!name)
      continue;
    auto type = cast<RankedTensorType>(function.getArgument(i).getType());
    Type element = type.getElementType();
    rt::DType dtype = element.isF64()    ? rt::DType::F64
                      : element.isF32()  ? rt::DType::F32
                      : element.isBF16() ? rt::DType::BF16
                                         : rt::DType::F16;
    rt::InitRule rule = rt::getGpt2InitRule(name.getValue(), layers);
    std::vector<uint8_t> &bytes = buffers.emplace_back();
    bytes.reserve(type.getNumElements() * rt::getDTypeSize(dtype));
    for (int64_t index = 0; index < type.getNumElements(); ++index) {
      double value = rt::getInitValue(rule, seed, name.getValue(), index);
      switch (dtype) {
      case rt::DType::F64:
        appendAs(bytes, value);
        break;
      case rt::DType::F32:
        appendAs(bytes, static_cast<float>(value));
        break;
      case rt::DType::BF16:
        appendAs(bytes, ::cleave::fromFloat<::cleave::bf16>(static_cast<float>(value)));
        break;
      default:
        appendAs(bytes, ::cleave::fromFloat<::cleave::f16>(static_cast<float>(value)));
        break;
      }
    }
    rt::Status added = writer.add(name.str(), dtype,
                                  std::vector<int64_t>(type.getShape().begin(),
                                                       type.getShape().end()),
                                  bytes.data());
    if (!added.ok())
      return function.emitError("cannot initialize parameters: ")
             << added.message();
    ++count;
  }
  writer.setMetadata("init", "gpt2");
  writer.setMetadata("seed", std::to_string(seed));
  rt::Status written = writer.write(path);
  if (!written.ok())
    return function.emitError("cannot write initial parameters: ")
           << written.message();
  return count;
}
