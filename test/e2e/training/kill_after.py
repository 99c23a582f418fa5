"""Runs a command and kills it (SIGKILL, no chance to clean up) as soon as
it prints a line containing TEXT: a crash right after a checkpoint.

  kill_after.py TEXT COMMAND...

Exits 0 if the command was killed, 1 if it ended on its own first.
"""

import signal
import subprocess
import sys


def main(text, *command):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        sys.stdout.write(line)
        if text in line:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return 0
    process.wait()
    print(f"kill_after.py: the command ended before printing '{text}'")
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
