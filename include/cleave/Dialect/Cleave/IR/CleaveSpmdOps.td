//===- CleaveSpmdOps.td - SPMD ops -------------------------*- tablegen -*-===//
//
// What partitioning and pipelining emit: the device mesh, sharding
// constraints, collectives, per-device indexing, and pipeline transfers.
// Included by CleaveOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVESPMDOPS_TD
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVESPMDOPS_TD

//===----------------------------------------------------------------------===//
// Meshes, shardings and collectives
//===----------------------------------------------------------------------===//

def Cleave_MeshOp : Cleave_Op<"mesh", [Symbol]> {
  let summary = "A device mesh with named axes";
  let description = [{
    A module-level symbol naming the axes of the device mesh and their
    sizes, outermost first. Shardings and collectives refer to it by name.
    Axis names are unique; sizes are at least 1.

    ```mlir
    cleave.mesh @mesh(dp = 2, tp = 4)
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrArrayAttr:$axes,
                       DenseI64ArrayAttr:$sizes);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The size of axis `name`, or nullopt when the mesh has no such axis.
    std::optional<int64_t> getAxisSize(::llvm::StringRef name);
    /// The number of devices: the product of the axis sizes.
    int64_t getDeviceCount();
  }];
}

def Cleave_ShardOp : Cleave_Op<"shard", [Pure, SameOperandsAndResultType,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Ask for a value to be sharded a given way";
  let description = [{
    A sharding constraint placed by a user or a strategy pass: the result is
    the input, wanted with `sharding`. Propagation starts from constraints,
    highest `priority` first: 0 is the highest, and priorities are not
    negative. Dimensions the sharding leaves empty are open: propagation may
    split them. The sharding must fit the tensor (see `#cleave.sharding`).

    ```mlir
    %y = cleave.shard %x : tensor<8x64xf32>
        to #cleave.sharding<@mesh, [[dp], []]> priority 1
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, Cleave_ShardingAttr:$sharding,
                       DefaultValuedAttr<I64Attr, "0">:$priority);
  let results = (outs Cleave_Tensor:$result);
  // The type comes first: `#cleave.sharding<...> : type` would read as a
  // typed attribute.
  let assemblyFormat = [{
    $input `:` type($result) `to` $sharding (`priority` $priority^)? attr-dict
  }];
  let hasVerifier = 1;
}

def Cleave_ReductionKind : I32EnumAttr<"ReductionKind",
    "how a collective combines values",
    [I32EnumAttrCase<"sum", 0>, I32EnumAttrCase<"max", 1>]> {
  let cppNamespace = "::mlir::cleave";
}

class Cleave_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : Cleave_Op<mnemonic, !listconcat(traits, [Pure,
          DeclareOpInterfaceMethods<SymbolUserOpInterface>,
          DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                                    ["getFlops", "getCommunicatedBytes"]>])> {
  code extraCollectiveDeclaration = [{
    /// The number of devices in the group: the product of the axes' sizes
    /// (1 when the mesh cannot be found).
    int64_t getGroupSize();
  }];
  let extraClassDeclaration = extraCollectiveDeclaration;
}

def Cleave_AllReduceOp : Cleave_CollectiveOp<"all_reduce",
    [SameOperandsAndResultType]> {
  let summary = "Combine a value across the devices of mesh axes";
  let description = [{
    Every device of each group along `axes` ends with the sum (or max) of
    the group's values. Moves `2 (n - 1) / n` of the tensor per device (ring
    or tree, bandwidth-optimal).

    ```mlir
    %y = cleave.all_reduce %x on @mesh [tp] sum : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, Cleave_ReductionKind:$kind);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $input `on` $mesh custom<AxisList>($axes) $kind attr-dict `:` type($result)
  }];
}

def Cleave_AllGatherOp : Cleave_CollectiveOp<"all_gather"> {
  let summary = "Concatenate the devices' blocks along a dimension";
  let description = [{
    Each group along `axes` concatenates its blocks along `dim`, in device
    order: the result's `dim` is `n` times the input's. Moves `(n - 1) / n`
    of the result per device.

    ```mlir
    %y = cleave.all_gather %x on @mesh [dp] dim 0
        : tensor<4x64xf32> -> tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$dim);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $input `on` $mesh custom<AxisList>($axes) `dim` $dim attr-dict `:` type($input) `->`
    type($result)
  }];
}

def Cleave_ReduceScatterOp : Cleave_CollectiveOp<"reduce_scatter"> {
  let summary = "Combine across devices and keep one block each";
  let description = [{
    The sum (or max) over each group along `axes`, split along `dim`: device
    `i` keeps block `i`, so the result's `dim` is the input's divided by `n`.
    Moves `(n - 1) / n` of the input per device: half an all-reduce.

    ```mlir
    %y = cleave.reduce_scatter %x on @mesh [dp] sum dim 0
        : tensor<8x64xf32> -> tensor<4x64xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, Cleave_ReductionKind:$kind,
                       I64Attr:$dim);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $input `on` $mesh custom<AxisList>($axes) $kind `dim` $dim attr-dict `:` type($input) `->`
    type($result)
  }];
}

def Cleave_AllToAllOp : Cleave_CollectiveOp<"all_to_all"> {
  let summary = "Move the split from one dimension to another";
  let description = [{
    Each device splits its block along `split_dim` into `n` pieces, sends
    piece `j` to device `j` of its group along `axes` and concatenates what
    it receives along `concat_dim`. Moves `(n - 1) / n` of the tensor per
    device.

    ```mlir
    %y = cleave.all_to_all %x on @mesh [tp] split 1 concat 0
        : tensor<2x8xf32> -> tensor<8x2xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$split_dim,
                       I64Attr:$concat_dim);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $input `on` $mesh custom<AxisList>($axes) `split` $split_dim `concat` $concat_dim attr-dict
    `:` type($input) `->` type($result)
  }];
}

