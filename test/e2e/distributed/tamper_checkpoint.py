"""Copies a checkpoint directory and damages the copy one way, for the
checkpoint integrity tests.

  tamper_checkpoint.py KIND SOURCE TARGET

KIND: flip (one bit in the middle of rank 1's file), step (the index's step
rewound by 2, onto the newer files), path (a piece of the first tensor
pointed at ../../../../etc/passwd), piece (a split tensor's first piece
read from rank 1's file, whose block is another), mesh (the index's first
mesh axis doubled).
"""

import json
import os
import shutil
import sys


def main(kind, source, target):
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    index_path = os.path.join(target, "checkpoint.json")
    with open(index_path) as file:
        index = json.load(file)
    if kind == "flip":
        shard = next(name for name in index["files"]
                     if name.endswith("rank-1.safetensors"))
        with open(os.path.join(target, shard), "r+b") as file:
            file.seek(0, os.SEEK_END)
            middle = file.tell() // 2
            file.seek(middle)
            byte = file.read(1)[0]
            file.seek(middle)
            file.write(bytes([byte ^ 0x10]))
        return 0
    if kind == "step":
        index["metadata"]["step"] = str(int(index["metadata"]["step"]) - 2)
    elif kind == "path":
        first = next(iter(index["tensors"].values()))
        first["pieces"][0]["file"] = "../../../../etc/passwd"
    elif kind == "piece":
        # One bit: a split tensor's first piece read from rank 1's file.
        split = next(entry for entry in index["tensors"].values()
                     if len(entry["pieces"]) == 2)
        first = split["pieces"][0]
        first["file"] = first["file"].replace("rank-0", "rank-1")
    elif kind == "mesh":
        index["mesh"]["sizes"][0] *= 2
    else:
        print(f"tamper_checkpoint.py: unknown kind '{kind}'")
        return 1
    with open(index_path, "w") as file:
        json.dump(index, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
