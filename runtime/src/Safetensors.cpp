//===- Safetensors.cpp - Tensor files in the safetensors format -----------===//

#include "cleave/runtime/Safetensors.h"

#include "Support.h"
#include "cleave/runtime/Checksum.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>

namespace cleave::rt {

using json = nlohmann::json;

namespace {
/// A header larger than this is certainly not a tensor index (the format's
/// reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

std::string describe(DType dtype, const std::vector<int64_t> &shape) {
  return std::string(getDTypeName(dtype)) + " " + formatShape(shape);
}

/// Parses one header entry into `info`; the error says what is wrong with
/// it (the caller prefixes file and tensor).
Status parseEntry(const json &entry, uint64_t dataSize, TensorInfo &info) {
  if (!entry.is_object())
    return Status::error("entry is not an object");
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string())
    return Status::error("missing string field 'dtype'");
  std::optional<DType> parsed = parseDType(dtype->get<std::string>());
  if (!parsed)
    return Status::error("unsupported dtype '" + dtype->get<std::string>() +
                         "'");
  info.dtype = *parsed;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array())
    return Status::error("missing array field 'shape'");
  for (const json &size : *shape) {
    if (!size.is_number_unsigned())
      return Status::error("shape entries must be non-negative integers");
    uint64_t value = size.get<uint64_t>();
    if (value > static_cast<uint64_t>(INT64_MAX))
      return Status::error("shape entry too large");
    info.shape.push_back(static_cast<int64_t>(value));
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    return Status::error("'data_offsets' must be two non-negative integers");
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.begin > info.end || info.end > dataSize)
    return Status::error("data_offsets [" + std::to_string(info.begin) + ", " +
                         std::to_string(info.end) +
                         ") lie outside the data section of " +
                         std::to_string(dataSize) + " bytes");

  std::optional<uint64_t> elements = getNumElements(info.shape);
  uint64_t elementSize = getDTypeSize(info.dtype);
  if (!elements || *elements > UINT64_MAX / elementSize)
    return Status::error("shape " + formatShape(info.shape) + " is too large");
  if (*elements * elementSize != info.getByteSize())
    return Status::error(describe(info.dtype, info.shape) + " needs " +
                         std::to_string(*elements * elementSize) +
                         " bytes but data_offsets span " +
                         std::to_string(info.getByteSize()));
  return Status::success();
}
} // namespace

uint64_t SafetensorsReader::computeChecksum() const {
  return computeXxh64(buffer.data(), buffer.size());
}

