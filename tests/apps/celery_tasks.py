"""The Celery app of celery_check.py: its broker (kombu's Redis transport) and result backend
(Celery's Redis backend) both on the address in CELERY_CHECK_MODE/CELERY_CHECK_ADDRS, so the
worker process (`celery -A celery_tasks worker`) and the producer share one configuration.

  MODE direct:   ADDRS is one HOST:PORT (a redis-server, or a raftis follower in proxy mode)
  MODE sentinel: ADDRS is HOST:PORT,... of the raftis nodes, used as sentinels (master "raftis")
"""

import os

from celery import Celery

MODE = os.environ["CELERY_CHECK_MODE"]
ADDRS = os.environ["CELERY_CHECK_ADDRS"]

if MODE == "sentinel":
    URL = ";".join(f"sentinel://{a}/0" for a in ADDRS.split(","))
    TRANSPORT = {"master_name": "raftis"}
else:
    URL = f"redis://{ADDRS}/0"
    TRANSPORT = {}

# A message a worker took but never acknowledged (its connection died) stays in kombu's unacked
# hash; a worker's sweep delivers it again once it is older than the visibility timeout. kombu's
# defaults (an hour; a sweep every 10 x 10 s, under a mutex that outlives a lost release for
# 5 minutes) would outlast the check.
BROKER_OPTIONS = dict(TRANSPORT, visibility_timeout=10, unacked_restore_interval=2, unacked_restore_throttle=1,
                      unacked_mutex_expire=20, socket_timeout=5, socket_connect_timeout=2)
BACKEND_OPTIONS = dict(TRANSPORT, socket_timeout=5, socket_connect_timeout=2)

app = Celery("celery_tasks", broker=URL, backend=URL)
app.conf.update(
    broker_transport_options=BROKER_OPTIONS,
    result_backend_transport_options=BACKEND_OPTIONS,
    broker_connection_retry_on_startup=True,
    task_default_queue="apps",
    result_expires=3600,
    worker_hijack_root_logger=False,
)


# Observation only (the check's diagnosis of a missing task): with CELERY_CHECK_TAKEN set, the
# worker appends to that file the id of each task message its BRPOP received ("taken ID"), and
# "failed ID ERROR" when kombu's handling of it then raised, before Celery ran it (kombu records
# a message as unacknowledged only after taking it: a broken connection in between loses it, on
# Redis as on raftis). kombu's behaviour is unchanged.
if os.environ.get("CELERY_CHECK_TAKEN"):
    from kombu.transport.virtual import base as _virtual

    _deliver = _virtual.Transport._deliver
    _taken = open(os.environ["CELERY_CHECK_TAKEN"], "a", buffering=1)

    def _observed_deliver(self, message, queue):
        task = (message.get("headers") or {}).get("id", "?") if isinstance(message, dict) else "?"
        _taken.write(f"taken {task}\n")
        try:
            return _deliver(self, message, queue)
        except BaseException as e:
            _taken.write(f"failed {task} {type(e).__name__}: {e}\n")
            raise

    _virtual.Transport._deliver = _observed_deliver


@app.task
def double(n):
    """Job `n`: returns 2n."""
    return 2 * n


@app.task
def total(values):
    """A chord's body: the sum of its header's results."""
    return sum(values)
