//===- GemmCuda.cu - GEMM on cuBLASLt -------------------------------------===//
//
// cuBLASLt is column-major; a row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands swap places and keep their
// transpose flags. f32 computes in full f32 (TF32 tensor cores only when
// the context allows them), bf16 and f16 with f32 accumulation, f64 in f64.
//
// With wideOutput, bf16 and f16 products are written to (or, accumulating,
// added into) an f32 C.
//
// The descriptors of a shape and the algorithm cuBLASLt's heuristic picks
// for it are made on the shape's first call and kept in the context's plan
// cache: the heuristic is asked once per shape, not once per call. The
// operands' alignment is part of the shape: the heuristic assumes 256-byte
// aligned pointers unless told otherwise, and attention's tile GEMMs start
// at rows inside a tensor.
//
// Epilogues run in the GEMM: cuBLASLt's BIAS, GELU_BIAS and GELU_AUX_BIAS
// (its GELU is the tanh form the compiler's gelu is). The bias is a vector
// over cuBLASLt's rows, which are our columns, as a row bias must be. Where
// cuBLASLt has none (f64, a pre-activation whose rows are not a multiple of
// 8 elements, or no algorithm for the shape), the plan is the plain GEMM
// and the epilogue kernel runs after it.
//
//===----------------------------------------------------------------------===//

#include "cleave/runtime/Kernels.h"

#include <cublasLt.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace cleave::rt {
namespace {

constexpr size_t kWorkspaceBytes = 32u << 20;

struct LtTypes {
  cudaDataType_t data;
  cudaDataType_t scale;
  cublasComputeType_t compute;
  cudaDataType_t output; // C's type
};

bool getLtTypes(DType dtype, bool allowTf32, LtTypes &types) {
  switch (dtype) {
  case DType::F64:
    types = {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F};
    return true;
  case DType::F32:
    types = {CUDA_R_32F, CUDA_R_32F,
             allowTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
             CUDA_R_32F};
    return true;
  case DType::BF16:
    types = {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, CUDA_R_16BF};
    return true;
  case DType::F16:
    types = {CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F, CUDA_R_16F};
    return true;
  default:
    return false;
  }
}

/// The descriptors of one GEMM shape and the algorithm chosen for it.
struct GemmPlan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t layouts[3] = {};
  cublasLtMatmulAlgo_t algorithm = {};
  /// Whether cuBLASLt applies the key's epilogue (else the kernel does).
  bool fusedEpilogue = false;
  GemmPlan() = default;
  GemmPlan(const GemmPlan &) = delete;
  GemmPlan &operator=(const GemmPlan &) = delete;
  ~GemmPlan() {
    for (cublasLtMatrixLayout_t layout : layouts)
      if (layout)
        cublasLtMatrixLayoutDestroy(layout);
    if (operation)
      cublasLtMatmulDescDestroy(operation);
  }
};

/// The largest power of two up to 256 that divides the address and, for a
/// batch, the stride between matrices.
uint32_t getAlignment(const void *pointer, int64_t strideBytes, int64_t batch) {
  uint64_t bits = reinterpret_cast<uintptr_t>(pointer) | 256u;
  if (batch > 1)
    bits |= static_cast<uint64_t>(strideBytes);
  return static_cast<uint32_t>(bits & -bits);
}

/// Everything a plan depends on: the element type, the math mode, the
/// shape after the tall-GEMM rewrite and the operands' alignment.
struct GemmKey {
  DType dtype;
  bool tf32, wideOutput, transposeA, transposeB;
  int64_t batch, m, n, k, strideA, strideB, strideC;
  uint32_t alignA, alignB, alignC, alignBias, alignPreActivation;
  GemmEpilogue epilogue;
  bool preActivation;
  bool operator==(const GemmKey &other) const {
    return dtype == other.dtype && tf32 == other.tf32 &&
           epilogue == other.epilogue && preActivation == other.preActivation &&
           wideOutput == other.wideOutput && transposeA == other.transposeA &&
           transposeB == other.transposeB && batch == other.batch &&
           m == other.m && n == other.n && k == other.k &&
           strideA == other.strideA && strideB == other.strideB &&
           strideC == other.strideC && alignA == other.alignA &&
           alignB == other.alignB && alignC == other.alignC &&
           alignBias == other.alignBias &&
           alignPreActivation == other.alignPreActivation;
  }
};

