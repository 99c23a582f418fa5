//===- ScheduleReport.h - `cleavec schedule` --------------------*- C++ -*-===//

#ifndef CLEAVE_DRIVER_SCHEDULEREPORT_H
#define CLEAVE_DRIVER_SCHEDULEREPORT_H

#include "cleave/Pipeline/Schedule.h"

#include "mlir/Support/LLVM.h"
#include "llvm/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::cleave {

/// Prints each rank's order of forward and backward micro-batch steps, the
/// activation slots each rank needs and the bubble, simulated and
/// textbook. Fails (printing nothing) if the orders cannot complete.
LogicalResult printScheduleReport(const pipeline::Schedule &schedule,
                                  llvm::raw_ostream &os);

/// `cleavec schedule`: builds the `kind` schedule (gpipe, 1f1b,
/// interleaved) over `ranks` pp ranks and prints its report; reports why
/// when it cannot.
LogicalResult printSchedule(llvm::StringRef kind, int64_t ranks,
                            int64_t microBatches, int64_t virtualStages,
                            llvm::raw_ostream &os);

} // namespace mlir::cleave

#endif // CLEAVE_DRIVER_SCHEDULEREPORT_H
