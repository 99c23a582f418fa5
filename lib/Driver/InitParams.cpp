//===- InitParams.cpp - Deterministic initial parameters ------------------===//

#include "cleave/Driver/InitParams.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/runtime/Init.h"
#include "cleave/runtime/Safetensors.h"

#include <deque>
#include <vector>

using namespace mlir;
using namespace mlir::cleave;
namespace rt = ::cleave::rt;

/// The runtime's form of a parameter's `cleave.init` (null: the default).
static rt::InitRule getInitRule(InitAttr init) {
  if (!init)
    return {};
  switch (init.getKind()) {
  case InitKind::Zeros:
    return {rt::InitRule::Kind::Zeros, 0.0};
  case InitKind::Ones:
    return {rt::InitRule::Kind::Ones, 0.0};
  case InitKind::Normal:
    return {rt::InitRule::Kind::Normal, init.getStandardDeviation()};
  }
  return {};
}

FailureOr<int64_t> mlir::cleave::writeInitialParams(func::FuncOp function,
                                                    const std::string &path,
                                                    uint64_t seed) {
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
    if (!element.isF64() && !element.isF32() && !element.isBF16() &&
        !element.isF16())
      return function.emitError("cannot initialize parameter '")
             << name.getValue() << "' of element type " << element;
    rt::DType dtype = element.isF64()    ? rt::DType::F64
                      : element.isF32()  ? rt::DType::F32
                      : element.isBF16() ? rt::DType::BF16
                                         : rt::DType::F16;
    rt::InitRule rule = getInitRule(
        function.getArgAttrOfType<InitAttr>(i, CleaveDialect::kInitAttrName));
    std::vector<uint8_t> &bytes = buffers.emplace_back(
        type.getNumElements() * rt::getDTypeSize(dtype));
    rt::Status filled =
        rt::fillInitialValues(rule, seed, name.getValue(), dtype,
                              type.getNumElements(), bytes.data());
    if (!filled.ok())
      return function.emitError(filled.message());
    rt::Status added = writer.add(name.str(), dtype,
                                  std::vector<int64_t>(type.getShape().begin(),
                                                       type.getShape().end()),
                                  bytes.data());
    if (!added.ok())
      return function.emitError("cannot initialize parameters: ")
             << added.message();
    ++count;
  }
  writer.setMetadata("init", "cleave.init");
  writer.setMetadata("seed", std::to_string(seed));
  rt::Status written = writer.write(path);
  if (!written.ok())
    return function.emitError("cannot write initial parameters: ")
           << written.message();
  return count;
}