struct GemmKeyHash {
  size_t operator()(const GemmKey &key) const {
    size_t hash = static_cast<size_t>(key.dtype) * 128 +
                  static_cast<size_t>(key.epilogue) * 32 +
                  key.preActivation * 16 + key.wideOutput * 8 + key.tf32 * 4 +
                  key.transposeA * 2 + key.transposeB;
    for (int64_t value :
         {key.batch, key.m, key.n, key.k, key.strideA, key.strideB, key.strideC,
          int64_t(key.alignA) << 18 | int64_t(key.alignB) << 9 |
              int64_t(key.alignC),
          int64_t(key.alignBias) << 9 | int64_t(key.alignPreActivation)})
      hash = hash * 1000003u ^ std::hash<int64_t>()(value);
    return hash;
  }
};

using GemmCache =
    std::unordered_map<GemmKey, std::unique_ptr<GemmPlan>, GemmKeyHash>;

GemmCache &getCache(Context &context) {
  if (!context.getGemmCache())
    context.setGemmCache(new GemmCache(), [](void *cache) {
      delete static_cast<GemmCache *>(cache);
    });
  return *static_cast<GemmCache *>(context.getGemmCache());
}

/// Frees a heuristic's preference on every path out.
struct PreferenceOwner {
  cublasLtMatmulPreference_t preference = nullptr;
  ~PreferenceOwner() {
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

/// Passes the per-call epilogue pointers to the plan's descriptor.
Status setEpiloguePointers(const GemmPlan &plan, const GemmArgs &args,
                           const char *location) {
  LtChecker ok(location);
  if (!ok(cublasLtMatmulDescSetAttribute(plan.operation,
                                         CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                         &args.bias, sizeof(args.bias)),
          "cublasLtMatmulDescSetAttribute(BIAS_POINTER)"))
    return ok.getFailure();
  if (args.preActivation &&
      !ok(cublasLtMatmulDescSetAttribute(
              plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
              &args.preActivation, sizeof(args.preActivation)),
          "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_POINTER)"))
    return ok.getFailure();
  return Status::success();
}

/// Makes the plan of `args`: descriptors, then the heuristic's first choice.
Status makePlan(Context &context, const LtTypes &types, const GemmArgs &args,
                const GemmKey &key, GemmPlan &plan, const char *location) {
  auto handle = static_cast<cublasLtHandle_t>(context.getBlasHandle());
  LtChecker ok(location);
  cublasOperation_t transFirst = args.transposeB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t transSecond = args.transposeA ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Column-major shapes of the stored matrices: first = B, second = A.
  uint64_t firstRows = args.transposeB ? args.k : args.n;
  uint64_t firstCols = args.transposeB ? args.n : args.k;
  uint64_t secondRows = args.transposeA ? args.m : args.k;
  uint64_t secondCols = args.transposeA ? args.k : args.m;
  if (!ok(cublasLtMatmulDescCreate(&plan.operation, types.compute, types.scale),
          "cublasLtMatmulDescCreate") ||
      !ok(cublasLtMatmulDescSetAttribute(plan.operation,
                                         CUBLASLT_MATMUL_DESC_TRANSA,
                                         &transFirst, sizeof(transFirst)),
          "cublasLtMatmulDescSetAttribute(TRANSA)") ||
      !ok(cublasLtMatmulDescSetAttribute(plan.operation,
                                         CUBLASLT_MATMUL_DESC_TRANSB,
                                         &transSecond, sizeof(transSecond)),
          "cublasLtMatmulDescSetAttribute(TRANSB)") ||
      !ok(cublasLtMatrixLayoutCreate(&plan.layouts[0], types.data, firstRows,
                                     firstCols, firstRows),
          "cublasLtMatrixLayoutCreate(B)") ||
      !ok(cublasLtMatrixLayoutCreate(&plan.layouts[1], types.data, secondRows,
                                     secondCols, secondRows),
          "cublasLtMatrixLayoutCreate(A)") ||
      !ok(cublasLtMatrixLayoutCreate(&plan.layouts[2], types.output, args.n,
                                     args.m, args.n),
          "cublasLtMatrixLayoutCreate(C)"))
    return ok.getFailure();

  if (key.epilogue != GemmEpilogue::None) {
    cublasLtEpilogue_t epilogue =
        key.epilogue == GemmEpilogue::Bias ? CUBLASLT_EPILOGUE_BIAS
        : key.preActivation                ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
                                           : CUBLASLT_EPILOGUE_GELU_BIAS;
    cudaDataType_t biasType = types.output;
    int64_t auxRows = args.n;
    int64_t auxStride = args.batch > 1 ? args.strideC : 0;
    if (!ok(cublasLtMatmulDescSetAttribute(plan.operation,
                                           CUBLASLT_MATMUL_DESC_EPILOGUE,
                                           &epilogue, sizeof(epilogue)),
            "cublasLtMatmulDescSetAttribute(EPILOGUE)") ||
        !ok(cublasLtMatmulDescSetAttribute(plan.operation,
                                           CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                           &biasType, sizeof(biasType)),
            "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)"))
      return ok.getFailure();
    // The heuristic judges the epilogue pointers' alignment from their
    // values, so it sees this call's (the key holds their alignment).
    CLEAVE_RETURN_IF_ERROR(setEpiloguePointers(plan, args, location));
    if (key.preActivation &&
        (!ok(cublasLtMatmulDescSetAttribute(
                 plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &auxRows,
                 sizeof(auxRows)),
             "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_LD)") ||
         !ok(cublasLtMatmulDescSetAttribute(
                 plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE,
                 &auxStride, sizeof(auxStride)),
             "cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_BATCH_STRIDE)")))
      return ok.getFailure();
  }

  if (args.batch > 1) {
    int32_t batch = static_cast<int32_t>(args.batch);
    int64_t strides[3] = {args.strideB, args.strideA, args.strideC};
    for (int i = 0; i < 3; ++i)
      if (!ok(cublasLtMatrixLayoutSetAttribute(
                  plan.layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                  sizeof(batch)),
              "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)") ||
          !ok(cublasLtMatrixLayoutSetAttribute(
                  plan.layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                  &strides[i], sizeof(strides[i])),
              "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)"))
        return ok.getFailure();
  }

  size_t workspaceBytes = kWorkspaceBytes;
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  PreferenceOwner owner;
  if (!ok(cublasLtMatmulPreferenceCreate(&owner.preference),
          "cublasLtMatmulPreferenceCreate") ||
      !ok(cublasLtMatmulPreferenceSetAttribute(
              owner.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
              &workspaceBytes, sizeof(workspaceBytes)),
          "cublasLtMatmulPreferenceSetAttribute") ||
      // cuBLASLt's A is our B (see the file comment).
      !ok(cublasLtMatmulPreferenceSetAttribute(
              owner.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
              &key.alignB, sizeof(key.alignB)),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_A)") ||
      !ok(cublasLtMatmulPreferenceSetAttribute(
              owner.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
              &key.alignA, sizeof(key.alignA)),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B)") ||
      !ok(cublasLtMatmulPreferenceSetAttribute(
              owner.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
              &key.alignC, sizeof(key.alignC)),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_C)") ||
      !ok(cublasLtMatmulPreferenceSetAttribute(
              owner.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
              &key.alignC, sizeof(key.alignC)),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_D)") ||
      !ok(cublasLtMatmulAlgoGetHeuristic(
              handle, plan.operation, plan.layouts[0], plan.layouts[1],
              plan.layouts[2], plan.layouts[2], owner.preference, 1, &heuristic,
              &found),
          "cublasLtMatmulAlgoGetHeuristic"))
    return ok.getFailure();
  if (found == 0)
    return Status::error(std::string("gemm at ") + location +
                         ": cuBLASLt has no algorithm for this shape");
  plan.algorithm = heuristic.algo;
  plan.fusedEpilogue = key.epilogue != GemmEpilogue::None;
  return Status::success();
}

/// Whether cuBLASLt can run the epilogue of `args` (it may still find no
/// algorithm, which makePlan reports).
bool hasLtEpilogue(DType dtype, const GemmArgs &args) {
  if (args.epilogue == GemmEpilogue::None || dtype == DType::F64)
    return false;
  // The pre-activation's leading dimension must be a multiple of 8.
  return !args.preActivation || args.n % 8 == 0;
}

} // namespace

Status gemm(Context &context, DType dtype, const GemmArgs &input,
            const char *location) {
  LtTypes types;
  if (!getLtTypes(dtype, context.getGemmAllowsTf32(), types))
    return Status::error(std::string("gemm at ") + location +
                         ": unsupported element type " + getDTypeName(dtype));
  if (input.wideOutput && dtype != DType::F64)
    types.output = CUDA_R_32F;
  if (const char *error = getGemmArgsError(input))
    return Status::error(std::string("gemm at ") + location + ": " + error);
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
  const int64_t elementBytes = static_cast<int64_t>(getDTypeSize(dtype));
  const int64_t outputBytes =
      static_cast<int64_t>(getDTypeSize(getGemmOutputType(dtype, args)));
  GemmKey key{dtype,
              context.getGemmAllowsTf32(),
              args.wideOutput,
              args.transposeA,
              args.transposeB,
              args.batch,
              args.m,
              args.n,
              args.k,
              args.batch > 1 ? args.strideA : 0,
              args.batch > 1 ? args.strideB : 0,
              args.batch > 1 ? args.strideC : 0,
              getAlignment(args.a, args.strideA * elementBytes, args.batch),
              getAlignment(args.b, args.strideB * elementBytes, args.batch),
              getAlignment(args.c, args.strideC * outputBytes, args.batch),
              args.bias ? getAlignment(args.bias, 0, 1) : 0u,
              args.preActivation
                  ? getAlignment(args.preActivation, args.strideC * outputBytes,
                                 args.batch)
                  : 0u,
              hasLtEpilogue(dtype, args) ? args.epilogue : GemmEpilogue::None,
              hasLtEpilogue(dtype, args) && args.preActivation != nullptr};
  GemmCache &cache = getCache(context);
  auto found = cache.find(key);
  if (found == cache.end()) {
    auto plan = std::make_unique<GemmPlan>();
    Status made = makePlan(context, types, args, key, *plan, location);
    if (!made.ok() && key.epilogue != GemmEpilogue::None) {
      // No fused algorithm for this shape: the plain GEMM, then the kernel.
      GemmKey plain = key;
      plain.epilogue = GemmEpilogue::None;
      plain.preActivation = false;
      plan = std::make_unique<GemmPlan>();
      CLEAVE_RETURN_IF_ERROR(
          makePlan(context, types, args, plain, *plan, location));
    } else {
      CLEAVE_RETURN_IF_ERROR(made);
    }
    found = cache.emplace(key, std::move(plan)).first;
  }
  const GemmPlan &plan = *found->second;
  if (plan.fusedEpilogue)
    CLEAVE_RETURN_IF_ERROR(setEpiloguePointers(plan, args, location));

  double alpha64 = 1.0, beta64 = args.accumulate ? 1.0 : 0.0;
  float alpha32 = 1.0f, beta32 = args.accumulate ? 1.0f : 0.0f;
  const void *alpha = dtype == DType::F64 ? static_cast<const void *>(&alpha64)
                                          : static_cast<const void *>(&alpha32);
  const void *beta = dtype == DType::F64 ? static_cast<const void *>(&beta64)
                                         : static_cast<const void *>(&beta32);
  LtChecker ok(location);
  if (!ok(cublasLtMatmul(static_cast<cublasLtHandle_t>(context.getBlasHandle()),
                         plan.operation, alpha, args.b, plan.layouts[0], args.a,
                         plan.layouts[1], beta, args.c, plan.layouts[2], args.c,
                         plan.layouts[2], &plan.algorithm, workspace,
                         kWorkspaceBytes,
                         static_cast<cudaStream_t>(context.getStream())),
          "cublasLtMatmul"))
    return ok.getFailure();
  if (plan.fusedEpilogue)
    return Status::success();
  return applyGemmEpilogue(context, getGemmOutputType(dtype, args), args,
                           location);
}

} // namespace cleave::rt
