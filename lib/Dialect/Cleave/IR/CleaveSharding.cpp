//===- CleaveSharding.cpp - Meshes, shardings and collectives -------------===//

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mlir::cleave;

//===----------------------------------------------------------------------===//
// ShardingAttr
//===----------------------------------------------------------------------===//

static SmallVector<StringRef> getNames(ArrayAttr array) {
  SmallVector<StringRef> names;
  for (Attribute name : array)
    names.push_back(cast<StringAttr>(name).getValue());
  return names;
}

SmallVector<StringRef> ShardingAttr::getDimAxes(unsigned dim) const {
  return getNames(cast<ArrayAttr>(getDims()[dim]));
}

SmallVector<StringRef> ShardingAttr::getPartialAxes() const {
  return getNames(getPartial());
}

static ParseResult parseAxisNames(AsmParser &parser, ArrayAttr &axes) {
  SmallVector<Attribute> names;
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() {
        std::string name;
        if (parser.parseKeywordOrString(&name))
          return failure();
        names.push_back(parser.getBuilder().getStringAttr(name));
        return success();
      }))
    return failure();
  axes = parser.getBuilder().getArrayAttr(names);
  return success();
}

static void printAxisNames(AsmPrinter &printer, ArrayAttr axes) {
  printer << '[';
  llvm::interleaveComma(axes, printer, [&](Attribute name) {
    printer.printKeywordOrString(cast<StringAttr>(name).getValue());
  });
  printer << ']';
}

Attribute ShardingAttr::parse(AsmParser &parser, Type) {
  FlatSymbolRefAttr mesh;
  SmallVector<Attribute> dims;
  if (parser.parseLess() || parser.parseAttribute(mesh) || parser.parseComma() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() {
        ArrayAttr axes;
        if (parseAxisNames(parser, axes))
          return failure();
        dims.push_back(axes);
        return success();
      }))
    return {};
  ArrayAttr partial = parser.getBuilder().getArrayAttr({});
  if (succeeded(parser.parseOptionalComma()) &&
      (parser.parseKeyword("partial") || parser.parseEqual() ||
       parseAxisNames(parser, partial)))
    return {};
  if (parser.parseGreater())
    return {};
  return ShardingAttr::get(parser.getContext(), mesh,
                           parser.getBuilder().getArrayAttr(dims), partial);
}

void ShardingAttr::print(AsmPrinter &printer) const {
  printer << '<' << getMesh() << ", [";
  llvm::interleaveComma(getDims(), printer, [&](Attribute axes) {
    printAxisNames(printer, cast<ArrayAttr>(axes));
  });
  printer << ']';
  if (!getPartial().empty()) {
    printer << ", partial = ";
    printAxisNames(printer, getPartial());
  }
  printer << '>';
}

ParseResult mlir::cleave::parseAxisList(OpAsmParser &parser, ArrayAttr &axes) {
  return parseAxisNames(parser, axes);
}

void mlir::cleave::printAxisList(OpAsmPrinter &printer, Operation *,
                                 ArrayAttr axes) {
  printAxisNames(printer, axes);
}

//===----------------------------------------------------------------------===//
// MeshOp
//===----------------------------------------------------------------------===//

ParseResult MeshOp::parse(OpAsmParser &parser, OperationState &result) {
  StringAttr name;
  SmallVector<Attribute> axes;
  SmallVector<int64_t> sizes;
  if (parser.parseSymbolName(name, getSymNameAttrName(result.name),
                             result.attributes) ||
      parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Paren, [&]() {
        std::string axis;
        int64_t size = 0;
        if (parser.parseKeywordOrString(&axis) || parser.parseEqual() ||
            parser.parseInteger(size))
          return failure();
        axes.push_back(parser.getBuilder().getStringAttr(axis));
        sizes.push_back(size);
        return success();
      }) ||
      parser.parseOptionalAttrDict(result.attributes))
    return failure();
  result.addAttribute(getAxesAttrName(result.name),
                      parser.getBuilder().getArrayAttr(axes));
  result.addAttribute(getSizesAttrName(result.name),
                      parser.getBuilder().getDenseI64ArrayAttr(sizes));
  return success();
}

void MeshOp::print(OpAsmPrinter &printer) {
  printer << ' ';
  printer.printSymbolName(getSymName());
  printer << '(';
  llvm::interleaveComma(llvm::zip(getAxes(), getSizes()), printer,
                        [&](auto axis) {
                          printer.printKeywordOrString(
                              cast<StringAttr>(std::get<0>(axis)).getValue());
                          printer << " = " << std::get<1>(axis);
                        });
  printer << ')';
  printer.printOptionalAttrDict((*this)->getAttrs(),
                                {getSymNameAttrName(), getAxesAttrName(),
                                 getSizesAttrName()});
}