Status SafetensorsReader::open(const std::string &path,
                               SafetensorsReader &reader) {
  reader = SafetensorsReader();
  reader.path = path;
  auto fail = [&](const std::string &message) {
    return Status::error("'" + path + "': " + message);
  };
  if (Status status = readFileBytes(path, reader.buffer, ""); !status)
    return status;

  const std::vector<uint8_t> &buffer = reader.buffer;
  if (buffer.size() < 8)
    return fail("truncated: " + std::to_string(buffer.size()) +
                " bytes, fewer than the 8-byte header length");
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | buffer[i];
  if (headerSize > kMaxHeaderBytes)
    return fail("header length " + std::to_string(headerSize) +
                " is implausibly large; not a safetensors file?");
  if (8 + headerSize > buffer.size())
    return fail("truncated: header of " + std::to_string(headerSize) +
                " bytes but only " + std::to_string(buffer.size() - 8) +
                " follow");
  reader.dataStart = 8 + headerSize;
  uint64_t dataSize = buffer.size() - reader.dataStart;

  json header = json::parse(buffer.begin() + 8, buffer.begin() + 8 + headerSize,
                            /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return fail("header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object())
        return fail("'__metadata__' must be an object of strings");
      for (auto meta = it.value().begin(); meta != it.value().end(); ++meta) {
        if (!meta.value().is_string())
          return fail("'__metadata__' value of '" + meta.key() +
                      "' is not a string");
        reader.metadata[meta.key()] = meta.value().get<std::string>();
      }
      continue;
    }
    TensorInfo info;
    info.name = it.key();
    if (Status status = parseEntry(it.value(), dataSize, info); !status)
      return fail("tensor '" + info.name + "': " + status.message());
    reader.tensors.push_back(std::move(info));
  }

  // Tensors tile the data section exactly: no overlap, no hole.
  std::sort(reader.tensors.begin(), reader.tensors.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t covered = 0;
  const TensorInfo *previous = nullptr;
  for (const TensorInfo &tensor : reader.tensors) {
    if (tensor.begin < covered)
      return fail("tensors '" + previous->name + "' and '" + tensor.name +
                  "' overlap");
    if (tensor.begin > covered)
      return fail("data bytes [" + std::to_string(covered) + ", " +
                  std::to_string(tensor.begin) + ") belong to no tensor");
    covered = tensor.end;
    previous = &tensor;
  }
  if (covered != dataSize)
    return fail("data bytes [" + std::to_string(covered) + ", " +
                std::to_string(dataSize) + ") belong to no tensor");
  return Status::success();
}

const TensorInfo *SafetensorsReader::find(const std::string &name) const {
  for (const TensorInfo &tensor : tensors)
    if (tensor.name == name)
      return &tensor;
  return nullptr;
}

const uint8_t *SafetensorsReader::getData(const TensorInfo &tensor) const {
  return buffer.data() + dataStart + tensor.begin;
}

Status SafetensorsReader::read(const std::string &name, DType dtype,
                               const std::vector<int64_t> &shape,
                               void *destination) const {
  const TensorInfo *tensor = find(name);
  if (!tensor)
    return Status::error("'" + path + "': no tensor named '" + name +
                         "' (expected " + describe(dtype, shape) + ")");
  if (tensor->dtype != dtype || tensor->shape != shape)
    return Status::error("'" + path + "': tensor '" + name + "' is " +
                         describe(tensor->dtype, tensor->shape) +
                         ", expected " + describe(dtype, shape));
  if (tensor->getByteSize())
    std::memcpy(destination, getData(*tensor), tensor->getByteSize());
  return Status::success();
}

Status SafetensorsWriter::add(const std::string &name, DType dtype,
                              const std::vector<int64_t> &shape,
                              const void *data) {
  if (name.empty() || name == "__metadata__")
    return Status::error("invalid tensor name '" + name + "'");
  for (const Entry &entry : entries)
    if (entry.info.name == name)
      return Status::error("tensor '" + name + "' added twice");
  std::optional<uint64_t> elements = getNumElements(shape);
  uint64_t begin = entries.empty() ? 0 : entries.back().info.end;
  uint64_t elementSize = getDTypeSize(dtype);
  if (!elements || *elements > (UINT64_MAX - begin) / elementSize)
    return Status::error("tensor '" + name + "' has an invalid shape " +
                         formatShape(shape));
  TensorInfo info{name, dtype, shape, begin, begin + *elements * elementSize};
  entries.push_back({std::move(info), data});
  return Status::success();
}

Status SafetensorsWriter::write(const std::string &path,
                                uint64_t *checksum) const {
  json header = json::object();
  for (const Entry &entry : entries)
    header[entry.info.name] = {
        {"dtype", getDTypeName(entry.info.dtype)},
        {"shape", entry.info.shape},
        {"data_offsets", {entry.info.begin, entry.info.end}}};
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::type_error &) {
    return Status::error("cannot write '" + path +
                         "': a tensor name or metadata string is not valid "
                         "UTF-8");
  }
  // Pad with spaces so the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string temporary = path + ".tmp";
  std::FILE *file = std::fopen(temporary.c_str(), "wb");
  if (!file)
    return Status::error("cannot create '" + temporary +
                         "': " + std::strerror(errno));
  uint8_t length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  // The checksum follows the bytes as they are written.
  Xxh64 hasher;
  auto put = [&](const void *data, size_t bytes) {
    hasher.update(data, bytes);
    return bytes == 0 || std::fwrite(data, 1, bytes, file) == bytes;
  };
  bool ok = put(length, 8) && put(text.data(), text.size());
  for (const Entry &entry : entries)
    ok = ok && put(entry.data, entry.info.getByteSize());
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) {
    std::remove(temporary.c_str());
    return Status::error("cannot write '" + temporary +
                         "': " + std::strerror(errno));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return Status::error("cannot rename '" + temporary + "' to '" + path +
                         "': " + std::strerror(errno));
  }
  if (checksum)
    *checksum = hasher.digest();
  return Status::success();
}

Status readFileBytes(const std::string &path, std::vector<uint8_t> &bytes,
                     const std::string &what) {
  std::string named = what + "'" + path + "'";
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    return Status::error("cannot read " + named + ": it is a directory");
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file)
    return Status::error("cannot open " + named + ": " + std::strerror(errno));
  std::streamoff size = file.tellg();
  if (size < 0)
    return Status::error("cannot read " + named);
  try {
    bytes.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc &) {
    return Status::error("cannot read " + named + ": " + std::to_string(size) +
                         " bytes do not fit in memory");
  }
  file.seekg(0);
  if (size > 0 && !file.read(reinterpret_cast<char *>(bytes.data()), size))
    return Status::error("cannot read " + named);
  return Status::success();
}

} // namespace cleave::rt
