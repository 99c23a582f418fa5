//===- PipelineExecutor.cpp - One training step through pipeline stages ---===//
//
// Each rank of the `pp` axis runs its list of actions (the schedule the
// emitter wrote down): the forward or backward pass of one micro-batch
// through one of its stages. Transfers between stages happen inside the
// stage programs (cleave.send / cleave.recv). What crosses actions on one
// rank lives here: a forward's stashes are copied into a slot of that
// (stage, micro-batch) until its backward takes them, so a rank holds as
// many slots as it has micro-batches in flight (1F1B: at most p). After
// the schedule every rank applies its stages' accumulated gradients. A
// parameter that several stages read (gpt's tied embedding) is applied by
// the first of them: the others send it their accumulated parts of its
// gradient once per step (as Megatron-LM sums the embedding's), and it
// sends them the new value after the update.
//
//===----------------------------------------------------------------------===//

#include "GradientReducer.h"
#include "Trace.h"
#include "TrainingState.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

namespace cleave::rt {
namespace {

/// Tags of the gradient parts before the update and of the parameter
/// copies after it, apart from the stage programs' transfer tags (MPI
/// promises tags up to 32767).
constexpr int64_t kGradientPartTag = 8192;
constexpr int64_t kParamCopyTag = 16384;

class PipelineExecutor final : public StepExecutor {
public:
  PipelineExecutor(const PipelineProgram &pipeline, Context &context)
      : pipeline(pipeline), context(context) {}
  ~PipelineExecutor() override { context.setResultListener(nullptr); }

  const Program &getMainProgram() const override {
    return *pipeline.forward[0];
  }
  const MeshSpec *getMesh() const override { return pipeline.forward[0]->mesh; }
  uint64_t getArenaBytes() const override { return arenaBytes; }
  bool isLogger() const override { return logger; }

  int64_t getBuiltMicroBatches() const override {
    return pipeline.microBatches;
  }

  std::set<std::string> getModelParameters() const override {
    std::set<std::string> names;
    for (int s = 0; s < pipeline.numStages; ++s)
      for (const Program *program : {pipeline.forward[s], pipeline.backward[s]})
        TrainingState::addParameters(*program, names);
    for (int r = 0; r < pipeline.numRanks; ++r)
      TrainingState::addParameters(*pipeline.apply[r], names);
    return names;
  }

