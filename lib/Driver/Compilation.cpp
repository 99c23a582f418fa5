//===- Compilation.cpp - Model in, program out ----------------------------===//

#include "cleave/Driver/Driver.h"

#include "DriverConfig.h"
#include "cleave/Dialect/Cleave/IR/CleaveOps.h"
#include "cleave/Driver/InitParams.h"
#include "cleave/Driver/Planning.h"
#include "cleave/Import/HuggingFace.h"
#include "cleave/Pipeline/Schedule.h"
#include "cleave/Target/Cuda/CudaEmitter.h"
#include "cleave/runtime/Checkpoint.h"
#include "cleave/runtime/Tokens.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::cleave;
using namespace mlir::cleave::driver;

llvm::raw_ostream &mlir::cleave::driver::error() {
  return llvm::WithColor::error(llvm::errs(), "cleavec");
}

namespace {

/// The compiler command line for `source` -> `executable`.
FailureOr<SmallVector<std::string>> getBuildCommand(const BuildOptions &build,
                                                    StringRef source,
                                                    StringRef executable) {
  SmallVector<std::string> command;
  if (build.optLevel > 3) {
    error() << "--opt-level must be 0 to 3, got " << build.optLevel << "\n";
    return failure();
  }
  std::string level = "-O" + std::to_string(build.optLevel);
  SmallVector<StringRef> mpiLibraries;
  StringRef(CLEAVEC_MPI_LIBRARIES).split(mpiLibraries, ';', -1, false);
  if (build.target == "cpu") {
    command = {CLEAVEC_CXX_COMPILER, level, "-std=c++17", "-fopenmp",
               "-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
               executable.str(), CLEAVEC_RUNTIME_CPU_LIBRARY,
               CLEAVEC_RUNTIME_LIBRARY, CLEAVEC_OPENBLAS_LIBRARY,
               // The OpenMP OpenBLAS, not whichever the system default is.
               "-Wl,-rpath," CLEAVEC_OPENBLAS_DIR};
    for (StringRef library : mpiLibraries)
      command.push_back(library.str());
    return command;
  }
  if (StringRef(CLEAVEC_RUNTIME_CUDA_LIBRARY).empty()) {
    error() << "the CUDA backend was not built: nvcc was not found when the "
               "project was configured\n";
    return failure();
  }
  command = {CLEAVEC_NVCC, level, "-std=c++17"};
  SmallVector<StringRef> archs;
  StringRef(build.cudaArchs).split(archs, ',', -1, false);
  for (StringRef arch : archs) {
    if (arch.empty() || !llvm::all_of(arch, llvm::isDigit)) {
      error() << "--cuda-arch wants numbers like 80,90, got '"
              << build.cudaArchs << "'\n";
      return failure();
    }
    command.push_back(
        ("-gencode=arch=compute_" + arch + ",code=sm_" + arch).str());
  }
  command.insert(command.end(),
                 {"-I" CLEAVEC_RUNTIME_INCLUDE_DIR, source.str(), "-o",
                  executable.str(), CLEAVEC_RUNTIME_CUDA_LIBRARY,
                  CLEAVEC_RUNTIME_LIBRARY, "-lcublasLt", "-lcublas",
                  CLEAVEC_NCCL_LIBRARY});
  for (StringRef library : mpiLibraries)
    command.push_back(library.str());
  return command;
}

/// The function to differentiate: `entry`; empty when the module marks one
/// with `cleave.role` forward (the passes find it by that) or has several;
/// else the module's only one.
std::string getForwardName(ModuleOp module, StringRef entry) {
  if (!entry.empty())
    return entry.str();
  if (llvm::any_of(module.getOps<func::FuncOp>(), [](func::FuncOp function) {
        return getFunctionRole(function) == FunctionRole::Forward;
      }))
    return "";
  SmallVector<func::FuncOp> bodies;
  for (func::FuncOp function : module.getOps<func::FuncOp>())
    if (!function.isDeclaration())
      bodies.push_back(function);
  return bodies.size() == 1 ? bodies.front().getSymName().str() : "";
}

/// The function a compile starts from: `function`, or the one with
/// cleave.role forward; null when there is none (the passes then say so).
func::FuncOp findForward(ModuleOp module, StringRef function) {
  for (func::FuncOp candidate : module.getOps<func::FuncOp>())
    if (function.empty() ? getFunctionRole(candidate) == FunctionRole::Forward
                         : candidate.getSymName() == function)
      return candidate.isDeclaration() ? func::FuncOp() : candidate;
  return {};
}

/// A training program draws its batches from a token file into the model's
/// tokens input: a model without one is refused before it compiles.
LogicalResult checkTrainable(func::FuncOp forward) {
  if (!forward || findInputByRole(forward, InputRole::Tokens))
    return success();
  return forward.emitError()
         << "a training step draws its batches from a token file into the "
            "input with cleave.input_role tokens, and @"
         << forward.getSymName()
         << " takes none; build its gradient program instead (cleavec build "
            "--gradients)";
}

/// A checkpoint to resume must hold every parameter of the model with its
/// shape: another model's is refused before the compile, not after.
LogicalResult checkResumable(func::FuncOp forward, StringRef checkpointDir,
                             const ::cleave::rt::CheckpointIndex &index) {
  if (!forward)
    return success();
  for (BlockArgument argument : forward.getArguments()) {
    auto name = forward.getArgAttrOfType<StringAttr>(
        argument.getArgNumber(), CleaveDialect::kParamAttrName);
    auto type = dyn_cast<RankedTensorType>(argument.getType());
    if (!name || !type)
      continue;
    auto tensor = index.tensors.find(name.str());
    if (tensor == index.tensors.end())
      return forward.emitError("checkpoint '")
             << checkpointDir << "' has no parameter '" << name.getValue()
             << "' of this model: it was saved from another model";
    if (ArrayRef<int64_t>(tensor->second.shape) != type.getShape())
      return forward.emitError("checkpoint '")
             << checkpointDir << "' holds parameter '" << name.getValue()
             << "' as " << ::cleave::rt::formatShape(tensor->second.shape)
             << ", this model's is " << type
             << ": it was saved from another model";
  }
  return success();
}

/// Creates `directory` and its parents; reports why it cannot.
LogicalResult createDirectory(StringRef directory) {
  std::error_code ec = llvm::sys::fs::create_directories(directory);
  if (ec)
    error() << "cannot create '" << directory << "': " << ec.message() << "\n";
  return failure(static_cast<bool>(ec));
}

/// Runs `command` to its end; returns its exit status (negative when it
/// could not run or crashed, with the reason in `executeError`).
int execute(ArrayRef<std::string> command, std::string &executeError) {
  SmallVector<StringRef> args(command.begin(), command.end());
  return llvm::sys::ExecuteAndWait(args.front(), args, std::nullopt, {}, 0, 0,
                                   &executeError);
}

/// --compile-to: writes the module of a phase to DIR/NAME.PHASE.mlir.
LogicalResult writeModule(ModuleOp module, StringRef directory,
                          StringRef modelPath, CompilePhase phase,
                          llvm::raw_ostream &log) {
  if (failed(createDirectory(directory)))
    return failure();
  SmallString<256> path(directory);
  llvm::sys::path::append(path, llvm::sys::path::stem(modelPath) + "." +
                                    getCompilePhaseName(phase).str() + ".mlir");
  std::string message;
  auto output = openOutputFile(path, &message);
  if (!output) {
    error() << message << "\n";
    return failure();
  }
  module.print(output->os());
  output->keep();
  log << "cleavec: wrote " << path << "\n";
  return success();
}

} // namespace

