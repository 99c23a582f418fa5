"""Runs a training job, signals its launcher once the job prints TEXT, and
reports whether any process of the job outlived the wait.

  stop_job.py --after TEXT --signal TERM|INT|HUP|KILL --within SECONDS \
      --watch WORD [--during COMMAND]... -- COMMAND...

A process belongs to the job when its command line contains WORD (the
output directory: mpirun and every rank name it). Each --during command
runs through the shell once TEXT appeared, before the signal, and its
output and exit status are printed. Then prints the job's output and
"job gone after T s (launcher status S)" or "job left N processes after
SECONDS s" (then kills them). Exits 0 either way: FileCheck judges the
report.
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def find_job(word, exclude):
    """The pids whose command line contains `word`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                words = file.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as file:
                state = file.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # A zombie has ended; only its parent's wait is missing.
        if state != "Z" and any(word.encode() in part for part in words):
            pids.append(int(entry))
    return pids


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--after", required=True)
    parser.add_argument("--signal", choices=["TERM", "INT", "HUP", "KILL"],
                        required=True)
    parser.add_argument("--within", type=float, required=True)
    parser.add_argument("--watch", required=True)
    parser.add_argument("--during", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    job = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    output = []
    for line in job.stdout:
        output.append(line)
        if args.after in line:
            break
    else:
        job.wait()
        print("".join(output), end="")
        print(f"never saw '{args.after}'")
        return 0
    for during in args.during:
        ran = subprocess.run(during, shell=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        print(ran.stdout, end="")
        print(f"during: exit status {ran.returncode}")

    me = {os.getpid()}
    job.send_signal(getattr(signal, "SIG" + args.signal))
    signalled = time.monotonic()
    # Ranks that outlive the launcher hold its output open: do not wait
    # for it past the deadline.
    try:
        rest, _ = job.communicate(timeout=args.within)
        output.append(rest)
    except subprocess.TimeoutExpired:
        job.wait()
    left = find_job(args.watch, me)
    while left and time.monotonic() - signalled < args.within:
        time.sleep(0.05)
        left = find_job(args.watch, me)
    print("".join(output), end="")
    if left:
        print(f"job left {len(left)} processes after {args.within} s")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    else:
        print(f"job gone after {time.monotonic() - signalled:.1f} s "
              f"(launcher status {job.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
