//===- CleaveOps.h - Cleave operations --------------------------*- C++ -*-===//

#ifndef CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_H
#define CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/ShardingRule.h"

namespace mlir::cleave {

/// Number of elements of a statically shaped tensor type (1 for scalars), as
/// double so that large models do not overflow.
double getNumElements(Type type);
/// Bytes of a statically shaped tensor type; sub-byte elements take a byte.
double getTotalBytes(Type type);
/// Sum of getTotalBytes over `types`.
double getTotalBytes(TypeRange types);

/// The i1 tensor type with the shape of `type`.
Type getBoolTensorType(Type type);

/// The type of attention's logsumexp for a query of `queryType`
/// ([batch..., S, D]): [batch..., S] in f32, or f64 for f64 queries.
Type getAttentionStatisticsType(Type queryType);

/// Query heads per key/value head of attention with `query` [b..., H, S, D]
/// and `key` [b..., Hkv, T, D] (rank >= 4): H / Hkv (1 without grouped-query
/// attention).
int64_t getAttentionGroupSize(RankedTensorType query, RankedTensorType key);

/// Callback that starts an error diagnostic; empty when no diagnostic is
/// wanted (builders).
using EmitErrorFn = llvm::function_ref<InFlightDiagnostic()>;

/// Result type of a matmul, or failure (with a diagnostic through emitError
/// when given) for incompatible operands.
FailureOr<RankedTensorType> inferMatmulType(RankedTensorType lhs,
                                            RankedTensorType rhs,
                                            bool transposeLhs,
                                            bool transposeRhs,
                                            EmitErrorFn emitError);
/// Result type of reducing `dims` of `input` (dims assumed valid).
RankedTensorType inferReduceType(RankedTensorType input,
                                 ArrayRef<int64_t> dims);
/// Result type of transposing `input` by `perm` (perm assumed valid).
RankedTensorType inferTransposeType(RankedTensorType input,
                                    ArrayRef<int64_t> perm);

/// Whether the blocks of `type` split along `dim` lie one after another (no
/// elements before `dim`): what a collective started ahead of its readers
/// moves.
bool hasContiguousBlocks(RankedTensorType type, int64_t dim);
/// Whether `op` is an all_reduce, all_gather or reduce_scatter read only by
/// a cleave.wait: started where it stands, finished at the wait.
bool isStartedCollective(Operation *op);

/// True for ops a fused kernel computes element by element: the elementwise
/// ops, compare, select, cast and fill. Broadcasts of kernel inputs can be
/// fused too but are not elementwise.
bool isFusibleElementwise(Operation *op);

class ShardingAttr;

/// Checks `sharding` against the tensor `type` it is attached to at
/// `anchor`: the mesh exists, axes are its own and used once, split
/// dimensions are divisible. Errors are located at `anchor`.
LogicalResult verifySharding(Operation *anchor, ShardingAttr sharding,
                             Type type, SymbolTableCollection *symbols);

/// Fails with an error naming `pass` unless `module` has neither a
/// `cleave.plan` nor a mesh: a plan is recorded once, on an unpartitioned
/// model.
LogicalResult verifyUnplanned(ModuleOp module, StringRef pass);

/// One axis of a mesh as a person types it.
struct MeshAxisSpec {
  std::string name;
  int64_t size;
};

/// The most devices a mesh may have: far past any machine built, and a
/// bound on the tables that meshes size (schedules, plans, rank lists).
constexpr int64_t kMaxMeshDevices = int64_t(1) << 24;

/// Parses a mesh as every tool and pass option spells it, `dp=2,tp=2`
/// (outermost axis first); on failure, `message` says why.
FailureOr<SmallVector<MeshAxisSpec>> parseMeshSpec(StringRef text,
                                                   std::string &message);

/// `dp=2,tp=2`: the spelling parseMeshSpec reads.
std::string formatMeshSpec(ArrayRef<MeshAxisSpec> axes);

/// `[dp, tp]`: the mesh axes of a collective (custom<AxisList>).
ParseResult parseAxisList(OpAsmParser &parser, ArrayAttr &axes);
void printAxisList(OpAsmPrinter &printer, Operation *op, ArrayAttr axes);

/// Gives every computing op ShardingRuleOpInterface (the rules live in
/// CleaveShardingRules.cpp). The dialect calls this when it is loaded.
void attachShardingRuleModels(MLIRContext &context);

/// The per-device form of `op`: ShardingRuleOpInterface::partition.
FailureOr<SmallVector<Value>> partitionOp(Operation *op, OpBuilder &builder,
                                          const LocalOpContext &context,
                                          ValueRange operands);

/// Gives the differentiable ops DifferentiableOpInterface (the rules live in
/// CleaveOpGradients.cpp). The dialect calls this when it is loaded.
void attachDifferentiableOpModels(MLIRContext &context);

} // namespace mlir::cleave

#include "cleave/Dialect/Cleave/IR/CleaveEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "cleave/Dialect/Cleave/IR/CleaveAttrs.h.inc"

#include "cleave/Dialect/Cleave/IR/CleaveInterfaces.h.inc"

#define GET_OP_CLASSES
#include "cleave/Dialect/Cleave/IR/CleaveOps.h.inc"

namespace mlir::cleave {

/// The `cleave.role` of `function`, if it has one.
std::optional<FunctionRole> getFunctionRole(Operation *function);

/// Sets the `cleave.role` of `function`.
void setFunctionRole(Operation *function, FunctionRole role);

/// The argument of `function` with `cleave.input_role` `role`, if any.
std::optional<unsigned> findInputByRole(FunctionOpInterface function,
                                        InputRole role);

/// The first result of `function` with `cleave.output_role` `role`, if any.
std::optional<unsigned> findResultByRole(FunctionOpInterface function,
                                         OutputRole role);

/// Whether result `index` of `function` has `cleave.output_role` `role`.
bool hasOutputRole(FunctionOpInterface function, unsigned index,
                   OutputRole role);

/// Whether argument `index` of `function` has `cleave.input_role` `role`.
bool hasInputRole(FunctionOpInterface function, unsigned index, InputRole role);

/// The number of transformer blocks the ops under `root` are tagged with,
/// after checking that the tags are 0..N-1 without a gap: tags size the
/// planner's and stage assignment's tables, so a stray large one must not.
/// Emits an error at the op of the first tag past N.
FailureOr<int64_t> getDenseBlockCount(Operation *root);

/// Rewrites the attributes of every argument of `function` with `update`
/// (argument index, its attributes to change in place) in one step. Setting
/// them one argument at a time rebuilds, and keeps in the context, the
/// whole list each time: quadratic time and memory in the arguments.
void updateArgAttrs(FunctionOpInterface function,
                    llvm::function_ref<void(unsigned, NamedAttrList &)> update);
/// The same for the results.
void updateResultAttrs(
    FunctionOpInterface function,
    llvm::function_ref<void(unsigned, NamedAttrList &)> update);

/// The name (`cleave.output`, `cleave.input`) of the gradient of parameter
/// `param`: a gradient is identified by its parameter, as optimizer state is.
std::string getGradientName(StringRef param);

/// The parameter whose gradient is named `gradient` (see getGradientName).
StringRef getGradientParam(StringRef gradient);

} // namespace mlir::cleave

#endif // CLEAVE_DIALECT_CLEAVE_IR_CLEAVEOPS_H