  Status bind(TrainingState &state, int64_t microBatches,
              const ReductionOptions &reductions) override {
    communicator = context.getCommunicator();
    if (!communicator)
      return Status::error("a pipeline runs one process per device of its "
                           "mesh: start it with mpirun");
    const Mesh &mesh = communicator->getMesh();
    for (size_t axis = 0; axis < mesh.axes.size(); ++axis)
      if (mesh.axes[axis] == "pp")
        ppAxis = static_cast<int64_t>(axis);
    if (ppAxis < 0 || mesh.sizes[ppAxis] != pipeline.numRanks)
      return Status::error("the pipeline's mesh has no pp axis of size " +
                           std::to_string(pipeline.numRanks));
    if (microBatches != pipeline.microBatches)
      return Status::error(
          "this pipeline was built for " +
          std::to_string(pipeline.microBatches) +
          " micro-batches: pass --micro-batches " +
          std::to_string(pipeline.microBatches) + " (as given to cleavec)");
    if (communicator->matchesTransfersByOrder() && !pipeline.transfersInOrder)
      return Status::error(
          std::string("under the ") + pipeline.schedule +
          " schedule two ranks send and receive in different orders, which "
          "NCCL cannot pair: run with CLEAVE_COLLECTIVES=mpi");
    std::vector<int64_t> coordinates = communicator->getCoordinates();
    ppIndex = coordinates[ppAxis];
    // The last stage computes the loss; its rank at the origin of the
    // other axes speaks for the job.
    coordinates[ppAxis] = 0;
    logger = ppIndex == pipeline.numRanks - 1 &&
             std::all_of(coordinates.begin(), coordinates.end(),
                         [](int64_t c) { return c == 0; });

    stages.resize(pipeline.numStages);
    for (int s = 0; s < pipeline.numStages; ++s) {
      if (!isMine(s))
        continue;
      Stage &stage = stages[s];
      CLEAVE_RETURN_IF_ERROR(
          bindProgram(state, *pipeline.forward[s], stage.forwardArguments));
      CLEAVE_RETURN_IF_ERROR(
          bindProgram(state, *pipeline.backward[s], stage.backwardArguments));
      CLEAVE_RETURN_IF_ERROR(matchStashes(*pipeline.forward[s],
                                          *pipeline.backward[s], stage));
    }
    const Program &apply = *pipeline.apply[ppIndex];
    CLEAVE_RETURN_IF_ERROR(bindProgram(state, apply, applyArguments));
    // Gradients this rank computes a part of but another rank applies
    // accumulate here too before they are sent.
    for (int s = 0; s < pipeline.numStages; ++s) {
      if (!isMine(s))
        continue;
      const Program &backward = *pipeline.backward[s];
      for (int i = 0; i < backward.numResults; ++i) {
        const ResultSpec &result = backward.results[i];
        void *unused = nullptr;
        if (result.role == OutputRole::Gradient && result.pendingGroup < 0)
          CLEAVE_RETURN_IF_ERROR(state.add(result.tensor, ArgumentKind::Input,
                                           result.split, unused));
      }
    }
    // Data-parallel sums the programs leave to the loop (once per step).
    reducer = std::make_unique<GradientReducer>(context, *communicator,
                                                microBatches, reductions);
    for (int s = 0; s < pipeline.numStages; ++s)
      if (isMine(s))
        for (const Program *program :
             {pipeline.forward[s], pipeline.backward[s]})
          CLEAVE_RETURN_IF_ERROR(reducer->add(*program, state));
    bool starts = apply.startsCollectives;
    for (int s = 0; s < pipeline.numStages; ++s)
      starts = starts || pipeline.forward[s]->startsCollectives ||
               pipeline.backward[s]->startsCollectives;
    if (reducer->empty())
      reducer.reset();
    // The overlap switch covers the pipeline's receives too.
    postEarly = reductions.overlap;
    CLEAVE_RETURN_IF_ERROR(
        applyReductionOptions(reductions, reducer != nullptr,
                              starts || pipeline.numStages > 1, communicator));
    context.setResultListener(reducer.get());
    lossIndex =
        findResult(*pipeline.forward[pipeline.numStages - 1], OutputRole::Loss);
    normIndex = findResult(apply, OutputRole::GradNorm);
    if (lossIndex < 0)
      return Status::error("the last stage returns no loss "
                           "(cleave.output_role loss)");
    CLEAVE_RETURN_IF_ERROR(planSharing(state));
    if (const char *directory = std::getenv("CLEAVE_TRACE"); directory && *directory)
      Trace::start(directory, communicator->getRank());
    return Status::success();
  }

  /// Ranks without the first stage do not take the tokens: the first
  /// stage's program has their shape.
  const Program &getTokensProgram() const override {
    return *pipeline.forward[0];
  }

