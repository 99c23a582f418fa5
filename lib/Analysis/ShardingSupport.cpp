//===- ShardingSupport.cpp - Shardings as lists, factor axes --------------===//

#include "cleave/Analysis/ShardingSupport.h"

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::sharding;

//===----------------------------------------------------------------------===//
// TensorSharding
//===----------------------------------------------------------------------===//

TensorSharding TensorSharding::getReplicated(int64_t rank) {
  TensorSharding sharding;
  sharding.dims.resize(rank);
  return sharding;
}

TensorSharding TensorSharding::get(ShardingAttr attr) {
  TensorSharding sharding;
  for (unsigned dim = 0, rank = attr.getDims().size(); dim < rank; ++dim)
    sharding.dims.push_back(AxisList(attr.getDimAxes(dim)));
  sharding.partial = AxisList(attr.getPartialAxes());
  return sharding;
}

static ArrayAttr getAxesAttr(MLIRContext *context, ArrayRef<StringRef> axes) {
  return ArrayAttr::get(context,
                        llvm::map_to_vector(axes, [&](StringRef axis) -> Attribute {
                          return StringAttr::get(context, axis);
                        }));
}

ShardingAttr TensorSharding::toAttr(MLIRContext *context,
                                    FlatSymbolRefAttr mesh) const {
  SmallVector<Attribute> dimAttrs = llvm::map_to_vector(
      dims, [&](const AxisList &axes) -> Attribute {
        return getAxesAttr(context, axes);
      });
  return ShardingAttr::get(context, mesh, ArrayAttr::get(context, dimAttrs),
                           getAxesAttr(context, partial));
}

bool TensorSharding::usesAxis(StringRef axis) const {
  return llvm::is_contained(partial, axis) ||
         llvm::any_of(dims, [&](const AxisList &axes) {
           return llvm::is_contained(axes, axis);
         });
}

//===----------------------------------------------------------------------===//
// MeshAxes
//===----------------------------------------------------------------------===//

MeshAxes::MeshAxes(MeshOp mesh)
    : name(FlatSymbolRefAttr::get(mesh.getSymNameAttr())) {
  for (auto [position, entry] :
       llvm::enumerate(llvm::zip(mesh.getAxes(), mesh.getSizes()))) {
    StringRef axis = cast<StringAttr>(std::get<0>(entry)).getValue();
    sizes[axis] = std::get<1>(entry);
    positions[axis] = position;
  }
}

int64_t MeshAxes::getSize(ArrayRef<StringRef> axes) const {
  int64_t product = 1;
  for (StringRef axis : axes)
    product *= sizes.lookup(axis);
  return product;
}

void MeshAxes::sort(AxisList &axes) const {
  llvm::sort(axes, [&](StringRef a, StringRef b) {
    return positions.lookup(a) < positions.lookup(b);
  });
}

//===----------------------------------------------------------------------===//
// Factor axes
//===----------------------------------------------------------------------===//

using DimFactors = SmallVector<SmallVector<int64_t>>;

static const DimFactors &getValueFactors(const ShardingRule &rule,
                                         unsigned index) {
  unsigned numOperands = rule.operands.size();
  return index < numOperands ? rule.operands[index]
                             : rule.results[index - numOperands];
}

/// Splits one dimension's axes among its factors, major factor first: an
/// axis goes to the current factor while it divides it, and moves on to
/// the next only once the current one is split completely.
static SmallVector<AxisList> splitAmongFactors(const ShardingRule &rule,
                                               ArrayRef<int64_t> factors,
                                               ArrayRef<StringRef> dimAxes,
                                               const MeshAxes &mesh) {
  SmallVector<AxisList> wanted(factors.size());
  size_t current = 0;
  for (StringRef axis : dimAxes) {
    while (current < factors.size()) {
      int64_t size = rule.factorSizes[factors[current]];
      int64_t taken = mesh.getSize(wanted[current]);
      if (size % (taken * mesh.getSize(axis)) == 0)
        break;
      current = taken == size ? current + 1 : factors.size();
    }
    if (current == factors.size())
      break;
    wanted[current].push_back(axis);
  }
  return wanted;
}

