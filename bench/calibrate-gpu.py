#!/usr/bin/env python3
"""Merges a GPU calibration (bench/calibrate/gpu.cu's JSON) into a cluster
file: the GEMM efficiency by shape (the measured bf16 rate over the
cluster's datasheet bf16 peak) as device.gemm_table, the best of it as
device.gemm_efficiency, the measured memory bandwidth, and with two or
more ranks the link inside the node (the all-reduce's bus bandwidth at
1 GiB and the latency of the smallest). Everything it sets is marked
measured in `sources`.

    bench/calibrate-gpu.py CLUSTER.json CALIBRATION.json -o OUT.json
"""

import argparse
import datetime
import json
import sys


def merge(cluster, calibration):
    device = cluster["device"]
    peak = device["peak_flops"].get("bf16")
    if not peak:
        raise ValueError("the cluster file gives no bf16 peak to measure against")
    gemms = calibration["gemm_bf16_flops"]
    shapes = len(gemms["m"]) * len(gemms["n"]) * len(gemms["k"])
    if len(gemms["rate"]) != shapes:
        raise ValueError(f"{len(gemms['rate'])} GEMM rates for {shapes} shapes")
    efficiency = [min(1.0, rate / peak) for rate in gemms["rate"]]
    device["gemm_table"] = {"m": gemms["m"], "n": gemms["n"], "k": gemms["k"],
                            "efficiency": [round(e, 4) for e in efficiency]}
    device["gemm_efficiency"] = round(max(efficiency), 4)
    device["memory_bandwidth"] = calibration["memory_bandwidth"]
    when = datetime.date.today().isoformat()
    where = f"{calibration['device']}, {when}"
    sources = cluster.setdefault("sources", {})
    sources["gemm_efficiency"] = (
        f"measured: bench/calibrate/gpu.cu, the best bf16 cuBLAS GEMM of the "
        f"grid over the datasheet peak ({where})")
    sources["gemm_table"] = (
        f"measured: bench/calibrate/gpu.cu, bf16 cuBLAS GEMMs over the grid, "
        f"as a share of the datasheet peak ({where})")
    sources["memory_bandwidth"] = (
        f"measured: a 1 GiB device-to-device copy, bytes read and written "
        f"({where})")
    if "link" in calibration:
        cluster["links"]["intra_node"] = calibration["link"]
        sources["links.intra_node"] = (
            f"measured: NCCL over {calibration['ranks']} ranks, bandwidth from "
            f"the 1 GiB all-reduce's busbw, latency from the 8-byte "
            f"all-reduce ({where})")
    return cluster


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cluster")
    parser.add_argument("calibration")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    try:
        cluster = merge(json.load(open(args.cluster)),
                        json.load(open(args.calibration)))
    except (OSError, ValueError, KeyError) as error:
        print(f"calibrate-gpu.py: {error}", file=sys.stderr)
        return 1
    with open(args.output, "w") as out:
        json.dump(cluster, out, indent=2)
        out.write("\n")
    print(f"calibrate-gpu.py: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
