//===- ModelProfile.cpp - A model's costs per part, from its IR -----------===//
//
// Sums the cost interface of the forward function's ops by their layer tag.
// Blocks must cost the same (identical layers are costed once, as the
// search assumes); parameters count for the part whose ops read them first,
// and a parameter read by the embedding and the head (a tied embedding)
// counts once, in the embedding.
//
//===----------------------------------------------------------------------===//

#include "cleave/Planner/Planner.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "llvm/ADT/DenseSet.h"

#include <cmath>

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::planner;

/// The product `matmul` computes for one sample of a batch of `batch`
/// (the leading dimension): a 2-D right operand is a projection whose rows
/// grow with the batch, otherwise the batch dimensions count products.
static GemmShape getGemmShape(MatmulOp matmul, int64_t batch) {
  auto result = cast<RankedTensorType>(matmul.getType());
  auto lhs = cast<RankedTensorType>(matmul.getLhs().getType());
  auto rhs = cast<RankedTensorType>(matmul.getRhs().getType());
  int64_t rank = result.getRank();
  GemmShape shape;
  shape.n = result.getDimSize(rank - 1);
  shape.k = lhs.getDimSize(matmul.getTransposeLhs() ? lhs.getRank() - 2
                                                    : lhs.getRank() - 1);
  int64_t leading = 1;
  for (int64_t dim = 0; dim < rank - 2; ++dim)
    leading *= result.getDimSize(dim);
  int64_t rows = result.getDimSize(rank - 2);
  int64_t perSample = std::max<int64_t>(1, batch);
  if (rhs.getRank() == 2) {
    shape.m = std::max<int64_t>(1, leading * rows / perSample);
    shape.rowsGrowWithBatch = true;
  } else {
    shape.m = rows;
    shape.products = std::max<int64_t>(1, leading / perSample);
    shape.rowsGrowWithBatch = false;
  }
  return shape;
}

std::string ModelProfile::describeHeads(llvm::StringRef noun) const {
  std::string text = "the " + std::to_string(heads) + " " + noun.str();
  if (kvHeads != 0 && kvHeads != heads)
    text += " and the " + std::to_string(kvHeads) +
            " key/value heads (unless there is one)";
  return text;
}