LogicalResult MeshOp::verify() {
  if (getAxes().empty())
    return emitOpError("needs at least one axis");
  if (getAxes().size() != getSizes().size())
    return emitOpError("needs one size per axis");
  llvm::StringSet<> seen;
  int64_t devices = 1;
  for (auto [axis, size] : llvm::zip(getAxes(), getSizes())) {
    StringRef name = cast<StringAttr>(axis).getValue();
    if (!seen.insert(name).second)
      return emitOpError("axis '") << name << "' appears twice";
    if (size < 1)
      return emitOpError("axis '") << name << "' must have size >= 1, got "
                                   << size;
    if (size > kMaxMeshDevices / devices)
      return emitOpError("has more than ") << kMaxMeshDevices << " devices";
    devices *= size;
  }
  return success();
}

FailureOr<SmallVector<MeshAxisSpec>>
mlir::cleave::parseMeshSpec(StringRef text, std::string &message) {
  SmallVector<MeshAxisSpec> axes;
  SmallVector<StringRef> entries;
  text.split(entries, ',');
  int64_t devices = 1;
  llvm::StringSet<> seen;
  for (StringRef entry : entries) {
    auto [name, sizeText] = entry.trim().split('=');
    int64_t size = 0;
    if (name.empty() ||
        !llvm::all_of(name, [](char c) { return llvm::isAlnum(c) || c == '_'; }) ||
        sizeText.getAsInteger(10, size) || size < 1) {
      message = ("a mesh is axis=size pairs like dp=2,tp=2, got '" + text +
                 "'")
                    .str();
      return failure();
    }
    if (!seen.insert(name).second) {
      message = ("mesh axis '" + name + "' appears twice in '" + text + "'")
                    .str();
      return failure();
    }
    axes.push_back({name.str(), size});
    if (size > kMaxMeshDevices / devices) {
      message = ("mesh '" + text + "' has more than " + Twine(kMaxMeshDevices) +
                 " devices")
                    .str();
      return failure();
    }
    devices *= size;
  }
  return axes;
}

std::string mlir::cleave::formatMeshSpec(ArrayRef<MeshAxisSpec> axes) {
  std::string text;
  for (const MeshAxisSpec &axis : axes)
    text += (text.empty() ? "" : ",") + axis.name + "=" +
            std::to_string(axis.size);
  return text;
}

std::optional<int64_t> MeshOp::getAxisSize(StringRef name) {
  for (auto [axis, size] : llvm::zip(getAxes(), getSizes()))
    if (cast<StringAttr>(axis).getValue() == name)
      return size;
  return std::nullopt;
}

int64_t MeshOp::getDeviceCount() {
  int64_t count = 1;
  for (int64_t size : getSizes())
    count *= size;
  return count;
}

//===----------------------------------------------------------------------===//
// Verification against a mesh
//===----------------------------------------------------------------------===//

/// The mesh `name` refers to from `anchor`, or a located error.
static FailureOr<MeshOp> lookupMesh(Operation *anchor, FlatSymbolRefAttr name,
                                    SymbolTableCollection *symbols) {
  Operation *symbol =
      symbols ? symbols->lookupNearestSymbolFrom(anchor, name)
              : SymbolTable::lookupNearestSymbolFrom(anchor, name);
  if (auto mesh = dyn_cast_or_null<MeshOp>(symbol))
    return mesh;
  return anchor->emitError("'") << name.getValue()
                                << "' does not name a cleave.mesh";
}

/// The product of `axes`' sizes; errors for unknown or repeated axes, which
/// `seen` collects across the calls for one sharding.
static FailureOr<int64_t> getAxesSize(Operation *anchor, MeshOp mesh,
                                      ArrayRef<StringRef> axes,
                                      llvm::StringSet<> &seen) {
  int64_t product = 1;
  for (StringRef axis : axes) {
    std::optional<int64_t> size = mesh.getAxisSize(axis);
    if (!size)
      return anchor->emitError("mesh '")
             << mesh.getSymName() << "' has no axis '" << axis << "'";
    if (!seen.insert(axis).second)
      return anchor->emitError("mesh axis '")
             << axis << "' is used twice in one sharding";
    product *= *size;
  }
  return product;
}