def Cleave_LocalSliceOp : Cleave_CollectiveOp<"local_slice"> {
  let summary = "Keep this device's block of a replicated value";
  let description = [{
    From a value every device of the group along `axes` holds whole, device
    `i` keeps block `i` along `dim`: going from replicated to sharded needs
    no communication.

    ```mlir
    %y = cleave.local_slice %x on @mesh [tp] dim 1
        : tensor<8x64xf32> -> tensor<8x16xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, FlatSymbolRefAttr:$mesh,
                       StrArrayAttr:$axes, I64Attr:$dim);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    $input `on` $mesh custom<AxisList>($axes) `dim` $dim attr-dict `:` type($input) `->`
    type($result)
  }];
}

def Cleave_WaitOp : Cleave_Op<"wait", [Pure, SameOperandsAndResultType,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getBytesRead", "getBytesWritten"]>]> {
  let summary = "The result of a collective that runs while other ops compute";
  let description = [{
    A collective (`all_reduce`, `all_gather` or `reduce_scatter`) read only
    by a `cleave.wait` is started where it stands and completes here: the
    ops between them compute while it moves data, and its result may be read
    only through the wait. Its input stays untouched until the wait, and the
    wait's result is the collective's buffer (`cleave-overlap-collectives`
    places both). The wait itself moves and computes nothing.

    ```mlir
    %g = cleave.all_gather %w on @mesh [dp] dim 0
        : tensor<16x64xf32> -> tensor<32x64xf32>
    %h = cleave.gelu %x : tensor<8x64xf32>
    %w_full = cleave.wait %g : tensor<32x64xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Cleave_DeviceIndexOp : Cleave_Op<"device_index", [Pure,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>, CostDefault]> {
  let summary = "This device's position in its group along mesh axes";
  let description = [{
    The index of the running device within its group along `axes`, the
    first axis outermost: the block index a sharding on those axes gives
    this device. Partitioned programs use it to offset indices into a split
    table (vocab-parallel embedding and loss).

    ```mlir
    %i = cleave.device_index on @mesh [tp] : tensor<i32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$mesh, StrArrayAttr:$axes);
  let results = (outs 0DTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    `on` $mesh custom<AxisList>($axes) attr-dict `:` type($result)
  }];
}

def Cleave_IotaOp : Cleave_Op<"iota", [Pure, CostDefault]> {
  let summary = "Each element's index along one dimension";
  let description = [{
    `result[i...] = i[dim]`: the positions along `dim`, e.g. the vocabulary
    ids of a row of logits.

    ```mlir
    %ids = cleave.iota dim 2 : tensor<2x16x512xi32>
    ```
  }];
  let arguments = (ins I64Attr:$dim);
  let results = (outs Cleave_IndexTensor:$result);
  let assemblyFormat = "`dim` $dim attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Pipeline transfers
//===----------------------------------------------------------------------===//

// A transfer reads and changes state outside the program (a message queue):
// never removed, merged or reordered with another transfer.
def Cleave_SendOp : Cleave_Op<"send", [MemoryEffects<[MemRead, MemWrite]>,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface,
                              ["getFlops", "getCommunicatedBytes"]>]> {
  let summary = "Send a value to another pipeline stage";
  let description = [{
    A point-to-point transfer between the per-stage programs
    `cleave-pipeline-split` makes: the value goes to stage `peer`, where the
    `cleave.recv` with the same `tag` receives it. Activations travel
    forward, their gradients backward. The transfer is a side effect: it is
    neither moved nor removed.

    ```mlir
    cleave.send %h to stage 1 tag 0 : tensor<8x16x32xf32>
    ```
  }];
  let arguments = (ins Cleave_Tensor:$input, I64Attr:$peer, I64Attr:$tag);
  let assemblyFormat = [{
    $input `to` `stage` $peer `tag` $tag attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

def Cleave_RecvOp : Cleave_Op<"recv", [MemoryEffects<[MemRead, MemWrite]>,
    DeclareOpInterfaceMethods<Cleave_CostOpInterface, ["getFlops"]>]> {
  let summary = "Receive a value from another pipeline stage";
  let description = [{
    The other end of the `cleave.send` on stage `peer` with the same `tag`.

    ```mlir
    %h = cleave.recv from stage 0 tag 0 : tensor<8x16x32xf32>
    ```
  }];
  let arguments = (ins I64Attr:$peer, I64Attr:$tag);
  let results = (outs Cleave_Tensor:$result);
  let assemblyFormat = [{
    `from` `stage` $peer `tag` $tag attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVESPMDOPS_TD
