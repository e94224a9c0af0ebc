"""RQ (python-rq) on raftis, unchanged: enqueue, a SimpleWorker with the scheduler, scheduled jobs,
results; run by tests/apps.rs, which may kill the leader meanwhile.

Usage: rq_check.py MODE ADDRS JOBS
       rq_check.py worker MODE ADDRS      (the worker process the check starts)
  MODE direct:   ADDRS is one HOST:PORT (a redis-server, or a raftis follower in proxy mode)
  MODE sentinel: ADDRS is HOST:PORT,... of the raftis nodes, used as sentinels (master "raftis")

JOBS jobs are enqueued one at a time (every tenth with `enqueue_in`, one second ahead); a
worker process runs SimpleWorker(..., with_scheduler=True) in burst mode, again and again. RQ's
clients are built without retries: a connection error (a leader killed, an election, a proxied
session closed) is counted, and the producer sends the same enqueue again; the worker starts
over. A job whose worker lost its connection mid-run is recovered the way an RQ operator would:
once its heartbeat expires, StartedJobRegistry.cleanup moves it to the failed registry, from
which it is requeued.

The check: every job whose enqueue was acknowledged finishes, with the return value RQ stores
(2n), and ran (its number is in a set the job writes); `latest_result(timeout=...)` (XREAD
BLOCK on the job's result stream) returns the first job's. Prints "progress N" every 100 enqueued
jobs, "RQ OK" with counts and jobs/s on success; exits 1 otherwise.
"""

import atexit
import subprocess
import sys
import time
from datetime import timedelta

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from checks import Persist, plain_client  # noqa: E402
from rq_jobs import record  # noqa: E402

WORKER = sys.argv[1] == "worker"
MODE, ADDRS = sys.argv[1 + WORKER], sys.argv[2 + WORKER]
DEADLINE = time.monotonic() + 220  # a requeue waits out RQ's ~65 s heartbeat TTL
TRANSIENT = (RedisConnectionError, RedisTimeoutError)
OPTS = dict(socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def connect():
    return plain_client(MODE, ADDRS, **OPTS)


# Connection errors seen by this process (the worker process reports its own on stderr).
persist = Persist(DEADLINE, TRANSIENT, ["producer", "worker", "checker"])
errors = persist.errors


if WORKER:
    while time.monotonic() < DEADLINE:
        try:
            conn = connect()
            SimpleWorker([Queue("apps", connection=conn)], connection=conn).work(burst=True, with_scheduler=True)
        except TRANSIENT:
            errors["worker"] += 1
            print(f"worker: connection errors {errors['worker']}", file=sys.stderr, flush=True)
        time.sleep(0.2)
    sys.exit(0)

JOBS = int(sys.argv[3])
producer = connect()
queue = Queue("apps", connection=producer)
persist("producer", "cleaning up", lambda: producer.delete("apps:rq:ran"))
worker = subprocess.Popen([sys.executable, __file__, "worker", MODE, ADDRS], stdout=subprocess.DEVNULL)
atexit.register(worker.kill)  # also when this check fails early
started = time.monotonic()
acked = {}
for n in range(JOBS):
    if n % 10 == 0:
        job = persist("producer", f"enqueue_in {n}",
                      lambda: queue.enqueue_in(timedelta(seconds=1), record, n, job_timeout=5, result_ttl=3600))
    else:
        job = persist("producer", f"enqueue {n}", lambda: queue.enqueue(record, n, job_timeout=5, result_ttl=3600))
    acked[job.id] = n
    if (n + 1) % 100 == 0:
        print(f"progress {n + 1}", flush=True)

checker = connect()
requeued = 0
while True:
    if time.monotonic() > DEADLINE:
        break
    statuses = {}

    def look():
        pipe = checker.pipeline(transaction=False)
        for job_id in acked:
            pipe.hget(f"rq:job:{job_id}", "status")
        return pipe.execute()

    for job_id, status in zip(acked, persist("checker", "job statuses", look)):
        statuses[job_id] = status.decode() if status else None
    pending = [j for j, s in statuses.items() if s != JobStatus.FINISHED.value]
    if not pending:
        break
    # Jobs a lost connection abandoned: moved to failed once their heartbeat expires, then requeued.
    persist("checker", "registry cleanup", lambda: queue.started_job_registry.cleanup())
    for job_id in pending:
        if statuses[job_id] == JobStatus.FAILED.value:
            persist("checker", f"requeue {job_id}", lambda: queue.failed_job_registry.requeue(job_id))
            requeued += 1
    time.sleep(0.5)
took = time.monotonic() - started
worker.kill()
worker.wait()

wrong = []
ran = {int(x) for x in persist("checker", "the ran set", lambda: checker.smembers("apps:rq:ran"))}
for job_id, n in acked.items():
    job = persist("checker", f"fetch {job_id}", lambda: Job.fetch(job_id, connection=checker))
    status = job.get_status()
    value = job.return_value()
    if status != JobStatus.FINISHED or value != 2 * n or n not in ran:
        wrong.append((n, job_id, str(status), value, n in ran))

# RQ's latest_result with a timeout reads the result stream with XREAD BLOCK.
first_id, first_n = next(iter(acked.items()))
latest = persist("checker", "latest_result", lambda: Job.fetch(first_id, connection=checker).latest_result(timeout=2))
if latest is None or latest.return_value != 2 * first_n:
    wrong.append((first_n, first_id, "latest_result", latest and latest.return_value, first_n in ran))

print(f"jobs={JOBS} acked={len(acked)} finished={len(acked) - len(wrong)} requeued={requeued} "
      f"connection_errors={errors} seconds={took:.1f} jobs_per_s={len(acked) / took:.1f}")
if wrong:
    print("not done (n, id, status, return value, ran):", wrong[:10])
    sys.exit(1)
print("RQ OK")
