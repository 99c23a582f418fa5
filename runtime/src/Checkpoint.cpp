//===- Checkpoint.cpp - Sharded checkpoints -------------------------------===//

#include "cleave/runtime/Checkpoint.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

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
  json document = {{"format", "cleave-checkpoint"},
                   {"version", 1},
                   {"mesh", {{"axes", index.mesh.axes}, {"sizes", index.mesh.sizes}}},
                   {"metadata", index.metadata},
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

Status parseIndex(const std::string &path, const json &document,
                  CheckpointIndex &index) {
  if (document.value("format", "") != "cleave-checkpoint" ||
      document.value("version", 0) != 1)
    return Status::error("'" + path + "' is not a version 1 cleave checkpoint "
                                      "index");
  const json &mesh = document.at("mesh");
  index.mesh.axes = mesh.at("axes").get<std::vector<std::string>>();
  index.mesh.sizes = mesh.at("sizes").get<std::vector<int64_t>>();
  index.metadata =
      document.at("metadata").get<std::map<std::string, std::string>>();
  for (const auto &[name, entry] : document.at("tensors").items()) {
    CheckpointTensor tensor;
    std::optional<DType> dtype = parseDType(entry.at("dtype").get<std::string>());
    if (!dtype)
      return Status::error("'" + path + "': tensor '" + name +
                           "' has an unknown dtype");
    tensor.dtype = *dtype;
    tensor.shape = entry.at("shape").get<std::vector<int64_t>>();
    for (const json &piece : entry.at("pieces")) {
      CheckpointPiece parsed;
      parsed.file = piece.at("file").get<std::string>();
      parsed.box.offsets = piece.at("offsets").get<std::vector<int64_t>>();
      parsed.box.shape = piece.at("shape").get<std::vector<int64_t>>();
      if (parsed.box.offsets.size() != tensor.shape.size() ||
          parsed.box.shape.size() != tensor.shape.size())
        return Status::error("'" + path + "': a piece of tensor '" + name +
                             "' has the wrong rank");
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
      file = std::make_unique<SafetensorsReader>();
      CLEAVE_RETURN_IF_ERROR(SafetensorsReader::open(dir + "/" + piece.file, *file));
    }
    const TensorInfo *info = file->find(name);
    if (!info || info->dtype != dtype || info->shape != piece.box.shape)
      return Status::error("'" + dir + "/" + piece.file +
                           "' does not hold the piece of '" + name +
                           "' the index describes");
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

} // namespace cleave::rt
