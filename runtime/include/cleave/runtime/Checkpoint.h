//===- Checkpoint.h - Sharded checkpoints -----------------------*- C++ -*-===//
//
// A checkpoint is a directory: `checkpoint.json`, the index, and one
// safetensors file per rank that holds blocks, under `step-N/` (or
// `step-N.b/` when the index in place already uses `step-N/`, so that saving
// the same step again never overwrites the files the index names). The index
// names the mesh it was saved on and, for every tensor, its dtype, global
// shape and pieces (file, offsets, shape). A reader assembles any box of a
// tensor from the pieces it overlaps, so a checkpoint loads onto any mesh,
// one rank included. Each block is written once, by the first rank holding
// it; the index is written last, atomically, and is what makes a step's
// checkpoint exist.
//
// Nothing is trusted on resume: the index records each file's size and
// XXH64 (each rank leaves its file's in `rank-R.safetensors.xxh64` for rank
// 0 to collect), every file records the step, data seed, program and mesh
// the index must agree with, and the files the index names must lie inside
// its directory. One training job writes to a directory at a time: it holds
// an advisory lock on `DIR/train.lock`.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_CHECKPOINT_H
#define CLEAVE_RUNTIME_CHECKPOINT_H

#include "cleave/runtime/DType.h"
#include "cleave/runtime/Mesh.h"
#include "cleave/runtime/Safetensors.h"
#include "cleave/runtime/Status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cleave::rt {

/// One block of a tensor in one rank's file.
struct CheckpointPiece {
  std::string file;
  Box box;
};

struct CheckpointTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<CheckpointPiece> pieces;
};

/// What the index records of a rank's file.
struct CheckpointFile {
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

struct CheckpointIndex {
  Mesh mesh;
  /// step, data_seed, program: each file's metadata repeats them.
  std::map<std::string, std::string> metadata;
  std::map<std::string, CheckpointTensor> tensors;
  /// Keyed by the path relative to the checkpoint directory.
  std::map<std::string, CheckpointFile> files;
  /// False for a version 1 index, which recorded no checksums: its files
  /// are read unverified.
  bool verified = true;
};

/// The directory, relative to `dir`, that a new checkpoint of `step` writes
/// its shards to: "step-N", or "step-N.b" when the current index uses
/// "step-N". Every rank computes the same before the save changes the index.
std::string chooseCheckpointStepDir(const std::string &dir, int64_t step);
/// "STEPDIR/rank-R.safetensors", relative to the checkpoint directory.
std::string getCheckpointShardName(const std::string &stepDir, int rank);
/// "DIR/checkpoint.json".
std::string getCheckpointIndexPath(const std::string &dir);
/// Where a rank leaves its file's size and checksum for rank 0's index.
std::string getCheckpointChecksumPath(const std::string &shardPath);
Status writeCheckpointChecksum(const std::string &shardPath,
                               const CheckpointFile &file);
Status readCheckpointChecksum(const std::string &shardPath,
                              CheckpointFile &file);
/// The metadata key under which a rank's file records where its block of
/// `tensor` lies ("offsets.<tensor>"), and how the offsets are written.
std::string getCheckpointOffsetsKey(const std::string &tensor);
std::string formatOffsets(const std::vector<int64_t> &offsets);
/// The metadata a rank's file carries: the index's, plus its mesh.
std::map<std::string, std::string>
getCheckpointFileMetadata(const CheckpointIndex &index);

/// Writes the index atomically (the last step of a save).
Status writeCheckpointIndex(const std::string &dir, const CheckpointIndex &index);
/// Removes the `step-*` directories of `dir` other than `keep`.
Status removeOldCheckpointSteps(const std::string &dir, const std::string &keep);

/// Reads a checkpoint written on any mesh.
class CheckpointReader {
public:
  /// Reads the index and checks that every file it names exists inside
  /// `dir`. Each file is checked against the index when first read.
  static Status open(const std::string &dir, CheckpointReader &reader);

  const CheckpointIndex &getIndex() const { return index; }
  /// Fills `output` (row-major `box.shape` of `dtype`) with the box of
  /// tensor `name`, checking its dtype and global shape.
  Status read(const std::string &name, DType dtype,
              const std::vector<int64_t> &globalShape, const Box &box,
              void *output);

private:
  /// Opens `file` and checks its size, checksum and metadata.
  Status openFile(const std::string &file, SafetensorsReader &reader) const;

  std::string dir;
  CheckpointIndex index;
  std::map<std::string, std::unique_ptr<SafetensorsReader>> files;
};

/// The variable through which cleavec, holding a run's lock, names itself
/// to the job it supervises (its pid).
constexpr const char *kOutputLockOwnerVariable = "CLEAVE_OUTPUT_LOCK_OWNER";

/// A run resumed from the checkpoint in `dir` keeps the data order it
/// records (`recorded`, its data_seed): another `seed` is refused unless
/// --reseed says it is meant.
Status checkResumedSeed(const std::string &dir, uint64_t recorded,
                        uint64_t seed);

/// The advisory lock (flock) on `DIR/train.lock` that one training job
/// holds on its output directory, released when the lock object or the
/// process ends. A second job is refused with the holder's pid.
class OutputDirectoryLock {
public:
  OutputDirectoryLock() = default;
  OutputDirectoryLock(const OutputDirectoryLock &) = delete;
  OutputDirectoryLock &operator=(const OutputDirectoryLock &) = delete;
  ~OutputDirectoryLock() { release(); }

  /// `dir` must exist. A lock already held by process `owner` (cleavec,
  /// supervising this job) counts as this job's.
  Status acquire(const std::string &dir, const std::string &owner = "");
  void release();

private:
  int descriptor = -1;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_CHECKPOINT_H