  Status runStep(TrainingState &state, int64_t microBatches,
                 const BatchLoader &loadBatch, uint8_t *arena, double &loss,
                 double &norm) override {
    loss = 0;
    norm = std::nan("");
    double stepStart = Trace::now();
    std::set<std::string> accumulated;
    const PipelineAction *actions = pipeline.actions[ppIndex];
    for (int i = 0; i < pipeline.numActions[ppIndex]; ++i) {
      const PipelineAction &action = actions[i];
      Stage &stage = stages[action.stage];
      double start = Trace::now();
      CLEAVE_RETURN_IF_ERROR(postNextReceives(actions, i));
      CLEAVE_RETURN_IF_ERROR(loadBatch(action.microBatch));
      if (!action.backward) {
        const Program &forward = *pipeline.forward[action.stage];
        if (reducer)
          reducer->setRunning(&forward);
        CLEAVE_RETURN_IF_ERROR(
            runProgram(context, forward, stage.forwardArguments, results, arena));
        CLEAVE_RETURN_IF_ERROR(keepStashes(stage, action.microBatch));
        if (action.stage == pipeline.numStages - 1 &&
            !(reducer && reducer->reducesLoss())) {
          double microLoss = 0;
          CLEAVE_RETURN_IF_ERROR(
              readResult(context, forward, results, lossIndex, microLoss));
          loss += microLoss / static_cast<double>(microBatches);
        }
      } else {
        const Program &backward = *pipeline.backward[action.stage];
        CLEAVE_RETURN_IF_ERROR(takeStashes(stage, action.microBatch));
        if (reducer)
          reducer->setRunning(&backward);
        CLEAVE_RETURN_IF_ERROR(runProgram(context, backward,
                                       stage.backwardArguments, results, arena));
        CLEAVE_RETURN_IF_ERROR(accumulateGradients(
            context, state, backward, results, microBatches, accumulated));
        releaseStashes(stage, action.microBatch);
      }
      if (Trace *trace = Trace::get())
        trace->add("compute", getActionName(action), start, Trace::now());
    }
    CLEAVE_RETURN_IF_ERROR(communicator->completeSends("the pipeline's sends"));
    // A tied table's parts are summed over dp before they cross over pp.
    if (reducer)
      for (const GradientPart &part : gradientParts)
        CLEAVE_RETURN_IF_ERROR(
            reducer->onInputRead(state.getPointer(part.name)));
    CLEAVE_RETURN_IF_ERROR(sumGradientParts(state));

    const Program &apply = *pipeline.apply[ppIndex];
    {
      TraceScope trace("compute", "update");
      if (reducer)
        reducer->setRunning(&apply);
      CLEAVE_RETURN_IF_ERROR(
          runProgram(context, apply, applyArguments, results, arena));
      if (reducer) {
        CLEAVE_RETURN_IF_ERROR(reducer->finishStep());
        if (reducer->reducesLoss())
          CLEAVE_RETURN_IF_ERROR(reducer->readLoss(loss));
      }
      if (normIndex >= 0)
        CLEAVE_RETURN_IF_ERROR(
            readResult(context, apply, results, normIndex, norm));
      CLEAVE_RETURN_IF_ERROR(
          applyUpdates(context, apply, applyArguments, results));
    }
    CLEAVE_RETURN_IF_ERROR(copyParameters(state));
    if (Trace *trace = Trace::get()) {
      trace->add("step", "step", stepStart, Trace::now());
      CLEAVE_RETURN_IF_ERROR(trace->write());
    }
    return Status::success();
  }

private:
  const Program &getProgram(const PipelineAction &action) const {
    return action.backward ? *pipeline.backward[action.stage]
                           : *pipeline.forward[action.stage];
  }

  /// Posts the receives of the action after action `i`, so that their
  /// bytes arrive while action i computes; not those with a peer and tag
  /// action i also receives (receives pair up in posting order), and of
  /// several with one peer and tag only the first.
  Status postNextReceives(const PipelineAction *actions, int i) {
    if (!postEarly || i + 1 >= pipeline.numActions[ppIndex])
      return Status::success();
    const Program &current = getProgram(actions[i]);
    const Program &next = getProgram(actions[i + 1]);
    std::set<std::tuple<int, int64_t, int64_t>> taken;
    for (int r = 0; r < current.numReceives; ++r) {
      const TransferSpec &receive = current.receives[r];
      taken.insert({receive.group, receive.peer, receive.tag});
    }
    for (int r = 0; r < next.numReceives; ++r) {
      const TransferSpec &receive = next.receives[r];
      if (taken.insert({receive.group, receive.peer, receive.tag}).second)
        CLEAVE_RETURN_IF_ERROR(
            communicator->postReceive(receive.group, receive.peer, receive.tag,
                                      receive.bytes, "a receive posted early"));
    }
    return Status::success();
  }

