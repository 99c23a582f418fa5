//===- Passes.td - Cleave passes ---------------------------*- tablegen -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD
#define CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def CleavePrintCost : Pass<"cleave-print-cost", "mlir::ModuleOp"> {
  let summary = "Print parameters, FLOPs and activation bytes per function";
  let description = [{
    For every function in the module, prints the parameter count (elements of
    the arguments marked `cleave.param`), FLOPs per op kind and in total, the
    part of them done as matrix products (`matmul_flops`; attention's two
    products count in full, causal or not, as Megatron-LM counts them) and
    activation bytes (bytes of every tensor the function's ops produce,
    reshapes excluded since they move no data).

    The report goes to standard output before the module; add `-o /dev/null`
    to see the report alone. With `json=true` it prints one JSON object per
    function and line:

    ```json
    {"function": "forward", "params": 124439808, "flops": ..., "matmul_flops": ...,
     "activation_bytes": ..., "bytes_read": ...,
     "ops": {"cleave.matmul": {"count": 73, "flops": ...}, ...}}
    ```

    FLOPs and bytes are computed as `double`; values below 2^53 are exact.
  }];
  let options = [
    Option<"json", "json", "bool", /*default=*/"false",
           "Print JSON (one object per function and line) instead of a table">
  ];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

def CleaveVerifyLayerTags : Pass<"cleave-verify-layer-tags", "mlir::ModuleOp"> {
  let summary = "Check that every cleave op carries its layer provenance";
  let description = [{
    Fails with an error located at each `cleave` op that has no
    `cleave.layer` attribute. `cleave.constant` is exempt: constants belong to
    no layer, since folding creates them and any consumer can rematerialize
    its own copy. Passes that rewrite IR must keep layer tags, and
    the per-layer passes (recompute, pipeline stages, the planner) rely on
    them; running this after a pipeline proves that nothing was dropped.
  }];
  let dependentDialects = ["mlir::cleave::CleaveDialect"];
}

#endif // CLEAVE_DIALECT_CLEAVE_TRANSFORMS_PASSES_TD
