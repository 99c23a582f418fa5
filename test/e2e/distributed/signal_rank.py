"""Runs an mpirun job, signals one rank once the job prints TEXT, and reports
how the job ended.

  signal_rank.py --rank R --signal KILL|STOP --after TEXT --within SECONDS \
      -- mpirun -np N PROGRAM ARGS...

Prints the job's output, then "job ended with status S after T s" (T counted
from the signal) or "job still running after SECONDS s" (then kills it).
Exits 0 either way: FileCheck judges the report.
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def find_rank(job, rank):
    """The pid of the job's process with Open MPI rank `rank`."""
    wanted = f"OMPI_COMM_WORLD_RANK={rank}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == job.pid:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                variables = file.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as file:
                parent = int(file.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if wanted in variables and parent != 1:
            return int(entry)
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--signal", choices=["KILL", "STOP"], required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--within", type=float, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    job = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    output = []
    victim = None
    for line in job.stdout:
        output.append(line)
        if args.after in line:
            victim = find_rank(job, args.rank)
            break
    if victim is None:
        job.kill()
        print("".join(output), end="")
        print(f"never saw '{args.after}' or rank {args.rank}")
        return 0
    os.kill(victim, getattr(signal, "SIG" + args.signal))
    signalled = time.monotonic()
    try:
        rest, _ = job.communicate(timeout=args.within)
        output.append(rest)
        report = (f"job ended with status {job.returncode} after "
                  f"{time.monotonic() - signalled:.1f} s")
    except subprocess.TimeoutExpired:
        report = f"job still running after {args.within} s"
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
    # A stopped rank that outlived the job must not linger.
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        pass
    print("".join(output), end="")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