FailureOr<ModelProfile> mlir::cleave::planner::profileModel(func::FuncOp forward) {
  ModelProfile model;
  FailureOr<int64_t> blockCount = getDenseBlockCount(forward);
  if (failed(blockCount))
    return failure();
  std::vector<PartCost> blocks(*blockCount);
  auto getPart = [&](LayerAttr layer) -> PartCost & {
    if (layer.getKind() == LayerKind::Embed)
      return model.embed;
    if (layer.getKind() == LayerKind::Head)
      return model.head;
    return blocks[layer.getIndex()]; // Dense: checked above.
  };

  // The batch and sequence of the tokens input; the vocabulary and width of
  // the table that embeds them.
  if (std::optional<unsigned> tokens =
          findInputByRole(forward, InputRole::Tokens)) {
    auto type = dyn_cast<RankedTensorType>(forward.getArgument(*tokens).getType());
    if (type && type.getRank() == 2 && type.hasStaticShape()) {
      model.batch = type.getDimSize(0);
      model.seq = type.getDimSize(1);
    }
    for (Operation *user : forward.getArgument(*tokens).getUsers()) {
      auto embedding = dyn_cast<EmbeddingOp>(user);
      auto table = embedding ? dyn_cast<BlockArgument>(embedding.getTable())
                             : BlockArgument();
      if (!table || !forward.getArgAttr(table.getArgNumber(),
                                        CleaveDialect::kParamAttrName) ||
          !embedding.getTable().getType().hasStaticShape())
        continue;
      RankedTensorType tableType = embedding.getTable().getType();
      model.vocab = tableType.getDimSize(0);
      model.hidden = tableType.getDimSize(1);
      if (auto element = dyn_cast<FloatType>(tableType.getElementType()))
        model.elementBytes = element.getWidth() / 8;
    }
  }
  for (BlockArgument arg : forward.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    auto param = forward.getArgAttrOfType<StringAttr>(
        arg.getArgNumber(), CleaveDialect::kParamAttrName);
    if (!param || !type)
      continue;
    // The part of the first op that reads it.
    LayerAttr first;
    bool embedAndHead = false;
    for (Operation *user : arg.getUsers()) {
      auto layer = user->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
      if (!layer)
        continue;
      if (!first || layer.getOrderKey() < first.getOrderKey())
        first = layer;
      embedAndHead |= layer.getKind() == LayerKind::Head;
    }
    if (!first)
      continue;
    getPart(first).params += type.getNumElements();
    model.tiedEmbedding |= first.getKind() == LayerKind::Embed && embedAndHead;
  }
  if (model.batch <= 0 || model.vocab <= 0)
    return forward.emitError("the planner needs a language model: an input "
                             "with cleave.input_role tokens [batch, seq] "
                             "that a parameter table [vocab, hidden] "
                             "embeds");

  // Megatron splits the attention between its projections: the q, k, v
  // biases, the head split and merge (and rotary embedding) run on split
  // values even where their last dimension is the width.
  DenseSet<Operation *> attentionRegion;
  forward.walk([&](AttentionOp attention) {
    SmallVector<Operation *> work;
    for (Value operand : attention->getOperands())
      if (Operation *producer = operand.getDefiningOp())
        work.push_back(producer);
    while (!work.empty()) {
      Operation *op = work.pop_back_val();
      if (isa<MatmulOp>(op) || !attentionRegion.insert(op).second)
        continue;
      for (Value operand : op->getOperands())
        if (Operation *producer = operand.getDefiningOp();
            producer && !isa<AttentionOp>(producer))
          work.push_back(producer);
    }
    for (Operation *user : attention->getUsers())
      work.push_back(user);
    while (!work.empty()) {
      Operation *op = work.pop_back_val();
      if (isa<MatmulOp>(op) || !attentionRegion.insert(op).second)
        continue;
      for (Operation *user : op->getUsers())
        work.push_back(user);
    }
  });

  bool untagged = false;
  forward.walk([&](Operation *op) {
    auto cost = dyn_cast<CostOpInterface>(op);
    if (!cost)
      return;
    auto layer = op->getAttrOfType<LayerAttr>(CleaveDialect::kLayerAttrName);
    if (!layer) {
      untagged = true;
      return;
    }
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      // [batch, heads, seq, head size]
      auto query = cast<RankedTensorType>(attention.getQuery().getType());
      auto key = cast<RankedTensorType>(attention.getKey().getType());
      if (query.getRank() == 4 && key.getRank() == 4) {
        model.heads = query.getDimSize(1);
        model.kvHeads = key.getDimSize(1);
      }
    }
    PartCost &part = getPart(layer);
    if (auto matmul = dyn_cast<MatmulOp>(op))
      part.gemms.push_back(getGemmShape(matmul, model.batch));
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      // Scores (q k^T) and their weighted values, per head.
      auto query = cast<RankedTensorType>(attention.getQuery().getType());
      auto key = cast<RankedTensorType>(attention.getKey().getType());
      if (query.getRank() == 4 && key.getRank() == 4) {
        int64_t heads = query.getDimSize(1), rows = query.getDimSize(2);
        int64_t keys = key.getDimSize(2), size = query.getDimSize(3);
        part.gemms.push_back({rows, keys, size, heads, false});
        part.gemms.push_back({rows, size, keys, heads, false});
      }
    }
    double matmul = cost.getMatmulFlops();
    part.matmulFlops += matmul;
    part.otherFlops += cost.getFlops() - matmul;
    if (matmul == 0) {
      double bytes = cost.getBytesRead() + cost.getBytesWritten();
      part.memoryBytes += bytes;
      auto result = op->getNumResults() == 1
                        ? dyn_cast<RankedTensorType>(op->getResult(0).getType())
                        : RankedTensorType();
      if (result && result.getRank() >= 2 &&
          result.getDimSize(result.getRank() - 1) == model.hidden &&
          !attentionRegion.contains(op)) {
        part.replicatedMemoryBytes += bytes;
        part.replicatedActivationBytes += cost.getBytesWritten();
      }
    }
    part.activationBytes += cost.getBytesWritten();
  });
  if (untagged)
    return forward.emitError("the planner needs every op's layer tag: run "
                             "cleave-verify-layer-tags to find the ones "
                             "without");
  if (blocks.empty() || model.heads <= 0)
    return forward.emitError("the planner needs transformer blocks with "
                             "attention over [batch, heads, seq, head size] "
                             "(layer tags cleave.layer<i>)");
  for (const PartCost &block : blocks) {
    const PartCost &first = blocks.front();
    auto same = [](double a, double b) {
      return std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b));
    };
    if (!same(block.params, first.params) ||
        !same(block.matmulFlops, first.matmulFlops) ||
        !same(block.activationBytes, first.activationBytes))
      return forward.emitError("the planner costs one block for all: every "
                               "transformer block must cost the same");
  }
  model.layers = blocks.size();
  model.block = blocks.front();
  // Per sample.
  for (PartCost *part : {&model.embed, &model.block, &model.head}) {
    part->matmulFlops /= model.batch;
    part->otherFlops /= model.batch;
    part->memoryBytes /= model.batch;
    part->replicatedMemoryBytes /= model.batch;
    part->activationBytes /= model.batch;
    part->replicatedActivationBytes /= model.batch;
  }
  return model;
}
