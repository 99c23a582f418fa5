//===- CleaveAttrs.td - Cleave attributes ------------------*- tablegen -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD

include "cleave/Dialect/Cleave/IR/CleaveBase.td"
include "mlir/IR/EnumAttr.td"

def Cleave_LayerKind : I32EnumAttr<"LayerKind", "part of a model a layer is",
    [I32EnumAttrCase<"Embed", 0, "embed">,
     I32EnumAttrCase<"Block", 1, "block">,
     I32EnumAttrCase<"Head", 2, "head">]> {
  let cppNamespace = "::mlir::cleave";
  let genSpecializedAttr = 0;
}

def Cleave_LayerAttr : Cleave_Attr<"Layer", "layer"> {
  let summary = "Layer provenance of an op";
  let description = [{
    Which part of the model an op belongs to: the embedding, transformer block
    `N` (counted from 0) or the head (final norm, output projection, loss).
    Recompute, pipeline stage assignment and the planner's per-layer search
    group ops by this attribute.

    ```mlir
    %0 = cleave.add %a, %b {cleave.layer = #cleave.layer<3>} : tensor<4xf32>
    %1 = cleave.softmax %c {cleave.layer = #cleave.layer<head>} : tensor<4xf32>
    ```
  }];
  let parameters = (ins "::mlir::cleave::LayerKind":$kind, "int64_t":$index);
  let hasCustomAssemblyFormat = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$block), [{
      return $_get($_ctxt, ::mlir::cleave::LayerKind::Block, block);
    }]>
  ];
  let extraClassDeclaration = [{
    static LayerAttr getEmbed(::mlir::MLIRContext *context) {
      return get(context, LayerKind::Embed, 0);
    }
    static LayerAttr getHead(::mlir::MLIRContext *context) {
      return get(context, LayerKind::Head, 0);
    }
    /// Position in model order: embed < block 0 < ... < block N < head.
    std::pair<int, int64_t> getOrderKey() const {
      return {static_cast<int>(getKind()), getIndex()};
    }
  }];
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD
