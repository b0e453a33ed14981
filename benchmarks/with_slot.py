"""Run one command in a run slot of --share-cores DIR (`harness.SharedCores`), after waiting its turn in the queue:
a shell step of the long-run scripts (`pretrain_epochs_probe.sh`) then counts as one of the two runs at a time,
beside the benchmarks' workers, instead of a third.

    python benchmarks/with_slot.py --share-cores benchmarks/out/cores --priority 20 -- bash benchmarks/x.sh ARGS

Exits with the command's status; the slot is given back when it ends (or when this process dies: a file lock).
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import SharedCores, release  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share-cores", required=True, metavar="DIR", help="the slots' folder (runs_common.sh's)")
    parser.add_argument("--priority", type=int, default=0, help="lower goes first (default 0)")
    parser.add_argument("--slots", type=int, default=2, help="run slots in DIR (default 2, the benchmarks')")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between two asks for a slot")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run: give it after --")
    cores = SharedCores(args.share_cores, args.slots, args.priority)
    while (slot := cores.take()) is None:
        time.sleep(args.poll)
    try:
        return subprocess.call(command)
    finally:
        release(slot)


if __name__ == "__main__":
    sys.exit(main())
