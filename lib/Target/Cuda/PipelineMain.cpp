//===- PipelineMain.cpp - The schedule table of a pipeline's main ---------===//
//
// A module of pipeline stages runs as one process per device; each pp rank
// follows its row of the schedule. The schedule is computed here, checked by
// simulation, and written out as data: per rank, the (forward or backward,
// stage, micro-batch) actions in order, each row preceded by a comment that
// spells it the way `cleavec schedule` prints it.
//
//===----------------------------------------------------------------------===//

#include "EmitterSupport.h"

#include "cleave/Dialect/Cleave/IR/CleaveDialect.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Pipeline/Schedule.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;
using namespace mlir::cleave;

/// Whether, for every two ranks, the order in which one sends to the other
/// (its actions in schedule order, each program's transfers in program
/// order) is the order in which the other receives: NCCL pairs transfers
/// by order, MPI by tag.
static bool transfersInOrder(const pipeline::Schedule &schedule,
                             ArrayRef<func::FuncOp> forward,
                             ArrayRef<func::FuncOp> backward) {
  using Transfer = std::pair<int64_t, int64_t>; // tag, micro-batch
  std::map<std::pair<int64_t, int64_t>, SmallVector<Transfer>> sent, received;
  int64_t ranks = schedule.stages;
  for (auto [rank, actions] : llvm::enumerate(schedule.ranks))
    for (const pipeline::Action &action : actions) {
      int64_t stage = schedule.getStage(rank, action.chunk);
      func::FuncOp program = action.kind == pipeline::Action::Kind::Backward
                                 ? backward[stage]
                                 : forward[stage];
      program.walk([&](Operation *op) {
        if (auto send = dyn_cast<SendOp>(op))
          sent[{static_cast<int64_t>(rank), send.getPeer() % ranks}].push_back(
              {send.getTag(), action.microBatch});
        if (auto recv = dyn_cast<RecvOp>(op))
          received[{recv.getPeer() % ranks, static_cast<int64_t>(rank)}]
              .push_back({recv.getTag(), action.microBatch});
      });
    }
  return sent == received;
}

