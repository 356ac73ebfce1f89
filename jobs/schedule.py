"""The periodic jobs, registered with rq-scheduler, and a scheduler that puts
them back by itself when Redis has lost them (restart, flush)."""

import logging
import signal
import time
from datetime import UTC, datetime

from redis import Redis
from rq_scheduler import Scheduler

from jobs import JSONJob

log = logging.getLogger(__name__)


def not_lock_taken(record: logging.LogRecord) -> bool:
    """Two schedulers (the README's production has them) meet at
    rq-scheduler's lock now and then: one skipping a pass is how they share
    the work, not a WARNING every time it happens."""
    return record.msg != "Lock already taken - skipping run"


# job id -> (function, interval config key, timeout in seconds)
PERIODIC = {
    "ticketdrop-admit": ("jobs.admit.tick", "ADMIT_INTERVAL", 30),
    "ticketdrop-cleanup": ("jobs.cleanup.clean_up", "CLEANUP_INTERVAL", 600),
    "ticketdrop-reconcile": ("jobs.reconcile.reconcile", "RECONCILE_INTERVAL", 600),
}


def make_scheduler(
    connection: Redis, queue_name: str, interval: float = 1.0, config: dict | None = None
) -> "HealingScheduler":
    logging.getLogger("rq_scheduler.scheduler").addFilter(not_lock_taken)
    return HealingScheduler(
        queue_name=queue_name,
        connection=connection,
        interval=interval,
        job_class=JSONJob,
        config=config or {},
    )


PREFIX = "ticketdrop-"


def ensure_schedules(scheduler: Scheduler, config: dict, starting: bool = False) -> list[str]:
    """Register every periodic job that is missing, and cancel ours that are no
    longer in PERIODIC (renamed or retired by an upgrade); returns the ids
    it added. Missing jobs are news (Redis lost them) unless `starting`."""
    for listed_id in scheduler.connection.zrange(scheduler.scheduled_jobs_key, 0, -1):
        job_id = listed_id.decode()
        if job_id.startswith(PREFIX) and job_id not in PERIODIC:
            scheduler.cancel(job_id)
            log.info("cancelled the retired periodic job %s", job_id)
    added = []
    for job_id, (func, interval_key, timeout) in PERIODIC.items():
        listed = scheduler.connection.zscore(scheduler.scheduled_jobs_key, job_id) is not None
        if listed and JSONJob.exists(job_id, connection=scheduler.connection):
            continue
        scheduler.cancel(job_id)  # a half-lost entry: start it clean
        scheduler.schedule(
            datetime.now(UTC).replace(tzinfo=None),
            func,
            interval=config.get(interval_key, 1),
            id=job_id,
            timeout=timeout,
        )
        added.append(job_id)
    if added and starting:
        log.info("registered the periodic jobs: %s", ", ".join(added))
    elif added:
        log.warning("registered periodic jobs again (Redis lost them): %s", ", ".join(added))
    return added


class HealingScheduler(Scheduler):
    """rq-scheduler's Scheduler that checks its periodic jobs every few seconds
    and registers the missing ones again, so nobody has to act after Redis
    loses data."""

    check_every = 5.0

    def __init__(self, *args, config: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config
        self._checked_at = 0.0

    def _install_signal_handlers(self):
        """SIGINT or SIGTERM ends run(), whose `finally` tells Redis that this
        scheduler is gone (rq-scheduler's own handler told it too: twice,
        and from inside whatever Redis call the signal interrupted). A
        second signal waits for that goodbye."""

        def stop(signum, frame):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.log.info("Shutting down RQ scheduler...")
            raise SystemExit()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def enqueue_jobs(self):
        if time.monotonic() - self._checked_at >= self.check_every:
            ensure_schedules(self, self.config, starting=not self._checked_at)
            self._checked_at = time.monotonic()
        return super().enqueue_jobs()
