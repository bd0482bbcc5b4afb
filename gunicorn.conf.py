"""gunicorn's settings file, read from the working directory by itself (the image's /app).

With PROMETHEUS_MULTIPROC_DIR set, every gunicorn worker writes its request metrics to files in that
directory and /metrics sums them all (prometheus_client's multiprocess mode), whichever worker answers the
scrape. The directory is emptied when gunicorn starts, and a worker's files are let go when it exits.
Without it, each worker counts only its own requests and a scrape sees one worker's share.
"""

import os
import shutil

# A worker is replaced after this many requests (give or take the jitter, so that they are not all replaced
# at once): the soak run (bench/soak.py) saw a web worker's memory climb slowly and steadily. Not much
# sooner: a new worker costs about a second of CPU to start, and at a launch's few hundred signups a second
# per worker, replacing each every 5,000 requests cost the signup API about a tenth of its throughput with
# 4 workers on 2 cores (bench/signups.py).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2000"))


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)  # counts of a previous run would be summed in
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