FailureOr<std::string> mlir::cleave::emitPipelineTable(
    ModuleOp module, const llvm::DenseMap<Operation *, std::string> &identifiers,
    ScheduleAttr scheduleAttr) {
  int64_t ranks = scheduleAttr.getRanks();
  int64_t microBatches = scheduleAttr.getMicroBatches();
  StringRef scheduleName = scheduleAttr.getKind();
  SmallVector<func::FuncOp> forward, backward, applies;
  for (func::FuncOp function : module.getOps<func::FuncOp>()) {
    if (function.isDeclaration())
      continue;
    if (auto stage = function->getAttrOfType<IntegerAttr>(
            CleaveDialect::kStageAttrName)) {
      std::optional<FunctionRole> role = getFunctionRole(function);
      if (role != FunctionRole::StageForward &&
          role != FunctionRole::StageBackward)
        return function.emitError("a pipeline stage's function needs the "
                                  "role stage_forward or stage_backward");
      SmallVector<func::FuncOp> &list =
          role == FunctionRole::StageBackward ? backward : forward;
      if (stage.getInt() < 0 || stage.getInt() >= 4096)
        return function.emitError("pipeline stage ")
               << stage.getInt() << " is out of range";
      if (static_cast<int64_t>(list.size()) <= stage.getInt())
        list.resize(stage.getInt() + 1);
      if (list[stage.getInt()])
        return function.emitError("a second function for pipeline stage ")
               << stage.getInt();
      list[stage.getInt()] = function;
    }
    if (auto rank = function->getAttrOfType<IntegerAttr>(
            CleaveDialect::kPipelineRankAttrName)) {
      if (rank.getInt() < 0 || rank.getInt() >= ranks)
        return function.emitError("pipeline rank ")
               << rank.getInt() << " is outside the pp axis of size " << ranks;
      if (static_cast<int64_t>(applies.size()) <= rank.getInt())
        applies.resize(rank.getInt() + 1);
      applies[rank.getInt()] = function;
    }
  }
  int64_t stages = forward.size();
  if (stages == 0 || backward.size() != forward.size() ||
      llvm::is_contained(forward, func::FuncOp()) ||
      llvm::is_contained(backward, func::FuncOp()))
    return module.emitError("a pipeline needs a forward and a backward "
                            "function for every stage");
  if (static_cast<int64_t>(applies.size()) != ranks ||
      llvm::is_contained(applies, func::FuncOp()))
    return module.emitError("a pipeline needs an update for each of its ")
           << ranks << " pp ranks (cleave-optimizer)";
  if (stages != ranks * scheduleAttr.getVirtualStages())
    return module.emitError("")
           << stages << " pipeline stages are not the schedule's " << ranks
           << " pp ranks x " << scheduleAttr.getVirtualStages()
           << " virtual stages";
  std::optional<pipeline::ScheduleKind> kind =
      pipeline::parseScheduleKind(scheduleName);
  if (!kind)
    return module.emitError("unknown pipeline schedule '")
           << scheduleName << "': expected gpipe, 1f1b or interleaved";
  std::string message;
  std::optional<pipeline::Schedule> schedule = pipeline::buildSchedule(
      *kind, ranks, microBatches, stages / ranks, message);
  if (!schedule)
    return module.emitError(message);
  if (!pipeline::simulate(*schedule).completes)
    return module.emitError("the ") << scheduleName << " schedule cannot complete";

  // The runtime tags its own transfers (gradient parts, parameter copies)
  // from kFirstRuntimeTag on.
  constexpr int64_t kFirstRuntimeTag = 8192;
  WalkResult tags = module.walk([&](SendOp send) {
    if (send.getTag() >= kFirstRuntimeTag) {
      send.emitOpError("tag ") << send.getTag() << " is beyond the "
                               << kFirstRuntimeTag << " a pipeline may use";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (tags.wasInterrupted())
    return failure();
  bool inOrder = transfersInOrder(*schedule, forward, backward);

  std::string text;
  llvm::raw_string_ostream os(text);
  auto list = [&](StringRef name, ArrayRef<func::FuncOp> functions) {
    os << "const cleave::rt::Program *const " << name << "[] = {";
    for (func::FuncOp function : functions)
      os << "&k_" << identifiers.lookup(function) << "_program, ";
    os << "};\n";
  };
  os << "// The pipeline: " << stages << " stages over " << ranks
     << " pp ranks, schedule " << scheduleName << ", " << microBatches
     << " micro-batches per step.\n";
  list("k_pipeline_forward", forward);
  list("k_pipeline_backward", backward);
  list("k_pipeline_apply", applies);
  for (auto [rank, actions] : llvm::enumerate(schedule->ranks)) {
    os << "// rank " << rank << ":";
    for (const pipeline::Action &action : actions)
      os << " " << pipeline::formatAction(*schedule, action);
    os << "\nconst cleave::rt::PipelineAction k_pipeline_rank" << rank
       << "[] = {\n   ";
    for (const pipeline::Action &action : actions)
      os << " {" << (action.kind == pipeline::Action::Kind::Backward ? "true" : "false")
         << ", " << schedule->getStage(rank, action.chunk) << ", "
         << action.microBatch << "},";
    os << "\n};\n";
  }
  os << "const cleave::rt::PipelineAction *const k_pipeline_actions[] = {";
  for (int64_t rank = 0; rank < ranks; ++rank)
    os << "k_pipeline_rank" << rank << ", ";
  os << "};\nconst int k_pipeline_action_counts[] = {";
  for (const auto &actions : schedule->ranks)
    os << actions.size() << ", ";
  os << "};\nconst cleave::rt::PipelineProgram k_pipeline = {\n    "
     << getStringLiteral(scheduleName) << ", " << ranks << ", " << stages << ", "
     << microBatches
     << ", k_pipeline_forward, k_pipeline_backward, k_pipeline_apply,\n"
        "    k_pipeline_actions, k_pipeline_action_counts, "
     << (inOrder ? "true" : "false") << "};\n\n";
  return text;
}
