//===- CommunicatorCpu.cpp - The CPU backend's collectives: MPI -----------===//

#include "MpiCommunicator.h"

namespace cleave::rt {

Status createCommunicator(Context &context, const MeshSpec &spec,
                          std::unique_ptr<Communicator> &communicator) {
  return createMpiCommunicator(context, spec, /*stageThroughHost=*/false,
                               communicator);
}

} // namespace cleave::rt
