"""`python bench/rusage.py REPORT -- COMMAND...`: run COMMAND, wait for it with `os.wait4` and
write its exit code, wall time, CPU time (user + system) and peak RSS to the file REPORT as
JSON.

Why a separate launcher: Linux carries a process's RSS high-water mark across fork and exec,
so a child started by a benchmark that holds a 50,000-pod fake cluster in memory would report
the benchmark's RSS as its own peak. Started fresh, this launcher stays small (its own RSS is
the floor of what it can report), and the command's ru_maxrss is then the command's own.
"""

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    report, command = argv[1], argv[3:]
    started = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w") as out:
        json.dump({"returncode": os.waitstatus_to_exitcode(status),
                   "wall_seconds": time.perf_counter() - started,
                   "cpu_seconds": usage.ru_utime + usage.ru_stime,
                   "peak_rss_kb": usage.ru_maxrss}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
