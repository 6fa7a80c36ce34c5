# Runs one command and prints its wall time and peak RSS as JSON. The peak is the kernel's own accounting of the
# finished child (getrusage of children), so neither this wrapper's start-up nor its memory is in the figures.
import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
status = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"status": status.returncode, "wallMs": wall * 1000, "peakKiB": peak_kib, "stderr": status.stderr.decode(errors="replace")[-400:]}))
