//===- CudaEmitter.cpp - The host program ---------------------------------===//
//
// The file the emitter writes: the runtime's headers, every function (its
// kernels, host code and descriptor, by FunctionEmitter), the mesh and its
// axis groups, a pipeline's tables, and main, which runs the entry program
// (and the update that goes with it) or the pipeline.
//
//===----------------------------------------------------------------------===//

#include "cleave/Target/Cuda/CudaEmitter.h"

#include "FunctionEmitter.h"

#include "cleave/Dialect/Cleave/IR/CleaveOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

#include <cstdio>

using namespace mlir;
using namespace mlir::cleave;

namespace {

/// A C++ identifier for symbol `name`: other characters become '_', and a
/// name that could clash with a keyword, `main` or the runtime's namespace
/// gets a prefix. `taken` keeps identifiers unique within the file.
std::string getIdentifier(StringRef name, llvm::StringSet<> &taken) {
  static const llvm::StringSet<> kReserved = {
      "main",   "cleave", "auto",   "bool",    "break",  "case",   "char",
      "class",  "const",  "default", "delete", "do",     "double", "else",
      "enum",   "float",  "for",    "if",      "int",    "long",   "namespace",
      "new",    "return", "short",  "signed",  "sizeof", "static", "struct",
      "switch", "this",   "template", "typedef", "union", "unsigned", "void",
      "while",  "arena",  "context", "arguments", "results"};
  std::string identifier;
  for (char c : name)
    identifier += llvm::isAlnum(c) ? c : '_';
  if (identifier.empty() || llvm::isDigit(identifier[0]) ||
      kReserved.contains(identifier) || identifier[0] == '_')
    identifier = "fn_" + identifier;
  std::string unique = identifier;
  for (int suffix = 1; !taken.insert(unique).second; ++suffix)
    unique = identifier + "_" + std::to_string(suffix);
  return unique;
}

/// The function main runs: `entry`, else the step (`cleave.role` step), else
/// the model (`forward`), else the module's only function.
FailureOr<func::FuncOp> findEntry(ModuleOp module, StringRef entry) {
  SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
  llvm::erase_if(functions, [](func::FuncOp f) { return f.isDeclaration(); });
  if (functions.empty())
    return module.emitError("module has no function body to emit");
  if (!entry.empty()) {
    for (func::FuncOp function : functions)
      if (function.getSymName() == entry)
        return function;
    return module.emitError("no entry function '")
           << entry << "'; choose one with --cleave-entry";
  }
  for (FunctionRole role : {FunctionRole::Step, FunctionRole::Forward})
    for (func::FuncOp function : functions)
      if (getFunctionRole(function) == role)
        return function;
  if (functions.size() > 1)
    return module.emitError("no function has cleave.role step or forward; "
                            "choose the entry with --cleave-entry");
  return functions.front();
}

} // namespace

