//===- Checkpoint.cpp - Sharded checkpoints -------------------------------===//

#include "cleave/runtime/Checkpoint.h"

#include "cleave/runtime/Checksum.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/file.h>
#include <unistd.h>

namespace cleave::rt {

using nlohmann::json;

std::string chooseCheckpointStepDir(const std::string &dir, int64_t step) {
  std::string plain = "step-" + std::to_string(step);
  std::ifstream index(getCheckpointIndexPath(dir));
  std::string text((std::istreambuf_iterator<char>(index)),
                   std::istreambuf_iterator<char>());
  return text.find("\"" + plain + "/") == std::string::npos ? plain
                                                             : plain + ".b";
}

std::string getCheckpointShardName(const std::string &stepDir, int rank) {
  return stepDir + "/rank-" + std::to_string(rank) + ".safetensors";
}

std::string getCheckpointIndexPath(const std::string &dir) {
  return dir + "/checkpoint.json";
}

std::string getCheckpointChecksumPath(const std::string &shardPath) {
  return shardPath + ".xxh64";
}

Status writeCheckpointChecksum(const std::string &shardPath,
                               const CheckpointFile &file) {
  std::string path = getCheckpointChecksumPath(shardPath);
  std::ofstream out(path);
  out << formatChecksum(file.checksum) << " " << file.bytes << "\n";
  if (!out.flush())
    return Status::error("cannot write '" + path + "'");
  return Status::success();
}

Status readCheckpointChecksum(const std::string &shardPath,
                              CheckpointFile &file) {
  std::string path = getCheckpointChecksumPath(shardPath);
  std::ifstream in(path);
  std::string checksum;
  unsigned long long bytes = 0;
  if (!(in >> checksum >> bytes) || checksum.size() != 16)
    return Status::error("cannot read the checksum a rank left in '" + path +
                         "'");
  file.checksum = std::strtoull(checksum.c_str(), nullptr, 16);
  file.bytes = bytes;
  return Status::success();
}

std::string getCheckpointOffsetsKey(const std::string &tensor) {
  return "offsets." + tensor;
}

std::string formatOffsets(const std::vector<int64_t> &offsets) {
  std::string text;
  for (int64_t offset : offsets)
    text += (text.empty() ? "" : ",") + std::to_string(offset);
  return text;
}

std::map<std::string, std::string>
getCheckpointFileMetadata(const CheckpointIndex &index) {
  std::map<std::string, std::string> metadata = index.metadata;
  metadata["mesh"] = index.mesh.toString();
  return metadata;
}

Status writeCheckpointIndex(const std::string &dir,
                            const CheckpointIndex &index) {
  json tensors = json::object();
  for (const auto &[name, tensor] : index.tensors) {
    json pieces = json::array();
    for (const CheckpointPiece &piece : tensor.pieces)
      pieces.push_back({{"file", piece.file},
                        {"offsets", piece.box.offsets},
                        {"shape", piece.box.shape}});
    tensors[name] = {{"dtype", getDTypeName(tensor.dtype)},
                     {"shape", tensor.shape},
                     {"pieces", pieces}};
  }
  json files = json::object();
  for (const auto &[name, file] : index.files)
    files[name] = {{"bytes", file.bytes},
                   {"xxh64", formatChecksum(file.checksum)}};
  json document = {
      {"format", "cleave-checkpoint"},
      {"version", 2},
      {"mesh", {{"axes", index.mesh.axes}, {"sizes", index.mesh.sizes}}},
      {"metadata", index.metadata},
      {"files", files},
      {"tensors", tensors}};
  std::string path = getCheckpointIndexPath(dir);
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << document.dump(1) << "\n";
    if (!out.flush())
      return Status::error("cannot write '" + temporary + "'");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    return Status::error("cannot rename '" + temporary + "' to '" + path + "'");
  return Status::success();
}

Status removeOldCheckpointSteps(const std::string &dir,
                                const std::string &keep) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (const fs::directory_entry &entry : fs::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) == 0 && name != keep && entry.is_directory())
      fs::remove_all(entry.path(), error);
  }
  if (error)
    return Status::error("cannot remove old checkpoints in '" + dir +
                         "': " + error.message());
  return Status::success();
}