FactorAxes sharding::deriveFactorAxes(const ShardingRule &rule,
                                      ArrayRef<const TensorSharding *> values,
                                      const MeshAxes &mesh,
                                      std::optional<FactorConflict> *conflict,
                                      ArrayRef<unsigned> order) {
  FactorAxes axes(rule.factorSizes.size());
  SmallVector<unsigned> factorOwner(rule.factorSizes.size());
  llvm::StringMap<unsigned> axisOwner;
  auto noteConflict = [&](unsigned first, unsigned second) {
    if (conflict && !*conflict)
      *conflict = FactorConflict{first, second};
  };

  SmallVector<unsigned> naturalOrder;
  if (order.empty()) {
    naturalOrder = llvm::to_vector(llvm::seq<unsigned>(0, values.size()));
    order = naturalOrder;
  }
  for (unsigned index : order) {
    const TensorSharding *value = values[index];
    if (!value)
      continue;
    const DimFactors &dims = getValueFactors(rule, index);
    for (auto [dim, factors] : llvm::enumerate(dims)) {
      if (dim >= value->dims.size())
        break;
      SmallVector<AxisList> wanted =
          splitAmongFactors(rule, factors, value->dims[dim], mesh);
      for (auto [factor, want] : llvm::zip(factors, wanted)) {
        if (want.empty() ||
            rule.factorKinds[factor] == FactorKind::NeedsReplication)
          continue;
        if (!axes[factor].empty()) {
          // A finer split of the same factor refines it; any other
          // disagreement keeps the first.
          AxisList &have = axes[factor];
          if (isPrefix(want, have))
            continue;
          ArrayRef<StringRef> extra = ArrayRef<StringRef>(want).drop_front(
              std::min(have.size(), want.size()));
          if (isPrefix(have, want) &&
              llvm::none_of(extra, [&](StringRef a) { return axisOwner.count(a); })) {
            for (StringRef axis : extra)
              axisOwner[axis] = index;
            have = want;
            continue;
          }
          noteConflict(factorOwner[factor], index);
          continue;
        }
        auto taken = llvm::find_if(
            want, [&](StringRef axis) { return axisOwner.count(axis); });
        if (taken != want.end()) {
          noteConflict(axisOwner.lookup(*taken), index);
          continue;
        }
        axes[factor] = want;
        factorOwner[factor] = index;
        for (StringRef axis : want)
          axisOwner[axis] = index;
      }
    }
  }

  // A dimension of several factors is a contiguous block per device only
  // if every factor before a split one is split completely.
  for (unsigned index = 0, e = rule.operands.size() + rule.results.size();
       index < e; ++index) {
    for (const SmallVector<int64_t> &factors : getValueFactors(rule, index)) {
      bool open = false;
      for (int64_t factor : factors) {
        if (open)
          axes[factor].clear();
        else if (mesh.getSize(axes[factor]) != rule.factorSizes[factor])
          open = true;
      }
    }
  }
  return axes;
}

static TensorSharding project(const DimFactors &dims, const FactorAxes &axes) {
  TensorSharding sharding;
  for (const SmallVector<int64_t> &factors : dims) {
    AxisList &dimAxes = sharding.dims.emplace_back();
    for (int64_t factor : factors)
      llvm::append_range(dimAxes, axes[factor]);
  }
  return sharding;
}

TensorSharding sharding::projectOperand(const ShardingRule &rule,
                                        const FactorAxes &axes,
                                        unsigned index) {
  return project(rule.operands[index], axes);
}

TensorSharding sharding::projectResult(const ShardingRule &rule,
                                       const FactorAxes &axes, unsigned index,
                                       const MeshAxes &mesh) {
  const DimFactors &dims = rule.results[index];
  TensorSharding sharding = project(dims, axes);
  for (auto [factor, factorAxes] : llvm::enumerate(axes)) {
    if (factorAxes.empty() ||
        rule.factorKinds[factor] == FactorKind::Collective)
      continue;
    bool mentioned = llvm::any_of(dims, [&](const SmallVector<int64_t> &f) {
      return llvm::is_contained(f, static_cast<int64_t>(factor));
    });
    if (!mentioned)
      llvm::append_range(sharding.partial, factorAxes);
  }
  mesh.sort(sharding.partial);
  return sharding;
}

RankedTensorType sharding::getLocalType(RankedTensorType type,
                                        const TensorSharding &sharding,
                                        const MeshAxes &mesh) {
  SmallVector<int64_t> shape(type.getShape());
  for (auto [size, axes] : llvm::zip(shape, sharding.dims))
    size /= mesh.getSize(axes);
  return RankedTensorType::get(shape, type.getElementType());
}
