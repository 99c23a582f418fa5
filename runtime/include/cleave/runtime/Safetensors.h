//===- Safetensors.h - Tensor files in the safetensors format ---*- C++ -*-===//
//
// Weights, inputs, outputs and checkpoints are safetensors files: an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end)} (plus an optional
// "__metadata__" string map), then the raw little-endian data.
//
// The reader trusts nothing in the file: it checks the header bounds, the
// JSON structure, that dtype x shape equals each tensor's byte count, that
// tensors lie inside the data and neither overlap nor leave holes. Errors
// name the file and the tensor.
//
//===----------------------------------------------------------------------===//

#ifndef CLEAVE_RUNTIME_SAFETENSORS_H
#define CLEAVE_RUNTIME_SAFETENSORS_H

#include "cleave/runtime/DType.h"
#include "cleave/runtime/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cleave::rt {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  /// Byte range in the data section.
  uint64_t begin = 0;
  uint64_t end = 0;

  uint64_t getByteSize() const { return end - begin; }
};

class SafetensorsReader {
public:
  /// Reads and validates the whole file.
  static Status open(const std::string &path, SafetensorsReader &reader);

  const std::string &getPath() const { return path; }
  /// The XXH64 of the whole file, and its size.
  uint64_t computeChecksum() const;
  uint64_t getFileSize() const { return buffer.size(); }
  /// Tensors in file order (ascending data offsets).
  const std::vector<TensorInfo> &getTensors() const { return tensors; }
  const std::map<std::string, std::string> &getMetadata() const {
    return metadata;
  }
  /// nullptr when absent.
  const TensorInfo *find(const std::string &name) const;
  /// The tensor's bytes, inside this reader's buffer.
  const uint8_t *getData(const TensorInfo &tensor) const;

  /// Copies tensor `name` into `destination` after checking that it exists
  /// and has exactly `dtype` and `shape`; the error names the tensor and the
  /// expected and actual type.
  Status read(const std::string &name, DType dtype,
              const std::vector<int64_t> &shape, void *destination) const;

private:
  std::string path;
  std::vector<uint8_t> buffer;
  uint64_t dataStart = 0;
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

class SafetensorsWriter {
public:
  /// Adds a tensor; `data` must stay valid until write(). Names are unique.
  Status add(const std::string &name, DType dtype,
             const std::vector<int64_t> &shape, const void *data);
  void setMetadata(const std::string &key, const std::string &value) {
    metadata[key] = value;
  }
  /// Writes to a temporary file next to `path` and renames it into place, so
  /// a reader never sees a half-written file. `checksum`, when given,
  /// receives the file's XXH64.
  Status write(const std::string &path, uint64_t *checksum = nullptr) const;

private:
  struct Entry {
    TensorInfo info;
    const void *data;
  };
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

} // namespace cleave::rt

#endif // CLEAVE_RUNTIME_SAFETENSORS_H
