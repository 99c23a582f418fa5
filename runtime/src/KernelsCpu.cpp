//===- KernelsCpu.cpp - Library kernels, host compiler with OpenMP --------===//

#include "Kernels.inc"
