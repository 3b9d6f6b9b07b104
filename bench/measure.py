"""Run one command and print its wall time and peak RSS as JSON (used by bench/scale.py).

Each measured command runs under its own instance of this wrapper, so RUSAGE_CHILDREN's
maximum is that command's peak alone.
"""

import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
wall = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(
    json.dumps(
        {
            "exit": completed.returncode,
            "wall_seconds": round(wall, 2),
            "peak_rss_mb": round(peak_kib / 1024, 1),
            "stdout_tail": completed.stdout[-2000:],
            "stderr_tail": completed.stderr[-2000:],
        }
    )
)
