"""Run a command and write its wall time, CPU and peak RSS as JSON: ``python -m bench.measure OUT -- CMD…``.

Why a launcher: Linux charges a child's ``ru_maxrss`` with the RSS its parent had when it forked
(the old address space's high-water mark is kept at exec), so a benchmark process that holds
500,000 synthetic rows would report them as the exporter's memory. This process is small when it
forks, so ``wait4`` on the command gives the command's own peak RSS and user+sys seconds.
Exits with the command's exit status.
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    out, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        print("usage: python -m bench.measure OUT.json -- COMMAND [ARGS…]", file=sys.stderr)
        return 2
    started = time.monotonic()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"returncode": code, "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
                   "maxrss_mb": usage.ru_maxrss / 1024}, fh)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
