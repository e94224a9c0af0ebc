#!/usr/bin/env python3
"""Job throughput of two Redis-backed job queues, unchanged, against one address (a redis-server,
or a raftis leader): RQ and Celery, as their users run them.

rq:     N jobs enqueued one at a time (Queue.enqueue, each its own round trips), then one
        SimpleWorker in this process runs them in burst mode (no fork per job) until the queue
        is empty. Reports the enqueue rate, the work rate and jobs/s over both.
celery: a worker process (`celery worker --pool threads --concurrency 4`, kombu's Redis transport,
        the Redis result backend) is started and warmed up (one task sent and its result seen);
        then N tasks are sent one at a time and every result is waited for (the backend's
        GET-based get_task_meta, polled). jobs/s is N over the time from the first send to the
        last result.

Every job's result is checked (2n); a missing or wrong one makes the run fail.

Prints one line, key=value:
  app_jobs app=rq|celery jobs=N done=D enqueue_s=.. work_s=.. seconds=.. jobs_per_s=..
Exit status 1 when it could not run or a result is missing.

usage: app_jobs.py rq|celery --addr HOST:PORT [--jobs 1000] [--timeout-s 300]
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

p = argparse.ArgumentParser()
p.add_argument("app", choices=["rq", "celery"])
p.add_argument("--addr", required=True)
p.add_argument("--jobs", type=int, default=1000)
p.add_argument("--timeout-s", type=float, default=300)
args = p.parse_args()
os.environ["APP_JOBS_ADDR"] = args.addr
sys.path.insert(0, HERE)
host, port = args.addr.rsplit(":", 1)
deadline = time.monotonic() + args.timeout_s


def report(done, enqueue_s, work_s, seconds):
    print("app_jobs app=%s jobs=%d done=%d enqueue_s=%.3f work_s=%.3f seconds=%.3f jobs_per_s=%.1f"
          % (args.app, args.jobs, done, enqueue_s, work_s, seconds, args.jobs / seconds))
    if done != args.jobs:
        print(f"{args.jobs - done} of {args.jobs} jobs have no correct result", file=sys.stderr)
        sys.exit(1)


if args.app == "rq":
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.job import Job

    from app_tasks import double

    conn = Redis(host, int(port))
    queue = Queue("bench", connection=conn)
    queue.empty()
    t0 = time.perf_counter()
    jobs = [queue.enqueue(double, n, result_ttl=3600) for n in range(args.jobs)]
    t1 = time.perf_counter()
    SimpleWorker([queue], connection=conn).work(burst=True, logging_level="WARNING")
    t2 = time.perf_counter()
    done = sum(1 for n, j in enumerate(jobs) if Job.fetch(j.id, connection=conn).return_value() == 2 * n)
    report(done, t1 - t0, t2 - t1, t2 - t0)
else:
    from app_tasks import celery_app, celery_double

    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app_tasks:celery_app", "worker", "--pool", "threads",
         "--concurrency", "4", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel", "WARNING", "-Q", "bench"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL)
    try:
        warm = celery_double.delay(-1)
        while celery_app.backend.get_task_meta(warm.id)["status"] != "SUCCESS":
            if time.monotonic() > deadline or worker.poll() is not None:
                sys.exit("celery: the worker never ran the warm-up task")
            time.sleep(0.05)
        t0 = time.perf_counter()
        sent = [celery_double.delay(n) for n in range(args.jobs)]
        t1 = time.perf_counter()
        pending = dict(enumerate(r.id for r in sent))
        done = 0
        while pending and time.monotonic() < deadline:
            for n, task_id in list(pending.items()):
                meta = celery_app.backend.get_task_meta(task_id)
                if meta["status"] == "SUCCESS":
                    done += meta["result"] == 2 * n
                    del pending[n]
                else:
                    break  # results come roughly in order: look again from here later
            if pending:
                time.sleep(0.01)
        t2 = time.perf_counter()
        report(done, t1 - t0, t2 - t1, t2 - t0)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
