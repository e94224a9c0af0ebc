"""The job functions of rq_check.py (RQ imports a job's function by its module path)."""

from rq import get_current_job


def record(n):
    """Marks job `n` as run (a set, so a job run twice shows once) and returns 2n."""
    get_current_job().connection.sadd("apps:rq:ran", n)
    return 2 * n
