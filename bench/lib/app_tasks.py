"""The job functions of app_jobs.py: an RQ job function and a Celery app (broker and result
backend on redis://$APP_JOBS_ADDR/0), imported by name by RQ's worker and Celery's worker."""

import os

from celery import Celery


def double(n):
    """An RQ job: returns 2n."""
    return 2 * n


celery_app = Celery("app_tasks", broker=f"redis://{os.environ.get('APP_JOBS_ADDR', '127.0.0.1:6379')}/0",
                    backend=f"redis://{os.environ.get('APP_JOBS_ADDR', '127.0.0.1:6379')}/0")
celery_app.conf.update(task_default_queue="bench", broker_connection_retry_on_startup=True,
                       worker_hijack_root_logger=False, result_expires=3600)


@celery_app.task
def celery_double(n):
    """A Celery task: returns 2n."""
    return 2 * n
