// Calibrates the cpu-local cluster: what one rank (one core, one OpenBLAS
// thread) and the links between ranks on this machine actually do.
//
//   mpirun -np 2 calibrate-cpu OUT.json
//
// Rank 0 times single-precision GEMMs over a sweep of shapes (and a grid
// the planner interpolates efficiency by shape on); both ranks
// copy a large buffer at once (memory bandwidth under load), then time
// send/recv and all-reduce over a sweep of sizes, printing size, time,
// algbw and busbw as nccl-tests does. It writes
// the cluster file the planner reads, with the peak taken as the fastest
// GEMM measured (so gemm_efficiency is 1 relative to it) and the link as
// all-reduce's bus bandwidth at the largest size (what the planner's ring
// formulas need; a lone send/recv is faster) and the latency of the
// smallest send.

#include <cblas.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Best of `repeats` runs of `body`, in seconds.
template <typename Body> double best(int repeats, Body body) {
  double fastest = 1e30;
  for (int i = 0; i < repeats; ++i) {
    double start = now();
    body();
    fastest = std::min(fastest, now() - start);
  }
  return fastest;
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2 || size != 2) {
    if (rank == 0)
      std::fprintf(stderr, "usage: mpirun -np 2 %s OUT.json\n", argv[0]);
    MPI_Finalize();
    return 1;
  }

  double peak = 0.0, bandwidth = 0.0;
  // The efficiency grid the planner interpolates GEMMs on (log-spaced m,
  // n, k spanning the tiny test models to GPT-2's projections).
  const std::vector<int> gridM = {16, 64, 256, 1024, 4096};
  const std::vector<int> gridN = {32, 128, 512, 2048};
  const std::vector<int> gridK = {32, 128, 512, 2048};
  std::vector<double> gridRates;
  if (rank == 0) {
    std::printf("# GEMM (f32, one thread): m n k, seconds, GFLOP/s\n");
    auto measureGemm = [&](int m, int n, int k) {
      std::vector<float> a(size_t(m) * k, 1.0f), b(size_t(k) * n, 0.5f),
          c(size_t(m) * n, 0.0f);
      // Small products repeat so that a timing spans about 10 ms.
      double flops = 2.0 * m * n * k;
      int repeats = std::max(1, int(2e9 / flops));
      double seconds = best(3, [&] {
                         for (int r = 0; r < repeats; ++r)
                           cblas_sgemm(CblasRowMajor, CblasNoTrans,
                                       CblasNoTrans, m, n, k, 1.0f, a.data(),
                                       k, b.data(), n, 0.0f, c.data(), n);
                       }) /
                       repeats;
      double rate = flops / seconds;
      peak = std::max(peak, rate);
      std::printf("%5d %5d %5d %12.9f %8.1f\n", m, n, k, seconds, rate / 1e9);
      return rate;
    };
    int shapes[][3] = {{256, 256, 256},    {512, 512, 512},
                       {1024, 1024, 1024}, {2048, 2048, 2048},
                       {4096, 768, 768},   {4096, 3072, 768},
                       {4096, 768, 3072}};
    for (auto &shape : shapes)
      measureGemm(shape[0], shape[1], shape[2]);
    for (int m : gridM)
      for (int n : gridN)
        for (int k : gridK)
          gridRates.push_back(measureGemm(m, n, k));
  }
  {
    // Memory: both ranks copy 256 MiB at once (a device's share while every
    // device is busy), counting bytes read and written.
    size_t bytes = size_t(256) << 20;
    std::vector<char> from(bytes, 1), to(bytes, 0);
    double seconds = best(5, [&] {
      MPI_Barrier(MPI_COMM_WORLD);
      std::memcpy(to.data(), from.data(), bytes);
    });
    bandwidth = 2.0 * bytes / seconds;
    if (rank == 0)
      std::printf("# memory copy on both ranks at once: %zu bytes in %.6f s: "
                  "%.1f GB/s read+write per rank\n",
                  bytes, seconds, bandwidth / 1e9);
  }

  std::printf(rank == 0 ? "# send/recv, all-reduce, all-gather and "
                          "reduce-scatter between 2 ranks: bytes (the whole "
                          "buffer), seconds, algbw GB/s, busbw GB/s\n"
                        : "");
  double smallest = 0.0, largestReduce = 0.0, largestBytes = 0.0;
  for (size_t bytes = 8; bytes <= (size_t(16) << 20); bytes *= 8) {
    std::vector<char> buffer(bytes, 1), other(bytes, 0);
    // Ping-pong: half a round trip is one message.
    double seconds = best(5, [&] {
                       MPI_Barrier(MPI_COMM_WORLD);
                       if (rank == 0) {
                         MPI_Send(buffer.data(), int(bytes), MPI_BYTE, 1, 0,
                                  MPI_COMM_WORLD);
                         MPI_Recv(other.data(), int(bytes), MPI_BYTE, 1, 0,
                                  MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                       } else {
                         MPI_Recv(other.data(), int(bytes), MPI_BYTE, 0, 0,
                                  MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                         MPI_Send(buffer.data(), int(bytes), MPI_BYTE, 0, 0,
                                  MPI_COMM_WORLD);
                       }
                     }) /
                     2.0;
    std::vector<float> values(bytes / 4 + 1, 1.0f), sums(values.size());
    double reduce = best(5, [&] {
      MPI_Barrier(MPI_COMM_WORLD);
      MPI_Allreduce(values.data(), sums.data(), int(values.size()), MPI_FLOAT,
                    MPI_SUM, MPI_COMM_WORLD);
    });
    // Each rank contributes (all-gather) or keeps (reduce-scatter) half.
    int half = int(values.size() / 2);
    double gather = best(5, [&] {
      MPI_Barrier(MPI_COMM_WORLD);
      MPI_Allgather(values.data(), half, MPI_FLOAT, sums.data(), half,
                    MPI_FLOAT, MPI_COMM_WORLD);
    });
    double scatter = best(5, [&] {
      MPI_Barrier(MPI_COMM_WORLD);
      MPI_Reduce_scatter_block(values.data(), sums.data(), half, MPI_FLOAT,
                               MPI_SUM, MPI_COMM_WORLD);
    });
    if (rank == 0) {
      // busbw = algbw x (n - 1) / n: a half for two ranks.
      std::printf("allgather %10zu %10.6f %8.3f %8.3f\n", bytes, gather,
                  bytes / gather / 1e9, 0.5 * bytes / gather / 1e9);
      std::printf("reducescatter %6zu %10.6f %8.3f %8.3f\n", bytes, scatter,
                  bytes / scatter / 1e9, 0.5 * bytes / scatter / 1e9);
      std::printf("send      %10zu %10.6f %8.3f %8.3f\n", bytes, seconds,
                  bytes / seconds / 1e9, bytes / seconds / 1e9);
      // busbw = algbw x 2 (n - 1) / n: 1 for two ranks.
      std::printf("allreduce %10zu %10.6f %8.3f %8.3f\n", bytes, reduce,
                  bytes / reduce / 1e9, bytes / reduce / 1e9);
    }
    if (bytes == 8)
      smallest = seconds;
    largestReduce = reduce;
    largestBytes = static_cast<double>(bytes);
  }

  if (rank == 0) {
    // Two ranks: busbw = algbw.
    double linkBandwidth = largestBytes / largestReduce;
    auto list = [](const std::vector<int> &values) {
      std::string text;
      for (int value : values)
        text += (text.empty() ? "" : ", ") + std::to_string(value);
      return text;
    };
    std::string efficiencies;
    for (double rate : gridRates) {
      char entry[32];
      std::snprintf(entry, sizeof(entry), "%s%.4f",
                    efficiencies.empty() ? "" : ", ",
                    std::min(1.0, rate / peak));
      efficiencies += entry;
    }
    FILE *out = std::fopen(argv[1], "w");
    if (!out) {
      std::fprintf(stderr, "cannot write '%s'\n", argv[1]);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::fprintf(
        out,
        "{\n"
        "  \"name\": \"cpu-local\",\n"
        "  \"description\": \"This machine: one rank per core as a process "
        "(one OpenMP/OpenBLAS thread), MPI between ranks; measured by "
        "bench/calibrate-cpu.sh\",\n"
        "  \"device\": {\n"
        "    \"name\": \"one CPU core\",\n"
        "    \"peak_flops\": {\"f32\": %.6g},\n"
        "    \"memory_bytes\": 8e9,\n"
        "    \"memory_bandwidth\": %.6g,\n"
        "    \"gemm_efficiency\": 1.0,\n"
        "    \"gemm_table\": {\"m\": [%s], \"n\": [%s], \"k\": [%s],\n"
        "                   \"efficiency\": [%s]}\n"
        "  },\n"
        "  \"devices_per_node\": %u,\n"
        "  \"links\": {\n"
        "    \"intra_node\": {\"bandwidth\": %.6g, \"latency\": %.6g},\n"
        "    \"inter_node\": {\"bandwidth\": %.6g, \"latency\": %.6g}\n"
        "  },\n"
        "  \"workspace_bytes\": 0,\n"
        "  \"sources\": {\n"
        "    \"peak_flops\": \"measured: the fastest single-thread sgemm of "
        "the sweep\",\n"
        "    \"gemm_table\": \"measured: single-thread sgemm over the grid, "
        "as a share of the peak\",\n"
        "    \"memory_bandwidth\": \"measured: a 256 MiB memcpy on both "
        "ranks at once, bytes read and written\",\n"
        "    \"links\": \"measured: MPI between two ranks, latency from an "
        "8-byte ping-pong, bandwidth from a 16 MiB all-reduce's busbw\",\n"
        "    \"memory_bytes\": \"assumed: 8 GB a rank may use\",\n"
        "    \"devices_per_node\": \"the cores: one rank per core\"\n"
        "  }\n"
        "}\n",
        peak, bandwidth, list(gridM).c_str(), list(gridN).c_str(),
        list(gridK).c_str(), efficiencies.c_str(),
        std::max(1u, std::thread::hardware_concurrency()),
        linkBandwidth, smallest, linkBandwidth, smallest);
    std::fclose(out);
    std::printf("# wrote %s\n", argv[1]);
  }
  MPI_Finalize();
  return 0;
}
