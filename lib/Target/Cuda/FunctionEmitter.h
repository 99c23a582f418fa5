//===- FunctionEmitter.h - A function as kernels and host code --*- C++ -*-===//
//
// Internal to the emitter. A FunctionEmitter prints one function: its
// kernels, then a host function that binds the arguments, walks the ops in
// program order (kernel launches and runtime calls on arena pointers from
// the memory plan) and returns result pointers, then the Program descriptor
// the runtime reads. Its methods live with what they print: the walk and
// kernel launches in FunctionEmitter.cpp, one file per op family
// (ComputePatterns.cpp, CollectivePatterns.cpp), the descriptor in
// ProgramDescriptor.cpp. CudaEmitter.cpp prints the host program around
// the functions.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_LIB_TARGET_CUDA_FUNCTIONEMITTER_H
#define CLEAVE_LIB_TARGET_CUDA_FUNCTIONEMITTER_H

#include "EmitterSupport.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Target/Cuda/CudaEmitter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include <optional>
#include <string>

namespace mlir::cleave {

inline constexpr int64_t kMaxRank = 8; // cleave::rt::kMaxRank

/// The static shape of a ranked tensor value.
inline ArrayRef<int64_t> getShape(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

inline int64_t getElementCount(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

/// A cleave::rt::Shape initializer: {rank, {dims...}}.
inline std::string getShapeLiteral(ArrayRef<int64_t> shape) {
  std::string text = "{" + std::to_string(shape.size()) + ", {";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "}}";
}

/// A braced C++ initializer list of `values`.
inline std::string getArrayLiteral(ArrayRef<int64_t> values) {
  std::string text = "{";
  for (auto [i, value] : llvm::enumerate(values))
    text += (i ? ", " : "") + std::to_string(value);
  return text + "}";
}

/// What a stage's forward returns and its backward takes for one stash.
inline std::string getStashName(IntegerAttr id) {
  return "stash." + std::to_string(id.getInt());
}

/// The mesh of a partitioned module and the axis groups its collectives
/// use, numbered as the emitted calls name them.
struct MeshGroups {
  bool partitioned = false;
  SmallVector<std::string> groups;
  /// The size of the mesh's pp axis: stage s runs on pp index s % size.
  int64_t pipelineRanks = 1;
};

/// Emits one function: kernels first (into `kernels`), host code second.
class FunctionEmitter {
public:
  FunctionEmitter(func::FuncOp function, StringRef name, raw_ostream &kernels,
                  raw_ostream &host, CudaEmitterSummary &summary,
                  MeshGroups &meshGroups)
      : function(function), name(name.str()), kernels(kernels), host(host),
        summary(summary), meshGroups(meshGroups) {}

  /// The function, its kernels and its Program descriptor.
  LogicalResult emit();

private:
  // FunctionEmitter.cpp: values, op timing, dispatch, kernel launches and
  // runtime calls.
  std::string get(Value value) { return pointers.lookup(value); }
  /// Declares a typed pointer to each argument.
  LogicalResult bindArguments();
  /// Declares the arena pointer of each result of `op`.
  LogicalResult bindResults(Operation &op);
  /// The op's location as a string literal, for runtime errors.
  std::string getLocation(Operation &op);
  /// The runtime's DType enumerator of `value`'s elements.
  std::string getDType(Value value);
  /// The op's entry in the program's op table: what the profiler reports.
  std::string getOpInfo(Operation &op);
  /// An op, bracketed for the profiler unless it moves nothing.
  LogicalResult emitOp(Operation &op);
  /// An op's code: aliases, transfers, kernels, or a pattern's runtime call.
  LogicalResult emitOpBody(Operation &op);
  /// "rows, cols" of a row-wise op over the last dimension of `value`.
  std::string getRowsAndColumns(Value value);
  /// The bytes of one element of `value`.
  std::string getElementBytes(Value value);
  /// A named constant array in the host code; returns its name.
  std::string declareArray(StringRef type, ArrayRef<int64_t> values);
  /// Numbers `op` among the ops whose index errors the program reports.
  std::string addIndexSite(Operation &op);
  /// `cleave::rt::<function>(context, arguments..., location)`, checked.
  LogicalResult call(StringRef function, ArrayRef<std::string> arguments,
                     Operation &op);
  /// Writes the kernel computing `body` and launches it on `operands`,
  /// 128 bits at a time where every buffer allows it.
  LogicalResult emitKernelLaunch(Operation &op, const KernelBody &body,
                                 ValueRange operands);

  // ComputePatterns.cpp: compute and gradient ops as runtime calls.
  /// An op the runtime library implements (not a kernel the emitter
  /// writes): matmul, attention, norms, losses, data movement, ...
  LogicalResult emitLibraryCall(Operation &op);
  /// A call on the rows (the last dimension) of `rows`: its type and shape,
  /// then `inputs`, `epsilon` if given, and `outputs`.
  LogicalResult emitRowwise(StringRef function, Value rows, ValueRange inputs,
                            std::optional<APFloat> epsilon, ValueRange outputs,
                            Operation &op);
  /// A call on rows of `table` picked by `indices` (embedding, scatter-add):
  /// the element types of `rows` and the indices, the index count, the
  /// table's shape, then `pointers`, `result` and the op's index site.
  LogicalResult emitTableRows(StringRef function, Value rows, Value indices,
                              Value table, ValueRange pointers, Value result,
                              Operation &op);
  /// A call copying the box at `offsets` between `input` and `result` (pad,
  /// extract a slice).
  LogicalResult emitBox(StringRef function, Value input,
                        ArrayRef<int64_t> offsets, Value result, Operation &op);
  /// Declares a cleave::rt::GemmArgs for the (batched, transposed) product
  /// of `lhs` and `rhs` into `result`; returns its name.
  std::string declareGemmArgs(Value lhs, Value rhs, Value result,
                              bool transposeLhs, bool transposeRhs);
  /// A matmul as one gemm call; matmul_bias with its epilogue.
  LogicalResult emitMatmul(MatmulOp matmul);
  LogicalResult emitMatmulBias(MatmulBiasOp matmul);
  /// Declares a cleave::rt::AttentionArgs for q, k, v; returns its name.
  std::string declareAttentionArgs(Value query, Value key, Value value,
                                   bool causal, double scale);
  /// Attention and its gradient through AttentionArgs.
  LogicalResult emitAttention(AttentionOp attention);
  LogicalResult emitAttentionGrad(AttentionGradOp grad);
  /// A reduction of `kind` (Sum, Mean, Max) over `dims`, as a bit mask.
  LogicalResult emitReduce(Operation &op, StringRef kind,
                           ArrayRef<int64_t> dims);
  /// A concat as one slice insertion per input.
  LogicalResult emitConcat(ConcatOp concat);
  /// A non-splat constant: host data copied into the arena when reached.
  LogicalResult emitDenseConstant(ConstantOp constant);

  // CollectivePatterns.cpp: pipeline transfers and collectives.
  /// The index of the axis group `axes` in the module's group table.
  std::string getGroup(ArrayAttr axes);
  /// cleave.send / cleave.recv of `value` with the rank of stage `peer`
  /// along the pp axis.
  LogicalResult emitTransfer(Operation &op, Value value, int64_t peer,
                             int64_t tag);
  /// A collective or device_index: a runtime call on the rank's
  /// sub-communicator of the op's axes.
  LogicalResult emitCollective(Operation &op);
  /// A collective read through a cleave.wait: started here, with those
  /// started right after it, and waited for at the wait.
  LogicalResult emitStart(Operation &op);
  /// Tells the runtime which of `values` the function returns as pending
  /// sums, now that they are computed.
  void emitResultsReady(ValueRange values);
  /// Waits for the reductions of the gradients `op` is the first to read.
  void emitAwaitInputs(Operation &op);

  // ProgramDescriptor.cpp: what the runtime reads about the program.
  /// The per-rank split of the argument or result with attributes `attrs`,
  /// as the runtime reads it ("dp;" for [[dp], []]), "nullptr" when the
  /// function is not partitioned. A pending sum is an error unless
  /// `mayBePending`.
  FailureOr<std::string> getSplit(DictionaryAttr attrs, Location loc,
                                  bool mayBePending = false);
  /// `learning_rate` -> `LearningRate`: the runtime's enumerator.
  static std::string getEnumeratorName(StringRef irName);
  /// A parameter's `cleave.init` as the runtime's InitRule initializer.
  static std::string getInitLiteral(InitAttr init);
  /// The argument whose rows the token ids `tokens` index: the table of an
  /// embedding that reads them (through casts), if any.
  std::optional<unsigned> getIndexedTable(BlockArgument tokens);
  /// The argument, result, index-site and op tables and the Program.
  LogicalResult emitDescriptor(int64_t arenaBytes);

  func::FuncOp function;
  /// The function's C++ identifier.
  std::string name;
  raw_ostream &kernels;
  raw_ostream &host;
  CudaEmitterSummary &summary;
  MeshGroups &meshGroups;
  DenseMap<Value, std::string> pointers;
  /// Results returned as pending sums, by value: the training loop hears of
  /// each once it is computed (resultReady), to start completing it while
  /// the rest of the function runs.
  DenseMap<Value, SmallVector<unsigned>> pendingResults;
  /// An update's gradient arguments not yet read: the first op that reads
  /// one first waits for its reduction (awaitInput).
  DenseSet<Value> unreadGradients;
  SmallVector<std::string> indexSites;
  /// The op table's initializers, by op number.
  SmallVector<std::string> opInfos;
  /// Every timed op's arena results, "{offset, count, dtype}", in op order:
  /// CLEAVE_CHECK_FINITE reads them after each op.
  SmallVector<std::string> opResults;
  /// Each cleave.recv's "{group, peer, tag, bytes}", in program order: the
  /// pipeline executor posts a program's receives early.
  SmallVector<std::string> receives;
  int64_t nextValue = 0;
  int64_t nextArray = 0;
};

} // namespace mlir::cleave

#endif // CLEAVE_LIB_TARGET_CUDA_FUNCTIONEMITTER_H