namespace {

bool overlaps(const Box &a, const Box &b) {
  for (size_t d = 0; d < a.shape.size(); ++d)
    if (std::max(a.offsets[d], b.offsets[d]) >=
        std::min(a.offsets[d] + a.shape[d], b.offsets[d] + b.shape[d]))
      return false;
  return true;
}

/// Whether `file` names a path inside the checkpoint directory: relative,
/// without `..`.
bool isInsideDirectory(const std::string &file) {
  std::filesystem::path path(file);
  if (file.empty() || path.is_absolute() || path.has_root_name())
    return false;
  return std::none_of(
      path.begin(), path.end(),
      [](const std::filesystem::path &part) { return part == ".."; });
}

Status parseIndex(const std::string &path, const json &document,
                  CheckpointIndex &index) {
  auto fail = [&](const std::string &message) {
    return Status::error("'" + path + "': " + message);
  };
  if (document.value("format", "") != "cleave-checkpoint")
    return fail("not a cleave checkpoint index");
  int version = document.value("version", 0);
  if (version != 1 && version != 2)
    return fail("version " + std::to_string(version) +
                " of the checkpoint index; this Cleave reads versions 1 "
                "and 2");
  // Version 1 recorded no checksums: its files are read unverified.
  index.verified = version == 2;
  const json &mesh = document.at("mesh");
  index.mesh.axes = mesh.at("axes").get<std::vector<std::string>>();
  index.mesh.sizes = mesh.at("sizes").get<std::vector<int64_t>>();
  if (index.mesh.axes.size() != index.mesh.sizes.size() ||
      std::any_of(index.mesh.sizes.begin(), index.mesh.sizes.end(),
                  [](int64_t size) { return size < 1; }))
    return fail("field 'mesh' does not describe a mesh");
  index.metadata =
      document.at("metadata").get<std::map<std::string, std::string>>();
  json files = index.verified ? document.at("files") : json::object();
  for (const auto &[file, entry] : files.items()) {
    if (!isInsideDirectory(file))
      return fail("field 'files' names '" + file +
                  "', which is outside the checkpoint's directory");
    std::string checksum = entry.at("xxh64").get<std::string>();
    if (checksum.size() != 16 ||
        checksum.find_first_not_of("0123456789abcdef") != std::string::npos)
      return fail("file '" + file + "' has a malformed 'xxh64'");
    index.files[file] = {entry.at("bytes").get<uint64_t>(),
                         std::strtoull(checksum.c_str(), nullptr, 16)};
  }
  for (const auto &[name, entry] : document.at("tensors").items()) {
    CheckpointTensor tensor;
    std::optional<DType> dtype = parseDType(entry.at("dtype").get<std::string>());
    if (!dtype)
      return fail("tensor '" + name + "' has an unknown dtype");
    tensor.dtype = *dtype;
    tensor.shape = entry.at("shape").get<std::vector<int64_t>>();
    for (const json &piece : entry.at("pieces")) {
      CheckpointPiece parsed;
      parsed.file = piece.at("file").get<std::string>();
      parsed.box.offsets = piece.at("offsets").get<std::vector<int64_t>>();
      parsed.box.shape = piece.at("shape").get<std::vector<int64_t>>();
      if (parsed.box.offsets.size() != tensor.shape.size() ||
          parsed.box.shape.size() != tensor.shape.size())
        return fail("a piece of tensor '" + name + "' has the wrong rank");
      if (!isInsideDirectory(parsed.file))
        return fail("a piece of tensor '" + name + "' names the file '" +
                    parsed.file +
                    "', which is outside the checkpoint's directory");
      if (index.verified && !index.files.count(parsed.file))
        return fail("a piece of tensor '" + name + "' is in '" + parsed.file +
                    "', which field 'files' does not list");
      tensor.pieces.push_back(std::move(parsed));
    }
    index.tensors[name] = std::move(tensor);
  }
  return Status::success();
}

} // namespace

Status CheckpointReader::open(const std::string &dir, CheckpointReader &reader) {
  std::string path = getCheckpointIndexPath(dir);
  std::ifstream in(path);
  if (!in)
    return Status::error("no checkpoint in '" + dir + "': cannot open '" +
                         path + "'");
  reader.dir = dir;
  reader.index = CheckpointIndex();
  reader.files.clear();
  try {
    json document = json::parse(in);
    CLEAVE_RETURN_IF_ERROR(parseIndex(path, document, reader.index));
  } catch (const json::exception &error) {
    return Status::error("'" + path + "' is not a valid checkpoint index: " +
                         error.what());
  }
  // Every file the index names must be there before anything is read.
  for (const auto &[name, tensor] : reader.index.tensors)
    for (const CheckpointPiece &piece : tensor.pieces) {
      std::string file = dir + "/" + piece.file;
      if (!std::filesystem::exists(file))
        return Status::error("checkpoint '" + dir + "' is missing '" + file +
                             "' (a piece of '" + name + "')");
    }
  return Status::success();
}

Status CheckpointReader::openFile(const std::string &file,
                                  SafetensorsReader &reader) const {
  std::string path = dir + "/" + file;
  std::string indexPath = getCheckpointIndexPath(dir);
  CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(path, reader));
  if (!index.verified)
    return Status::success();
  const CheckpointFile &recorded = index.files.at(file);
  if (reader.getFileSize() != recorded.bytes)
    return Status::error("'" + path + "' has " +
                         std::to_string(reader.getFileSize()) +
                         " bytes, but field 'bytes' of '" + indexPath +
                         "' says " + std::to_string(recorded.bytes) +
                         ": the file is truncated or was replaced");
  if (uint64_t checksum = reader.computeChecksum();
      checksum != recorded.checksum)
    return Status::error(
        "'" + path + "' has XXH64 " + formatChecksum(checksum) +
        ", but field 'xxh64' of '" + indexPath + "' says " +
        formatChecksum(recorded.checksum) + ": the file is corrupt");
  // The file is the one written; the index must describe the same run.
  for (const auto &[key, value] : getCheckpointFileMetadata(index)) {
    auto it = reader.getMetadata().find(key);
    if (it == reader.getMetadata().end())
      return Status::error("'" + path + "' records no '" + key +
                           "', which field '" + key + "' of '" + indexPath +
                           "' gives as '" + value + "'");
    if (it->second != value)
      return Status::error("field '" + key + "' of '" + indexPath + "' says '" +
                           value + "', but '" + path + "' was written with " +
                           key + " '" + it->second +
                           "': the index does not belong to these files");
  }
  return Status::success();
}