/// Parses the model at `path` through `sourceMgr` (whose diagnostic
/// handler the caller keeps while it uses the module); prints errors.
OwningOpRef<ModuleOp>
mlir::cleave::driver::parseModel(MLIRContext &context, StringRef path,
                                 llvm::SourceMgr &sourceMgr) {
  std::string message;
  auto file = openInputFile(path, &message);
  if (!file) {
    error() << message << "\n";
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, &context);
}

LogicalResult mlir::cleave::driver::compileModel(
    MLIRContext &context, TrainingPipelineOptions &options,
    const CompileRequest &request, llvm::raw_ostream &log,
    std::string &executablePath) {
  StringRef modelPath = request.modelPath, directory = request.directory;
  const BuildOptions &build = request.build;
  std::string invalid;
  if (failed(verifyTrainingPipelineOptions(options, invalid))) {
    error() << invalid << "\n";
    return failure();
  }
  if (!request.initParams.empty() &&
      (request.printPipeline || options.compileTo != CompilePhase::Kernels)) {
    error() << "--init-params writes the parameters of a built program: not "
               "with --print-pipeline or --compile-to\n";
    return failure();
  }
  if (request.autoPlan && failed(checkPlanRequest(*request.autoPlan)))
    return failure();
  if (build.target != "cpu" && build.target != "cuda") {
    error() << "--target must be cpu or cuda, got '" << build.target << "'\n";
    return failure();
  }
  if (directory.empty() && !request.printPipeline &&
      options.compileTo == CompilePhase::Kernels) {
    error() << "missing the output directory\n";
    return failure();
  }

  ParsedModel parsed(context, modelPath);
  OwningOpRef<ModuleOp> &module = parsed.module;
  if (!module)
    return failure();
  std::string message;
  if (options.function.empty())
    options.function = getForwardName(*module, request.entry);
  if (options.mode == CompileMode::Train) {
    func::FuncOp forward = findForward(*module, options.function);
    if (failed(checkTrainable(forward)) ||
        (request.resumeIndex &&
         failed(
             checkResumable(forward, request.resumeDir, *request.resumeIndex))))
      return failure();
  }

  // The planned phase runs first: the phases after it are built from the
  // plan it records.
  auto addPlanning = [&](OpPassManager &pm) {
    if (request.autoPlan)
      addAutoParallel(pm, *request.autoPlan, options.function);
    else
      buildPlanningPipeline(pm, options);
  };
  PassManager planning(&context, ModuleOp::getOperationName());
  addPlanning(planning);
  // The whole pipeline as it runs, for --print-pipeline and the log: the
  // planned phase from the options as given, before the plan replaces them.
  OpPassManager whole(ModuleOp::getOperationName());
  addPlanning(whole);
  // A plan's errors concern options, not the module: do not print it.
  bool printOp = context.shouldPrintOpOnDiagnostic();
  context.printOpOnDiagnostic(false);
  LogicalResult planned = planning.run(*module);
  context.printOpOnDiagnostic(printOp);
  if (failed(planned))
    return failure();
  auto plan = (*module)->getAttrOfType<PlanAttr>(CleaveDialect::kPlanAttrName);
  setPlanOptions(plan, options);
  if (request.autoPlan)
    describePlan(plan, log);
  if (failed(verifyTrainingPipelineOptions(options, message))) {
    error() << message << "\n";
    return failure();
  }
  int64_t pipelineRanks = options.getPipelineRanks();
  if (pipelineRanks && !request.initParams.empty()) {
    error() << "--init-params with a pp axis is not supported: the "
               "parameters live on several stages (train initializes them "
               "from --seed)\n";
    return failure();
  }
  PassManager pm(&context, ModuleOp::getOperationName());
  if (options.compileTo != CompilePhase::Planned) {
    buildPlannedPipeline(pm, options);
    buildPlannedPipeline(whole, options);
  }
  if (request.printPipeline) {
    whole.printAsTextualPipeline(log);
    log << "\n";
    return success();
  }
  if (failed(pm.run(*module)))
    return failure();
  if (options.compileTo != CompilePhase::Kernels) {
    if (directory.empty()) {
      module->print(log);
      return success();
    }
    return writeModule(*module, directory, modelPath, options.compileTo, log);
  }

  if (failed(createDirectory(directory)))
    return failure();
  StringRef stem = llvm::sys::path::stem(modelPath);
  SmallString<256> source(directory), executable(directory);
  llvm::sys::path::append(source,
                          stem + (build.target == "cuda" ? ".cu" : ".cpp"));
  llvm::sys::path::append(executable, stem);

  CudaEmitterOptions emitterOptions;
  if (options.mode == CompileMode::Forward)
    emitterOptions.entry = request.entry;
  CudaEmitterSummary summary;
  {
    auto output = openOutputFile(source, &message);
    if (!output) {
      error() << message << "\n";
      return failure();
    }
    if (failed(
            translateToCuda(*module, output->os(), emitterOptions, &summary)))
      return failure();
    output->keep();
    // Closed here: the compiler reads the file next.
  }

  log << "cleavec: pipeline: ";
  whole.printAsTextualPipeline(log);
  log << "\ncleavec: entry '" << summary.entry << "': " << summary.kernels
      << " fused kernels, " << summary.libraryCalls << " runtime calls, arena "
      << summary.arenaBytes << " bytes\n"
      << "cleavec: wrote " << source << "\n";

  if (pipelineRanks) {
    pipeline::ScheduleStats stats = pipeline::simulate(*pipeline::buildSchedule(
        *pipeline::parseScheduleKind(options.schedule), pipelineRanks,
        options.microBatches, options.virtualStages, message));
    log << "cleavec: schedule: " << options.schedule << " over "
        << pipelineRanks << " ranks x " << options.virtualStages
        << " virtual stages, " << options.microBatches
        << " micro-batches; activation slots per rank:";
    for (int64_t peak : stats.peakInFlight)
      log << " " << peak;
    log << "; bubble " << llvm::format("%.4f", stats.bubble) << " simulated\n";
  }
  if (!request.initParams.empty()) {
    auto function = module->lookupSymbol<func::FuncOp>(summary.entry);
    FailureOr<int64_t> count =
        writeInitialParams(function, request.initParams, request.seed);
    if (failed(count))
      return failure();
    log << "cleavec: wrote " << *count << " initial parameters (seed "
        << request.seed << ") to " << request.initParams << "\n";
  }

  FailureOr<SmallVector<std::string>> command =
      getBuildCommand(build, source, executable);
  if (failed(command))
    return failure();
  log << "cleavec: build: " << joinCommand(*command) << "\n";
  if (build.emitOnly)
    return success();
  log.flush();
  std::string executeError;
  int status = execute(*command, executeError);
  if (status != 0) {
    error() << "the " << build.target << " build failed"
            << (executeError.empty() ? "" : ": " + executeError)
            << " (exit status " << status << ")\n";
    return failure();
  }
  log << "cleavec: built " << executable << "\n";
  executablePath = executable.str().str();
  return success();
}

