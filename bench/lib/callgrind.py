"""The instruction counts of a service running under valgrind's callgrind, for the bench scripts."""

import glob
import os
import shutil


def dumped_total(work, pid, keep="", name=None):
    """The instructions of the dumps in `work` since the last one, all threads added up; the dumps
    are removed, after a copy into `keep` (named `name.<file>`) when both are given.

    Each dump writes one file per thread (callgrind.<pid>.<n>-<thread>); the totals add up."""
    total = 0
    for path in glob.glob(f"{work}/callgrind.{pid}*"):
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
        if keep and name:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(path, os.path.join(keep, name + "." + os.path.basename(path)))
        os.remove(path)
    return total