  /// One stage on this rank: its programs' arguments and the stash slots of
  /// its micro-batches in flight.
  struct Stage {
    std::vector<void *> forwardArguments, backwardArguments;
    /// Per stash: the forward result and the backward argument.
    std::vector<std::pair<int, int>> stashes;
    std::vector<size_t> stashBytes;
    std::map<int, std::vector<std::unique_ptr<DeviceBuffer>>> inFlight;
    std::vector<std::vector<std::unique_ptr<DeviceBuffer>>> freeSlots;
  };

  /// A parameter this rank sends to, or receives from, another pp rank
  /// after the update.
  struct ParameterCopy {
    std::string name;
    size_t bytes;
    int64_t peer;
    int64_t tag;
    bool send;
  };

  /// A part of a gradient this rank sends to, or receives from, the rank
  /// that applies it.
  struct GradientPart {
    std::string name;
    DType dtype;
    size_t bytes;
    int64_t peer;
    int64_t tag;
    bool send;
  };

  bool isMine(int stage) const { return stage % pipeline.numRanks == ppIndex; }

  /// As `cleavec schedule` spells it: F<micro-batch>[.<chunk>].
  std::string getActionName(const PipelineAction &action) const {
    std::string name = std::string(action.backward ? "B" : "F") +
                       std::to_string(action.microBatch);
    if (pipeline.numStages > pipeline.numRanks)
      name += "." + std::to_string(action.stage / pipeline.numRanks);
    return name;
  }

  Status bindProgram(TrainingState &state, const Program &program,
                     std::vector<void *> &arguments) {
    if (program.mesh != getMesh())
      return Status::error(std::string("program '") + program.name +
                           "' disagrees with the pipeline on the mesh");
    arenaBytes = std::max(arenaBytes, program.arenaBytes);
    return state.bind(program, arguments);
  }

  Status matchStashes(const Program &forward, const Program &backward,
                      Stage &stage) {
    for (int a = 0; a < backward.numArguments; ++a) {
      if (backward.arguments[a].kind != ArgumentKind::Stash)
        continue;
      int r = findResult(forward, backward.arguments[a].tensor.name);
      if (r < 0)
        return Status::error(std::string("program '") + backward.name +
                             "' takes '" + backward.arguments[a].tensor.name +
                             "', which '" + forward.name + "' does not return");
      stage.stashes.push_back({r, a});
      stage.stashBytes.push_back(getByteSize(forward.results[r].tensor));
    }
    return Status::success();
  }

  /// Copies the forward's stashes of `microBatch` into a free slot.
  Status keepStashes(Stage &stage, int microBatch) {
    std::vector<std::unique_ptr<DeviceBuffer>> slot;
    if (!stage.freeSlots.empty()) {
      slot = std::move(stage.freeSlots.back());
      stage.freeSlots.pop_back();
    } else {
      for (size_t bytes : stage.stashBytes) {
        slot.push_back(std::make_unique<DeviceBuffer>(context));
        CLEAVE_RETURN_IF_ERROR(slot.back()->allocate(bytes, "a stash slot"));
      }
    }
    for (size_t k = 0; k < stage.stashes.size(); ++k)
      CLEAVE_RETURN_IF_ERROR(context.copyOnDevice(
          slot[k]->get(), results[stage.stashes[k].first], stage.stashBytes[k]));
    stage.inFlight[microBatch] = std::move(slot);
    return Status::success();
  }

  Status takeStashes(Stage &stage, int microBatch) {
    auto slot = stage.inFlight.find(microBatch);
    if (slot == stage.inFlight.end())
      return Status::error("the schedule runs the backward of micro-batch " +
                           std::to_string(microBatch) +
                           " before its forward");
    for (size_t k = 0; k < stage.stashes.size(); ++k)
      stage.backwardArguments[stage.stashes[k].second] = slot->second[k]->get();
    return Status::success();
  }