LogicalResult mlir::cleave::verifySharding(Operation *anchor,
                                           ShardingAttr sharding, Type type,
                                           SymbolTableCollection *symbols) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return anchor->emitError("a sharding needs a ranked tensor, got ") << type;
  FailureOr<MeshOp> mesh = lookupMesh(anchor, sharding.getMesh(), symbols);
  if (failed(mesh))
    return failure();
  if (static_cast<int64_t>(sharding.getDims().size()) != tensor.getRank())
    return anchor->emitError("sharding lists ")
           << sharding.getDims().size() << " dimensions for a tensor of rank "
           << tensor.getRank();
  llvm::StringSet<> seen;
  for (int64_t dim = 0; dim < tensor.getRank(); ++dim) {
    FailureOr<int64_t> ways =
        getAxesSize(anchor, *mesh, sharding.getDimAxes(dim), seen);
    if (failed(ways))
      return failure();
    int64_t size = tensor.getDimSize(dim);
    if (size % *ways != 0)
      return anchor->emitError("dimension ")
             << dim << " of size " << size << " does not split into " << *ways
             << " equal parts; pad it to " << (size + *ways - 1) / *ways * *ways
             << " (e.g. the vocabulary) or shard it on fewer devices";
  }
  return success(!failed(
      getAxesSize(anchor, *mesh, sharding.getPartialAxes(), seen)));
}

LogicalResult ShardOp::verify() {
  if (static_cast<int64_t>(getPriority()) < 0)
    return emitOpError("priority must not be negative (0 is the highest)");
  return success();
}

LogicalResult ShardOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifySharding(*this, getSharding(), getType(), &symbols);
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

namespace {

/// The group size of a collective's axes, checked against its mesh.
FailureOr<int64_t> getCheckedGroupSize(Operation *op, FlatSymbolRefAttr meshName,
                                       ArrayAttr axes,
                                       SymbolTableCollection *symbols) {
  FailureOr<MeshOp> mesh = lookupMesh(op, meshName, symbols);
  if (failed(mesh))
    return failure();
  if (axes.empty())
    return op->emitOpError("needs at least one mesh axis");
  llvm::StringSet<> seen;
  return getAxesSize(op, *mesh, getNames(axes), seen);
}

int64_t getGroupSizeOrOne(Operation *op, FlatSymbolRefAttr mesh,
                          ArrayAttr axes) {
  auto meshOp = dyn_cast_or_null<MeshOp>(
      SymbolTable::lookupNearestSymbolFrom(op, mesh));
  if (!meshOp)
    return 1;
  int64_t size = 1;
  for (StringRef axis : getNames(axes))
    size *= meshOp.getAxisSize(axis).value_or(1);
  return size;
}

/// Checks that `result` is `input` with dimension `dim` scaled by `factor`
/// (a fraction when `divide`).
LogicalResult verifyScaledDim(Operation *op, RankedTensorType input,
                              RankedTensorType result, int64_t dim,
                              int64_t factor, bool divide) {
  if (dim < 0 || dim >= input.getRank())
    return op->emitOpError("dimension ")
           << dim << " is out of range for " << input;
  if (divide && input.getDimSize(dim) % factor != 0)
    return op->emitOpError("dimension ")
           << dim << " of size " << input.getDimSize(dim)
           << " does not split over " << factor << " devices";
  SmallVector<int64_t> shape(input.getShape());
  shape[dim] = divide ? shape[dim] / factor : shape[dim] * factor;
  auto expected = RankedTensorType::get(shape, input.getElementType());
  if (result != expected)
    return op->emitOpError("result type ")
           << result << " does not match the expected " << expected;
  return success();
}

} // namespace

// An all-reduce moves 2 (n - 1) / n of its tensor per device; gathers,
// scatters and all-to-all each (n - 1) / n of the larger side.
static double getShareMoved(int64_t group) {
  return group <= 1 ? 0.0 : static_cast<double>(group - 1) / group;
}

LogicalResult AllReduceOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return success(!failed(
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols)));
}
int64_t AllReduceOp::getGroupSize() {
  return getGroupSizeOrOne(*this, getMeshAttr(), getAxes());
}
double AllReduceOp::getFlops() {
  return getShareMoved(getGroupSize()) * getNumElements(getType());
}
double AllReduceOp::getCommunicatedBytes() {
  return 2.0 * getShareMoved(getGroupSize()) * getTotalBytes(getType());
}

LogicalResult AllGatherOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group =
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols);
  if (failed(group))
    return failure();
  return verifyScaledDim(*this, getInput().getType(), getType(), getDim(),
                         *group, /*divide=*/false);
}
int64_t AllGatherOp::getGroupSize() {
  return getGroupSizeOrOne(*this, getMeshAttr(), getAxes());
}
double AllGatherOp::getFlops() { return 0.0; }
double AllGatherOp::getCommunicatedBytes() {
  return getShareMoved(getGroupSize()) * getTotalBytes(getType());
}

LogicalResult ReduceScatterOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group =
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols);
  if (failed(group))
    return failure();
  return verifyScaledDim(*this, getInput().getType(), getType(), getDim(),
                         *group, /*divide=*/true);
}
int64_t ReduceScatterOp::getGroupSize() {
  return getGroupSizeOrOne(*this, getMeshAttr(), getAxes());
}
double ReduceScatterOp::getFlops() {
  return getShareMoved(getGroupSize()) * getNumElements(getInput().getType());
}
double ReduceScatterOp::getCommunicatedBytes() {
  return getShareMoved(getGroupSize()) * getTotalBytes(getInput().getType());
}