Status CheckpointReader::read(const std::string &name, DType dtype,
                              const std::vector<int64_t> &globalShape,
                              const Box &box, void *output) {
  auto it = index.tensors.find(name);
  if (it == index.tensors.end())
    return Status::error("checkpoint '" + dir + "' has no tensor '" + name +
                         "'");
  const CheckpointTensor &tensor = it->second;
  if (tensor.dtype != dtype || tensor.shape != globalShape)
    return Status::error("checkpoint '" + dir + "': tensor '" + name +
                         "' is " + getDTypeName(tensor.dtype) +
                         formatShape(tensor.shape) + ", the program wants " +
                         getDTypeName(dtype) + formatShape(globalShape));
  int64_t wanted = 1, copied = 0;
  for (int64_t extent : box.shape)
    wanted *= extent;
  for (const CheckpointPiece &piece : tensor.pieces) {
    if (!overlaps(piece.box, box))
      continue;
    std::unique_ptr<SafetensorsReader> &file = files[piece.file];
    if (!file) {
      auto opened = std::make_unique<SafetensorsReader>();
      CLEAVE_RETURN_IF_ERROR(openFile(piece.file, *opened));
      file = std::move(opened);
    }
    const TensorInfo *info = file->find(name);
    if (!info || info->dtype != dtype || info->shape != piece.box.shape)
      return Status::error("'" + dir + "/" + piece.file +
                           "' does not hold the piece of '" + name +
                           "' the index describes");
    if (index.verified) {
      auto recorded = file->getMetadata().find(getCheckpointOffsetsKey(name));
      std::string offsets = formatOffsets(piece.box.offsets);
      if (recorded == file->getMetadata().end() || recorded->second != offsets)
        return Status::error("field 'tensors' of '" +
                             getCheckpointIndexPath(dir) + "' places '" + name +
                             "' at offsets [" + offsets + "] of '" + dir + "/" +
                             piece.file + "', which holds " +
                             (recorded == file->getMetadata().end()
                                  ? std::string("no offsets of it")
                                  : "its block at [" + recorded->second + "]") +
                             ": the index does not belong to these files");
    }
    copied += copyOverlap(getDTypeSize(dtype), piece.box, file->getData(*info),
                          box, output);
  }
  if (copied != wanted)
    return Status::error("checkpoint '" + dir + "' covers " +
                         std::to_string(copied) + " of the " +
                         std::to_string(wanted) + " elements of '" + name +
                         "' this rank needs");
  return Status::success();
}

Status checkResumedSeed(const std::string &dir, uint64_t recorded,
                        uint64_t seed) {
  if (seed == recorded)
    return Status::success();
  return Status::error("--seed " + std::to_string(seed) +
                       " is not the data seed " + std::to_string(recorded) +
                       " that '" + getCheckpointIndexPath(dir) +
                       "' records (field 'data_seed'); give --reseed to "
                       "continue on seed " +
                       std::to_string(seed) + "'s data order");
}

Status OutputDirectoryLock::acquire(const std::string &dir,
                                    const std::string &owner) {
  release();
  std::string path = dir + "/train.lock";
  int opened = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (opened < 0)
    return Status::error("cannot open '" + path + "': " + std::strerror(errno));
  if (::flock(opened, LOCK_EX | LOCK_NB) != 0) {
    int reason = errno;
    char holder[32] = {};
    ssize_t length = ::pread(opened, holder, sizeof(holder) - 1, 0);
    ::close(opened);
    if (reason != EWOULDBLOCK)
      return Status::error("cannot lock '" + path +
                           "': " + std::strerror(reason));
    std::string pid = length > 0 ? std::string(holder, length) : "";
    pid.erase(pid.find_last_not_of(" \n") + 1);
    if (!owner.empty() && pid == owner)
      return Status::success();
    return Status::error("another training job" +
                         (pid.empty() ? "" : " (pid " + pid + ")") +
                         " is writing to '" + dir + "' (it holds '" + path +
                         "'): give this run another output directory, or "
                         "stop that job");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(opened, 0) != 0 ||
      ::pwrite(opened, pid.data(), pid.size(), 0) !=
          static_cast<ssize_t>(pid.size())) {
    int reason = errno;
    ::close(opened);
    return Status::error("cannot write '" + path +
                         "': " + std::strerror(reason));
  }
  descriptor = opened;
  return Status::success();
}

void OutputDirectoryLock::release() {
  if (descriptor >= 0)
    ::close(descriptor);
  descriptor = -1;
}

} // namespace cleave::rt