  void releaseStashes(Stage &stage, int microBatch) {
    auto slot = stage.inFlight.find(microBatch);
    stage.freeSlots.push_back(std::move(slot->second));
    stage.inFlight.erase(slot);
  }

  /// What crosses pp ranks around the update. A parameter's owner is the
  /// rank whose update takes it: every other rank whose stages compute a
  /// part of its gradient sends that part there first, and every other
  /// rank whose stages read it receives the new value after. Also tells the
  /// state where every tensor of the model lives, for checkpoints.
  Status planSharing(TrainingState &state) {
    std::map<std::string, TrainingState::PlacedTensor> model;
    // The rank whose update applies each gradient.
    std::map<std::string, int64_t> gradientOwners;
    for (int r = 0; r < pipeline.numRanks; ++r) {
      const Program &apply = *pipeline.apply[r];
      for (int i = 0; i < apply.numArguments; ++i) {
        const ArgumentSpec &argument = apply.arguments[i];
        if (argument.role == InputRole::Gradient)
          gradientOwners[argument.tensor.name] = r;
        if (argument.kind != ArgumentKind::Param &&
            argument.kind != ArgumentKind::State)
          continue;
        model[argument.tensor.name] = {argument.tensor, argument.kind,
                                       argument.split ? argument.split : "", r};
      }
    }
    std::map<std::string, std::set<int64_t>> readers;
    for (int s = 0; s < pipeline.numStages; ++s)
      for (const Program *program : {pipeline.forward[s], pipeline.backward[s]})
        for (int i = 0; i < program->numArguments; ++i)
          if (program->arguments[i].kind == ArgumentKind::Param)
            readers[program->arguments[i].tensor.name].insert(
                s % pipeline.numRanks);
    int64_t tag = kParamCopyTag;
    for (const auto &[name, ranks] : readers) {
      ++tag;
      auto owner = model.find(name);
      if (owner == model.end())
        return Status::error("no stage's update takes parameter '" + name +
                             "'");
      size_t bytes = getByteSize(owner->second.spec);
      if (ranks.count(ppIndex) &&
          getByteSize(*state.find(name)) != bytes)
        return Status::error("'" + name + "' differs in size between the "
                             "stages that share it");
      for (int64_t rank : ranks) {
        if (rank == owner->second.ppIndex)
          continue;
        if (ppIndex == owner->second.ppIndex)
          copies.push_back({name, bytes, rank, tag, true});
        else if (ppIndex == rank)
          copies.push_back({name, bytes, owner->second.ppIndex, tag, false});
      }
    }
    // Gradients the backward passes of several ranks return in parts.
    std::map<std::string, std::set<int64_t>> computers;
    std::map<std::string, TensorSpec> gradients;
    for (int s = 0; s < pipeline.numStages; ++s) {
      const Program &backward = *pipeline.backward[s];
      for (int i = 0; i < backward.numResults; ++i) {
        const TensorSpec &spec = backward.results[i].tensor;
        if (backward.results[i].role == OutputRole::Gradient) {
          computers[spec.name].insert(s % pipeline.numRanks);
          gradients[spec.name] = spec;
        }
      }
    }
    int64_t partTag = kGradientPartTag;
    for (const auto &[name, ranks] : computers) {
      ++partTag;
      if (ranks.size() < 2)
        continue;
      auto owner = gradientOwners.find(name);
      if (owner == gradientOwners.end())
        return Status::error("no stage's update takes '" + name + "'");
      size_t bytes = getByteSize(gradients[name]);
      if (ranks.count(ppIndex) && getByteSize(*state.find(name)) != bytes)
        return Status::error("the parts of '" + name + "' differ in size "
                             "between stages");
      for (int64_t rank : ranks) {
        if (rank == owner->second)
          continue;
        if (ppIndex == rank)
          gradientParts.push_back({name, gradients[name].dtype, bytes,
                                   owner->second, partTag, true});
        else if (ppIndex == owner->second)
          gradientParts.push_back(
              {name, gradients[name].dtype, bytes, rank, partTag, false});
      }
    }
    // One tag per parameter and per gradient, below MPI's 32767.
    if (readers.size() >= 8192 || computers.size() >= 8192)
      return Status::error("too many parameters for the pipeline's tags");
    if (!copies.empty() || !gradientParts.empty()) {
      const MeshSpec &spec = *getMesh();
      for (int g = 0; g < spec.numGroups; ++g)
        if (std::strcmp(spec.groups[g], "pp") == 0)
          ppGroup = g;
      if (ppGroup < 0)
        return Status::error("the pipeline's mesh has no pp group to share "
                             "parameters over");
    }
    state.setPipelineLayout(ppAxis, std::move(model));
    return Status::success();
  }