LogicalResult AllToAllOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group =
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols);
  if (failed(group))
    return failure();
  auto input = getInput().getType();
  int64_t rank = input.getRank();
  int64_t split = getSplitDim(), concat = getConcatDim();
  if (split < 0 || split >= rank || concat < 0 || concat >= rank)
    return emitOpError("split and concat dimensions must be in [0, ")
           << rank << ")";
  if (input.getDimSize(split) % *group != 0)
    return emitOpError("dimension ")
           << split << " of size " << input.getDimSize(split)
           << " does not split over " << *group << " devices";
  SmallVector<int64_t> shape(input.getShape());
  shape[split] /= *group;
  shape[concat] *= *group;
  auto expected = RankedTensorType::get(shape, input.getElementType());
  if (getType() != expected)
    return emitOpError("result type ")
           << getType() << " does not match the expected " << expected;
  return success();
}
int64_t AllToAllOp::getGroupSize() {
  return getGroupSizeOrOne(*this, getMeshAttr(), getAxes());
}
double AllToAllOp::getFlops() { return 0.0; }
double AllToAllOp::getCommunicatedBytes() {
  return getShareMoved(getGroupSize()) * getTotalBytes(getInput().getType());
}

LogicalResult LocalSliceOp::verifySymbolUses(SymbolTableCollection &symbols) {
  FailureOr<int64_t> group =
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols);
  if (failed(group))
    return failure();
  return verifyScaledDim(*this, getInput().getType(), getType(), getDim(),
                         *group, /*divide=*/true);
}
int64_t LocalSliceOp::getGroupSize() {
  return getGroupSizeOrOne(*this, getMeshAttr(), getAxes());
}
double LocalSliceOp::getFlops() { return 0.0; }
double LocalSliceOp::getCommunicatedBytes() { return 0.0; }

LogicalResult DeviceIndexOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return success(!failed(
      getCheckedGroupSize(*this, getMeshAttr(), getAxes(), &symbols)));
}

LogicalResult IotaOp::verify() {
  auto dim = static_cast<int64_t>(getDim());
  if (dim < 0 || dim >= getType().getRank())
    return emitOpError("dimension ") << dim << " is out of range for "
                                     << getType();
  return success();
}

double DeviceIndexOp::getFlops() { return 0.0; }
double IotaOp::getFlops() { return 0.0; }

bool mlir::cleave::hasContiguousBlocks(RankedTensorType type, int64_t dim) {
  return llvm::all_of(type.getShape().take_front(dim),
                      [](int64_t size) { return size == 1; });
}

bool mlir::cleave::isStartedCollective(Operation *op) {
  return op && isa<AllReduceOp, AllGatherOp, ReduceScatterOp>(op) &&
         op->getResult(0).hasOneUse() &&
         isa<WaitOp>(*op->getResult(0).getUsers().begin());
}

LogicalResult WaitOp::verify() {
  Operation *collective = getInput().getDefiningOp();
  if (!collective ||
      !isa<AllReduceOp, AllGatherOp, ReduceScatterOp>(collective))
    return emitOpError("waits for an all_reduce, all_gather or "
                       "reduce_scatter result, not ")
           << (collective ? collective->getName().getStringRef()
                          : StringRef("a block argument"));
  if (collective->getBlock() != (*this)->getBlock())
    return emitOpError("must be in the block of the collective it waits for");
  // Any other reader would see the buffer before the data arrived.
  if (!getInput().hasOneUse())
    return emitOpError("must be the only reader of the collective's result");
  // What the runtime can start: sums, over blocks laid out one after another.
  auto kind = collective->getAttrOfType<ReductionKindAttr>("kind");
  if (kind && kind.getValue() != ReductionKind::sum)
    return emitOpError("waits for a ")
           << stringifyReductionKind(kind.getValue())
           << "; only sums are started ahead of their readers";
  if (auto dim = collective->getAttrOfType<IntegerAttr>("dim")) {
    auto type = cast<RankedTensorType>(collective->getOperand(0).getType());
    if (!hasContiguousBlocks(type, dim.getInt()))
      return emitOpError("waits for a collective along dimension ")
             << dim.getInt() << " of " << type
             << ", whose blocks are not contiguous; only contiguous blocks "
                "are started ahead of their readers";
  }
  return success();
}
double WaitOp::getFlops() { return 0.0; }
double WaitOp::getBytesRead() { return 0.0; }
double WaitOp::getBytesWritten() { return 0.0; }
