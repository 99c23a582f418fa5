//===- cleave-translate.cpp - Cleave translation driver -------------------===//
//
// The mlir-translate style driver: `--cleave-to-cuda` prints the CUDA C++
// (also CPU-buildable) source of a fused, memory-planned module.
//
//===----------------------------------------------------------------------===//

#include "cleave/Target/Cuda/CudaEmitter.h"

#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"

int main(int argc, char **argv) {
  mlir::cleave::registerToCudaTranslation();
  return mlir::failed(
             mlir::mlirTranslateMain(argc, argv, "Cleave translation driver\n"))
             ? 1
             : 0;
}
