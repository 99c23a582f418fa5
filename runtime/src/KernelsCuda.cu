//===- KernelsCuda.cu - Library kernels, built by nvcc --------------------===//

#include "Kernels.inc"
