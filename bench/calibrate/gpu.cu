// Calibrates a GPU cluster file: what one device and the links between
// devices actually do, one process per GPU.
//
//   mpirun -np N calibrate-gpu OUT.json
//
// Rank 0 times bf16 GEMMs (cuBLAS, f32 accumulation) over a grid of shapes
// and copies a large buffer device to device (bytes read and written).
// With two or more ranks, every rank then times NCCL all-reduce,
// all-gather, reduce-scatter and send/recv (rank 0 to rank 1) over sizes
// from 8 B to 1 GiB, printing size, time, algbw and busbw as nccl-tests
// does. Rank 0 writes the measurements as JSON; bench/calibrate-gpu.py
// merges them into a cluster file (efficiencies relative to its datasheet
// peak).

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void check(cudaError_t status, const char *what) {
  if (status == cudaSuccess)
    return;
  std::fprintf(stderr, "calibrate-gpu: %s: %s\n", what,
               cudaGetErrorString(status));
  MPI_Abort(MPI_COMM_WORLD, 1);
}

void check(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return;
  std::fprintf(stderr, "calibrate-gpu: %s: cuBLAS status %d\n", what,
               static_cast<int>(status));
  MPI_Abort(MPI_COMM_WORLD, 1);
}

void check(ncclResult_t status, const char *what) {
  if (status == ncclSuccess)
    return;
  std::fprintf(stderr, "calibrate-gpu: %s: %s\n", what,
               ncclGetErrorString(status));
  MPI_Abort(MPI_COMM_WORLD, 1);
}

/// Seconds per run of `body` on `stream`: warm up, then the best of three
/// timings of `repeats` back-to-back runs.
template <typename Body>
double timeOnDevice(cudaStream_t stream, int repeats, Body body) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  body();
  check(cudaStreamSynchronize(stream), "warm-up");
  float best = 1e30f;
  for (int trial = 0; trial < 3; ++trial) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    for (int r = 0; r < repeats; ++r)
      body();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    best = std::min(best, ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best / 1e3 / repeats;
}

/// Fills `data` with values in [-0.5, 0.5): zeros would draw less power
/// and read as a faster GEMM than real operands get.
__global__ void fillNoise(__nv_bfloat16 *data, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count;
       i += size_t(gridDim.x) * blockDim.x) {
    unsigned hash = static_cast<unsigned>(i) * 2654435761u;
    data[i] = __float2bfloat16(((hash >> 16) & 0xff) / 256.0f - 0.5f);
  }
}

