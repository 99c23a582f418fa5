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

def Cleave_ShardingAttr : Cleave_Attr<"Sharding", "sharding"> {
  let summary = "How a tensor is split over a device mesh";
  let description = [{
    Names a `cleave.mesh` and lists, for every tensor dimension, the mesh
    axes that split it, outermost first (an empty list: not split). `partial`
    lists the axes along which the value is a pending sum: each device holds
    an addend, and an all-reduce over those axes completes it. A fully
    replicated value has only empty lists.

    ```mlir
    // [batch, seq, hidden]: batch split on dp, hidden on tp.
    #cleave.sharding<@mesh, [[dp], [], [tp]]>
    // A row-parallel matmul's output before its all-reduce.
    #cleave.sharding<@mesh, [[dp], [], []], partial = [tp]>
    ```

    Where a sharding meets a tensor (`cleave.shard`, a function argument),
    the verifier checks that the mesh exists, every axis is one of its axes,
    no axis appears twice, and every split dimension is divisible by the
    product of its axes' sizes.
  }];
  let parameters = (ins "::mlir::FlatSymbolRefAttr":$mesh,
                        "::mlir::ArrayAttr":$dims,
                        "::mlir::ArrayAttr":$partial);
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    /// The axes splitting dimension `dim`.
    ::llvm::SmallVector<::llvm::StringRef> getDimAxes(unsigned dim) const;
    /// The axes of the pending partial sum.
    ::llvm::SmallVector<::llvm::StringRef> getPartialAxes() const;
  }];
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEATTRS_TD
