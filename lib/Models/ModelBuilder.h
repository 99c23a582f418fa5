//===- ModelBuilder.h - Shared helpers of the model builders ----*- C++ -*-===//
//
// Internal to lib/Models. Wraps an OpBuilder so that every op gets the
// current layer tag and a name location, and parameters become function
// arguments (before the data inputs) as they are first used.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_LIB_MODELS_MODELBUILDER_H
#define CLEAVE_LIB_MODELS_MODELBUILDER_H

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Models/Models.h"

#include "mlir/IR/Builders.h"

namespace mlir::cleave {

class ModelBuilder {
public:
  ModelBuilder(ModuleOp module, const ModelConfig &config);

  const ModelConfig &getConfig() const { return config; }
  Type getElementType() const { return elementType; }
  Type getLossElementType() const;

  /// A new trainable parameter of the model's element type, initialized as
  /// `init` says (by default GPT-2's normal with standard deviation 0.02).
  Value param(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
              InitAttr init = {});

  /// Initializations: GPT-2's for weights, zeros (biases), ones (norm
  /// scales), and GPT-2's for the projections that write the residual
  /// stream (0.02 / sqrt(2 * layers)).
  InitAttr getNormalInit() const;
  InitAttr getZerosInit() const;
  InitAttr getOnesInit() const;
  InitAttr getResidualInit() const;
  /// A new data input; inputs follow all parameters in the signature.
  Value input(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
              Type elementType, InputRole role);

  /// The `tokens` and `targets` inputs of a language model, [batch, seq] i32.
  std::pair<Value, Value> tokenInputs();

  /// Tags ops created from now on with `layer` and names their location
  /// `scope`.
  void setLayer(LayerAttr layer) { currentLayer = layer; }
  void setScope(llvm::StringRef scope);

  /// Creates an op with the current location and layer tag.
  template <typename OpTy, typename... Args>
  Value create(Args &&...args) {
    auto op = OpTy::create(builder, location, std::forward<Args>(args)...);
    op->setAttr(CleaveDialect::kLayerAttrName, currentLayer);
    return op->getResult(0);
  }

  /// x @ weight (+ bias), weight [in, out] named `name.weight` and
  /// initialized with `weightInit` (default getNormalInit), bias `name.bias`
  /// (zeros).
  Value linear(Value x, llvm::StringRef name, int64_t in, int64_t out,
               bool bias, InitAttr weightInit = {});
  /// Broadcasts a vector along the last dimension of `like`.
  Value broadcastLastDim(Value vector, Value like);
  /// [B, S, n * D] -> [B, n, S, D] with D = hidden / heads; n defaults to
  /// the heads (the key/value heads of grouped-query attention are fewer).
  Value splitHeads(Value x) { return splitHeads(x, config.heads); }
  Value splitHeads(Value x, int64_t n);
  /// [B, heads, S, D] -> [B, S, heads * D].
  Value mergeHeads(Value x);
  /// Mean token cross-entropy (in the loss element type) over all targets.
  /// The mean over positions of cross_entropy; columns from `classes` on
  /// pad the vocabulary and are masked.
  Value meanCrossEntropy(Value logits, Value targets, int64_t classes);

  /// Gives the function its final signature and returns `loss`.
  func::FuncOp finish(Value loss);

private:
  const ModelConfig &config;
  OpBuilder builder;
  func::FuncOp function;
  Block *body;
  Type elementType;
  Location location;
  LayerAttr currentLayer;
  unsigned numParams = 0;
  struct Parameter {
    unsigned index;
    std::string name;
    InitAttr init;
  };
  llvm::SmallVector<Parameter> params;
  llvm::SmallVector<std::pair<std::string, InputRole>> inputs;
};

/// Each builds its family's forward computation and returns the scalar loss.
Value buildGptLoss(ModelBuilder &b);
Value buildLlamaLoss(ModelBuilder &b);
Value buildMlpLoss(ModelBuilder &b);

} // namespace mlir::cleave

#endif // CLEAVE_LIB_MODELS_MODELBUILDER_H
