//===- GemmCuda.cu - GEMM on cuBLASLt -------------------------------------===//
//
// cuBLASLt is column-major; a row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands swap places and keep their
// transpose flags. f32 computes in full f32 (no TF32), bf16 and f16 with
// f32 accumulation, f64 in f64.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Kernels.h"

#include <cublasLt.h>

#include <memory>
#include <string>

namespace cleave::rt {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

struct LtTypes {
  cudaDataType_t data;
  cudaDataType_t scale;
  cublasComputeType_t compute;
};

bool getLtTypes(DType dtype, LtTypes &types) {
  switch (dtype) {
  case DType::F64:
    types = {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F};
    return true;
  case DType::F32:
    types = {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    return true;
  case DType::BF16:
    types = {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    return true;
  case DType::F16:
    types = {CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
    return true;
  default:
    return false;
  }
}

/// Owns the cuBLASLt descriptors of one call.
struct LtCall {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t layouts[3] = {};
  cublasLtMatmulPreference_t preference = nullptr;
  ~LtCall() {
    for (cublasLtMatrixLayout_t layout : layouts)
      if (layout)
        cublasLtMatrixLayoutDestroy(layout);
    if (operation)
      cublasLtMatmulDescDestroy(operation);
    if (preference)
      cublasLtMatmulPreferenceDestroy(preference);
  }
};

class LtChecker {
public:
  explicit LtChecker(const char *location) : location(location) {}
  bool operator()(cublasStatus_t status, const char *call) {
    if (status == CUBLAS_STATUS_SUCCESS)
      return true;
    if (message.empty())
      message = std::string(call) + " for gemm at " + location + ": " +
                cublasLtGetStatusString(status);
    return false;
  }
  Status getFailure() const { return Status::error(message); }

private:
  const char *location;
  std::string message;
};

} // namespace

Status gemm(Context &context, DType dtype, const GemmArgs &input,
            const char *location) {
  LtTypes types;
  if (!getLtTypes(dtype, types))
    return Status::error(std::string("gemm at ") + location +
                         ": unsupported element type " + getDTypeName(dtype));
  if (input.batch <= 0 || input.m <= 0 || input.n <= 0 || input.k <= 0)
    return Status::error(std::string("gemm at ") + location +
                         ": empty or negative dimensions");
  if (std::vector<GemmCall> *log = context.getGemmLog())
    log->push_back({dtype, input});
  GemmArgs args = input;
  // A shared right-hand side over contiguous left-hand sides is one tall GEMM.
  if (!args.transposeA && args.strideB == 0 && args.strideA == args.m * args.k &&
      args.strideC == args.m * args.n) {
    args.m *= args.batch;
    args.batch = 1;
  }

  void *workspace = nullptr;
  CLEAVE_RETURN_IF_ERROR(
      context.getScratch(ScratchSlot::Gemm, kWorkspaceBytes, &workspace));
  auto handle = static_cast<cublasLtHandle_t>(context.getBlasHandle());
  LtCall call;
  LtChecker ok(location);
  cublasOperation_t transFirst = args.transposeB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t transSecond = args.transposeA ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Column-major shapes of the stored matrices: first = B, second = A.
  uint64_t firstRows = args.transposeB ? args.k : args.n;
  uint64_t firstCols = args.transposeB ? args.n : args.k;
  uint64_t secondRows = args.transposeA ? args.m : args.k;
  uint64_t secondCols = args.transposeA ? args.k : args.m;
  if (!ok(cublasLtMatmulDescCreate(&call.operation, types.compute, types.scale),
          "cublasLtMatmulDescCreate") ||
      !ok(cublasLtMatmulDescSetAttribute(call.operation,
                                         CUBLASLT_MATMUL_DESC_TRANSA,
                                         &transFirst, sizeof(transFirst)),
          "cublasLtMatmulDescSetAttribute(TRANSA)") ||
      !ok(cublasLtMatmulDescSetAttribute(call.operation,
                                         CUBLASLT_MATMUL_DESC_TRANSB,
                                         &transSecond, sizeof(transSecond)),
          "cublasLtMatmulDescSetAttribute(TRANSB)") ||
      !ok(cublasLtMatrixLayoutCreate(&call.layouts[0], types.data, firstRows,
                                     firstCols, firstRows),
          "cublasLtMatrixLayoutCreate(B)") ||
      !ok(cublasLtMatrixLayoutCreate(&call.layouts[1], types.data, secondRows,
                                     secondCols, secondRows),
          "cublasLtMatrixLayoutCreate(A)") ||
      !ok(cublasLtMatrixLayoutCreate(&call.layouts[2], types.data, args.n,
                                     args.m, args.n),
          "cublasLtMatrixLayoutCreate(C)"))
    return ok.getFailure();

  if (args.batch > 1) {
    int32_t batch = static_cast<int32_t>(args.batch);
    int64_t strides[3] = {args.strideB, args.strideA, args.strideC};
    for (int i = 0; i < 3; ++i)
      if (!ok(cublasLtMatrixLayoutSetAttribute(
                  call.layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                  sizeof(batch)),
              "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)") ||
          !ok(cublasLtMatrixLayoutSetAttribute(
                  call.layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                  &strides[i], sizeof(strides[i])),
              "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)"))
        return ok.getFailure();
  }

  size_t workspaceBytes = kWorkspaceBytes;
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  if (!ok(cublasLtMatmulPreferenceCreate(&call.preference),
          "cublasLtMatmulPreferenceCreate") ||
      !ok(cublasLtMatmulPreferenceSetAttribute(
              call.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
              &workspaceBytes, sizeof(workspaceBytes)),
          "cublasLtMatmulPreferenceSetAttribute") ||
      !ok(cublasLtMatmulAlgoGetHeuristic(
              handle, call.operation, call.layouts[0], call.layouts[1],
              call.layouts[2], call.layouts[2], call.preference, 1, &heuristic,
              &found),
          "cublasLtMatmulAlgoGetHeuristic"))
    return ok.getFailure();
  if (found == 0)
    return Status::error(std::string("gemm at ") + location +
                         ": cuBLASLt has no algorithm for this shape");

  double alpha64 = 1.0, beta64 = 0.0;
  float alpha32 = 1.0f, beta32 = 0.0f;
  const void *alpha = dtype == DType::F64 ? static_cast<const void *>(&alpha64)
                                          : static_cast<const void *>(&alpha32);
  const void *beta = dtype == DType::F64 ? static_cast<const void *>(&beta64)
                                         : static_cast<const void *>(&beta32);
  if (!ok(cublasLtMatmul(handle, call.operation, alpha, args.b,
                         call.layouts[0], args.a, call.layouts[1], beta, args.c,
                         call.layouts[2], args.c, call.layouts[2],
                         &heuristic.algo, workspace, workspaceBytes,
                         static_cast<cudaStream_t>(context.getStream())),
          "cublasLtMatmul"))
    return ok.getFailure();
  return Status::success();
}

} // namespace cleave::rt