  /// Adds the parts of each gradient that several ranks' stages compute
  /// (a tied parameter's) on the rank that applies it, in rank order.
  Status sumGradientParts(TrainingState &state) {
    TraceScope trace("communication", "gradient parts");
    for (const GradientPart &part : gradientParts) {
      void *gradient = state.getPointer(part.name);
      if (part.send) {
        communicator->countTransfer(static_cast<double>(part.bytes));
        CLEAVE_RETURN_IF_ERROR(communicator->send(
            ppGroup, part.peer, part.tag, gradient, part.bytes,
            "a gradient part"));
        continue;
      }
      std::unique_ptr<DeviceBuffer> &buffer = partBuffers[part.name];
      if (!buffer) {
        buffer = std::make_unique<DeviceBuffer>(context);
        CLEAVE_RETURN_IF_ERROR(buffer->allocate(part.bytes, "a gradient part"));
      }
      CLEAVE_RETURN_IF_ERROR(communicator->receive(
          ppGroup, part.peer, part.tag, buffer->get(), part.bytes,
          "a gradient part"));
      CLEAVE_RETURN_IF_ERROR(accumulate(
          context, part.dtype,
          static_cast<int64_t>(part.bytes / getDTypeSize(part.dtype)), 1.0,
          buffer->get(), gradient, false, "a gradient part"));
    }
    return communicator->completeSends("the gradient parts");
  }

  /// Sends or receives the shared parameters' new values, in name order on
  /// every rank.
  Status copyParameters(TrainingState &state) {
    TraceScope trace("communication", "shared parameters");
    for (const ParameterCopy &copy : copies) {
      const char *where = "the copy of a shared parameter";
      void *data = state.getPointer(copy.name);
      if (copy.send)
        communicator->countTransfer(static_cast<double>(copy.bytes));
      CLEAVE_RETURN_IF_ERROR(
          copy.send ? communicator->send(ppGroup, copy.peer, copy.tag, data,
                                         copy.bytes, where)
                    : communicator->receive(ppGroup, copy.peer, copy.tag, data,
                                            copy.bytes, where));
    }
    return communicator->completeSends("the shared parameters");
  }

  const PipelineProgram &pipeline;
  Context &context;
  Communicator *communicator = nullptr;
  int64_t ppAxis = -1, ppIndex = 0;
  bool logger = false;
  /// Whether receives are posted an action ahead (--overlap 1).
  bool postEarly = true;
  uint64_t arenaBytes = 0;
  std::vector<Stage> stages;
  std::vector<void *> applyArguments, results;
  int lossIndex = -1, normIndex = -1;
  std::vector<ParameterCopy> copies;
  std::vector<GradientPart> gradientParts;
  std::unique_ptr<GradientReducer> reducer;
  std::map<std::string, std::unique_ptr<DeviceBuffer>> partBuffers;
  int ppGroup = -1;
};

} // namespace

std::unique_ptr<StepExecutor>
createPipelineExecutor(const PipelineProgram &pipeline, Context &context) {
  return std::make_unique<PipelineExecutor>(pipeline, context);
}

} // namespace cleave::rt