std::string mlir::cleave::driver::joinCommand(ArrayRef<std::string> command) {
  std::string text;
  for (const std::string &word : command)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

int64_t mlir::cleave::driver::getMeshDevices(StringRef mesh) {
  std::string message;
  int64_t devices = 1;
  if (FailureOr<SmallVector<MeshAxisSpec>> axes = parseMeshSpec(mesh, message);
      succeeded(axes))
    for (const MeshAxisSpec &axis : *axes)
      devices *= axis.size;
  return devices;
}

/// Runs `command`, passing its output through; returns its exit status.
int mlir::cleave::driver::runCommand(ArrayRef<std::string> command,
                                     llvm::raw_ostream &log) {
  log << "cleavec: run: " << joinCommand(command) << "\n";
  log.flush();
  std::string executeError;
  int status = execute(command, executeError);
  if (status == -1)
    error() << "cannot run '" << command.front() << "': " << executeError
            << "\n";
  else if (status < 0)
    error() << "'" << command.front() << "' crashed"
            << (executeError.empty() ? "" : ": " + executeError) << "\n";
  return status < 0 ? 1 : status;
}

int mlir::cleave::driver::prepareTextTokens(StringRef textPath,
                                            StringRef output,
                                            StringRef tokenizerDir,
                                            llvm::raw_ostream &log) {
  if (output.empty()) {
    error() << "prepare-text needs -o TOKENS.bin\n";
    return 1;
  }
  if (!tokenizerDir.empty()) {
    // Tokenizers are the Hugging Face library's to run: a script of ours
    // calls it and writes the token file.
    const char *chosen = std::getenv("CLEAVE_PYTHON");
    std::string python = chosen && *chosen ? chosen : "python3";
    if (!llvm::sys::path::is_absolute(python)) {
      llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName(python);
      if (!found) {
        error() << "prepare-text --tokenizer runs Python with the tokenizers "
                   "package, but cannot find '"
                << python << "' (set CLEAVE_PYTHON)\n";
        return 1;
      }
      python = *found;
    }
    return runCommand({python, CLEAVEC_TOKENIZE_SCRIPT, "--tokenizer",
                       tokenizerDir.str(), "--text", textPath.str(), "-o",
                       output.str()},
                      log);
  }
  uint64_t count = 0;
  ::cleave::rt::Status status =
      ::cleave::rt::prepareByteTokens(textPath.str(), output.str(), &count);
  if (!status.ok()) {
    error() << status.message() << "\n";
    return 1;
  }
  log << "cleavec: wrote " << count << " byte tokens (vocabulary 256) to "
      << output << "\n";
  return 0;
}

int mlir::cleave::driver::exportHuggingFace(StringRef checkpointDir,
                                            StringRef likeDir, StringRef output,
                                            llvm::raw_ostream &log) {
  if (output.empty()) {
    error() << "export-hf needs -o DIR\n";
    return 1;
  }
  if (llvm::Error failure =
          hf::exportCheckpoint(checkpointDir, likeDir, output)) {
    error() << llvm::toString(std::move(failure)) << "\n";
    return 1;
  }
  log << "cleavec: wrote " << output << " (model.safetensors and the files of "
      << likeDir << ")\n";
  return 0;
}