std::string joinInts(const std::vector<int> &values) {
  std::string text;
  for (int value : values)
    text += (text.empty() ? "" : ", ") + std::to_string(value);
  return text;
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2) {
    if (rank == 0)
      std::fprintf(stderr, "usage: mpirun -np N %s OUT.json\n", argv[0]);
    MPI_Finalize();
    return 1;
  }
  int devices = 0;
  check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  check(cudaSetDevice(rank % devices), "cudaSetDevice");
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");

  // GEMMs and memory on rank 0 alone (the others wait).
  const std::vector<int> gridM = {256, 1024, 4096, 16384};
  const std::vector<int> gridN = {512, 2048, 8192, 32768};
  const std::vector<int> gridK = {512, 2048, 8192};
  std::vector<double> rates;
  double bestRate = 0.0, memoryBandwidth = 0.0;
  if (rank == 0) {
    cublasHandle_t handle;
    check(cublasCreate(&handle), "cublasCreate");
    check(cublasSetStream(handle, stream), "cublasSetStream");
    size_t aSize = size_t(gridM.back()) * gridK.back();
    size_t bSize = size_t(gridK.back()) * gridN.back();
    size_t cSize = size_t(gridM.back()) * gridN.back();
    __nv_bfloat16 *a, *b, *c;
    check(cudaMalloc(&a, aSize * sizeof(__nv_bfloat16)), "cudaMalloc");
    check(cudaMalloc(&b, bSize * sizeof(__nv_bfloat16)), "cudaMalloc");
    check(cudaMalloc(&c, cSize * sizeof(__nv_bfloat16)), "cudaMalloc");
    fillNoise<<<1024, 256, 0, stream>>>(a, aSize);
    fillNoise<<<1024, 256, 0, stream>>>(b, bSize);
    check(cudaGetLastError(), "fillNoise");
    std::printf("# GEMM (bf16 in, f32 accumulation, cuBLAS): m n k, seconds, "
                "TFLOP/s\n");
    const float one = 1.0f, zero = 0.0f;
    for (int m : gridM)
      for (int n : gridN)
        for (int k : gridK) {
          double flops = 2.0 * m * n * k;
          // About 5 ms a timing at 1 PFLOP/s; small products repeat.
          int repeats = std::clamp(int(5e12 / flops), 1, 200);
          // Row-major C[m, n] = A[m, k] B[k, n] as column-major
          // C^T = B^T A^T.
          double seconds = timeOnDevice(stream, repeats, [&] {
            check(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k,
                               &one, b, CUDA_R_16BF, n, a, CUDA_R_16BF, k,
                               &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT),
                  "cublasGemmEx");
          });
          double rate = flops / seconds;
          rates.push_back(rate);
          bestRate = std::max(bestRate, rate);
          std::printf("%6d %6d %6d %12.9f %8.1f\n", m, n, k, seconds,
                      rate / 1e12);
        }
    // Memory: a 1 GiB device-to-device copy reads and writes every byte.
    size_t bytes = size_t(1) << 30;
    void *from, *to;
    check(cudaMalloc(&from, bytes), "cudaMalloc");
    check(cudaMalloc(&to, bytes), "cudaMalloc");
    double seconds = timeOnDevice(stream, 5, [&] {
      check(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream),
            "cudaMemcpyAsync");
    });
    memoryBandwidth = 2.0 * bytes / seconds;
    std::printf("# device-to-device copy: %zu bytes in %.6f s: %.1f GB/s "
                "read+write\n",
                bytes, seconds, memoryBandwidth / 1e9);
    cudaFree(from);
    cudaFree(to);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cublasDestroy(handle);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  // Collectives over every rank, NCCL bootstrapped over MPI.
  double linkBandwidth = 0.0, linkLatency = 0.0;
  if (size >= 2) {
    ncclUniqueId id;
    if (rank == 0)
      check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    ncclComm_t comm;
    check(ncclCommInitRank(&comm, size, id, rank), "ncclCommInitRank");
    size_t most = size_t(1) << 30;
    char *send, *receive;
    check(cudaMalloc(&send, most), "cudaMalloc");
    check(cudaMalloc(&receive, most), "cudaMalloc");
    if (rank == 0)
      std::printf("# NCCL over %d ranks: bytes (the whole buffer), seconds, "
                  "algbw GB/s, busbw GB/s\n",
                  size);
    double n = size;
    for (size_t bytes = 8; bytes <= most; bytes *= 8) {
      // Whole floats, and a multiple of the ranks for the split ones.
      size_t count = std::max<size_t>(size, bytes / 4 / size * size);
      size_t whole = count * 4;
      int repeats = bytes < (size_t(1) << 24) ? 50 : 5;
      double reduce = timeOnDevice(stream, repeats, [&] {
        check(ncclAllReduce(send, receive, count, ncclFloat, ncclSum, comm,
                            stream),
              "ncclAllReduce");
      });
      double gather = timeOnDevice(stream, repeats, [&] {
        check(ncclAllGather(send, receive, count / size, ncclFloat, comm,
                            stream),
              "ncclAllGather");
      });
      double scatter = timeOnDevice(stream, repeats, [&] {
        check(ncclReduceScatter(send, receive, count / size, ncclFloat,
                                ncclSum, comm, stream),
              "ncclReduceScatter");
      });
      // Rank 0 sends to rank 1; the others time an empty group.
      double message = timeOnDevice(stream, repeats, [&] {
        check(ncclGroupStart(), "ncclGroupStart");
        if (rank == 0)
          check(ncclSend(send, whole, ncclChar, 1, comm, stream), "ncclSend");
        else if (rank == 1)
          check(ncclRecv(receive, whole, ncclChar, 0, comm, stream),
                "ncclRecv");
        check(ncclGroupEnd(), "ncclGroupEnd");
      });
      if (rank == 0) {
        std::printf("allreduce     %11zu %10.6f %8.3f %8.3f\n", whole, reduce,
                    whole / reduce / 1e9,
                    whole / reduce / 1e9 * 2 * (n - 1) / n);
        std::printf("allgather     %11zu %10.6f %8.3f %8.3f\n", whole, gather,
                    whole / gather / 1e9, whole / gather / 1e9 * (n - 1) / n);
        std::printf("reducescatter %11zu %10.6f %8.3f %8.3f\n", whole,
                    scatter, whole / scatter / 1e9,
                    whole / scatter / 1e9 * (n - 1) / n);
        std::printf("send          %11zu %10.6f %8.3f %8.3f\n", whole,
                    message, whole / message / 1e9, whole / message / 1e9);
      }
      if (bytes == 8)
        // A ring all-reduce of a few bytes is 2(n - 1) latencies.
        linkLatency = reduce / (2 * (n - 1));
      // Per device, one direction: the ring's bus bandwidth.
      linkBandwidth = whole / reduce * 2 * (n - 1) / n;
    }
    cudaFree(send);
    cudaFree(receive);
    ncclCommDestroy(comm);
  }

  if (rank == 0) {
    FILE *out = std::fopen(argv[1], "w");
    if (!out) {
      std::fprintf(stderr, "calibrate-gpu: cannot write '%s'\n", argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    cudaDeviceProp properties;
    check(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
    std::string measured;
    for (double rate : rates)
      measured += (measured.empty() ? "" : ", ") + std::to_string(rate);
    std::fprintf(out,
                 "{\n"
                 "  \"device\": \"%s\",\n"
                 "  \"ranks\": %d,\n"
                 "  \"gemm_bf16_flops\": {\"m\": [%s], \"n\": [%s], \"k\": "
                 "[%s],\n"
                 "                      \"rate\": [%s]},\n"
                 "  \"memory_bandwidth\": %.6g",
                 properties.name, size, joinInts(gridM).c_str(),
                 joinInts(gridN).c_str(), joinInts(gridK).c_str(),
                 measured.c_str(), memoryBandwidth);
    if (size >= 2)
      std::fprintf(out,
                   ",\n  \"link\": {\"bandwidth\": %.6g, \"latency\": %.6g}",
                   linkBandwidth, linkLatency);
    std::fprintf(out, "\n}\n");
    std::fclose(out);
    std::printf("# wrote %s\n", argv[1]);
  }
  cudaStreamDestroy(stream);
  MPI_Finalize();
  return 0;
}