LogicalResult mlir::cleave::translateToCuda(ModuleOp module, raw_ostream &os,
                                            const CudaEmitterOptions &options,
                                            CudaEmitterSummary *summary) {
  CudaEmitterSummary local;
  CudaEmitterSummary &totals = summary ? *summary : local;
  // A pipeline's stages stand in for the training step: the first stage's
  // forward is the entry the summary reports.
  auto schedule =
      module->getAttrOfType<ScheduleAttr>(CleaveDialect::kScheduleAttrName);
  bool isPipeline = static_cast<bool>(schedule);
  func::FuncOp firstStage;
  for (func::FuncOp function : module.getOps<func::FuncOp>()) {
    auto stage =
        function->getAttrOfType<IntegerAttr>(CleaveDialect::kStageAttrName);
    if (stage && !isPipeline)
      return function.emitError("pipeline stages need the module's "
                                "cleave.schedule (cleave-pipeline-split)");
    if (stage && stage.getInt() == 0 &&
        getFunctionRole(function) == FunctionRole::StageForward)
      firstStage = function;
  }
  FailureOr<func::FuncOp> entry =
      isPipeline && firstStage ? FailureOr<func::FuncOp>(firstStage)
                               : findEntry(module, options.entry);
  if (failed(entry))
    return failure();
  totals.entry = entry->getSymName().str();

  // A module partitioned by cleave-partition runs one process per device of
  // its mesh.
  MeshGroups meshGroups;
  SmallVector<MeshOp> meshes(module.getOps<MeshOp>());
  module.walk([&](Operation *op) {
    if (isa<AllReduceOp, AllGatherOp, ReduceScatterOp, AllToAllOp, LocalSliceOp,
            DeviceIndexOp, SendOp, RecvOp>(op))
      meshGroups.partitioned = true;
    if (auto function = dyn_cast<func::FuncOp>(op))
      for (unsigned i = 0; i < function.getNumArguments(); ++i)
        if (function.getArgAttr(i, CleaveDialect::kBlockAttrName))
          meshGroups.partitioned = true;
  });
  if ((meshGroups.partitioned || isPipeline) && meshes.size() != 1)
    return module.emitError("a partitioned module needs exactly one "
                            "cleave.mesh, found ")
           << meshes.size();
  if (isPipeline) {
    std::optional<int64_t> ranks = meshes.front().getAxisSize("pp");
    if (ranks != schedule.getRanks())
      return meshes.front().emitError("a pipeline over ")
             << schedule.getRanks()
             << " ranks needs a mesh with an axis pp of that size";
    meshGroups.partitioned = true;
    meshGroups.pipelineRanks = *ranks;
  }

  std::string kernels, host, entryIdentifier;
  llvm::raw_string_ostream kernelStream(kernels), hostStream(host);
  llvm::StringSet<> identifiers;
  DenseMap<Operation *, std::string> identifierOf;
  int64_t entryArena = 0;
  for (func::FuncOp function : module.getOps<func::FuncOp>()) {
    if (function.isDeclaration())
      continue;
    std::string identifier = getIdentifier(function.getSymName(), identifiers);
    if (failed(FunctionEmitter(function, identifier, kernelStream, hostStream,
                               totals, meshGroups)
                   .emit()))
      return failure();
    identifierOf[function] = identifier;
    if (function == *entry) {
      entryArena = totals.arenaBytes;
      entryIdentifier = identifier;
    }
  }
  totals.arenaBytes = entryArena;
  std::string pipelineTable;
  if (isPipeline) {
    FailureOr<std::string> table =
        emitPipelineTable(module, identifierOf, schedule);
    if (failed(table))
      return failure();
    pipelineTable = std::move(*table);
  }
  // A function that updates its own arguments is a training step, and so
  // is a gradient step next to an update that does: their main runs the
  // training loop.
  auto updatesArguments = [](func::FuncOp function) {
    for (unsigned i = 0; i < function.getNumResults(); ++i)
      if (function.getResultAttr(i, CleaveDialect::kUpdatesAttrName))
        return true;
    return false;
  };
  bool isTrainingStep = updatesArguments(*entry);
  std::string applyProgram = "nullptr";
  func::FuncOp apply;
  for (func::FuncOp function : module.getOps<func::FuncOp>())
    if (getFunctionRole(function) == FunctionRole::Update &&
        !function->hasAttr(CleaveDialect::kPipelineRankAttrName)) {
      if (apply)
        return function.emitError("a second update next to ")
               << apply.getSymNameAttr();
      apply = function;
    }
  if (!isTrainingStep && apply && apply != *entry && updatesArguments(apply)) {
    isTrainingStep = true;
    applyProgram = "&k_" + identifierOf[apply] + "_program";
  }

  os << "// Generated by cleave-translate --cleave-to-cpp; do not edit.\n"
     << "// One source for both targets: nvcc builds it for NVIDIA GPUs, a\n"
     << "// host C++ compiler with OpenMP for the CPU (see the runtime's\n"
     << "// cleave/runtime/Portability.h). Comments name the source ops.\n\n"
     << "#include \"cleave/runtime/Communicator.h\"\n"
     << "#include \"cleave/runtime/Portability.h\"\n"
     << "#include \"cleave/runtime/Program.h\"\n\n"
     << "namespace {\n\n"
     << kernels;
  if (meshGroups.partitioned) {
    MeshOp mesh = meshes.front();
    os << "// The mesh the program was partitioned for: one process per "
          "device.\n"
       << "const char *const k_mesh_axes[] = {";
    for (Attribute axis : mesh.getAxes())
      os << getStringLiteral(cast<StringAttr>(axis).getValue()) << ", ";
    os << "};\nconst int64_t k_mesh_sizes[] = "
       << getArrayLiteral(mesh.getSizes()) << ";\n"
       << "const char *const k_mesh_groups[] = {";
    for (const std::string &group : meshGroups.groups)
      os << getStringLiteral(group) << ", ";
    if (meshGroups.groups.empty())
      os << "\"\"";
    os << "};\nconst cleave::rt::MeshSpec k_mesh = {k_mesh_axes, k_mesh_sizes, "
       << mesh.getAxes().size() << ", k_mesh_groups, " << meshGroups.groups.size()
       << "};\n\n";
  }
  os << host << pipelineTable << "} // namespace\n";
  if (options.emitMain && isPipeline)
    os << "\nint main(int argc, char **argv) {\n"
       << "  return cleave::rt::runPipelineTrainingMain(k_pipeline, argc, "
          "argv);\n}\n";
  else if (options.emitMain)
    os << "\nint main(int argc, char **argv) {\n"
       << "  return cleave::rt::"
       << (isTrainingStep ? "runTrainingMain" : "runProgramMain") << "(k_"
       << entryIdentifier << "_program, "
       << (isTrainingStep ? applyProgram + ", " : std::string())
       << "argc, argv);\n}\n";
  return success();
}

void mlir::cleave::registerToCudaTranslation() {
  static llvm::cl::opt<std::string> entry(
      "cleave-entry",
      llvm::cl::desc("Function the generated main runs (default: the only "
                     "function, or 'forward')"),
      llvm::cl::init(""));
  static llvm::cl::opt<bool> noMain(
      "cleave-no-main",
      llvm::cl::desc("Do not emit main(); link the program into your own"),
      llvm::cl::init(false));
  auto translate = [](Operation *op, raw_ostream &os) -> LogicalResult {
    auto module = dyn_cast<ModuleOp>(op);
    if (!module)
      return op->emitError("expected a builtin.module");
    CudaEmitterOptions options;
    options.entry = entry;
    options.emitMain = !noMain;
    return translateToCuda(module, os, options);
  };
  auto dialects = [](DialectRegistry &registry) {
    registry.insert<CleaveDialect, func::FuncDialect>();
  };
  // One source serves both targets: nvcc builds it for GPUs, a host
  // compiler for the CPU.
  TranslateFromMLIRRegistration cpp(
      "cleave-to-cpp",
      "Emit C++ that builds for the CPU and, with nvcc, for NVIDIA GPUs, "
      "from a fused, memory-planned cleave module",
      translate, dialects);
  TranslateFromMLIRRegistration cuda(
      "cleave-to-cuda", "The same as --cleave-to-cpp", translate, dialects);
}
