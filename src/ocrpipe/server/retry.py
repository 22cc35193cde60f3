"""The ``Retry-After`` of each refusal under load, from the depth of what waits and the measured throughput.

Three formulas, each a plain function of numbers the service measures (tested on their own):

* :func:`sync_wait` -- a refused synchronous request (``429 too_many_requests``, the in-flight limit): the
  time until a slot frees *for this client*. Each request in flight is expected to end ``mean - elapsed`` from
  now (at least a tenth of ``mean``: one past the mean ends soon, not at once); the clients refused before it
  and not yet due back (the would-be retriers) take the slots that free first, one per slot and ``mean``
  after the first round. The answer is the ``(waiting + 1)``-th slot to free:
  ``remaining[waiting % slots] + (waiting // slots) * mean``, within 1 s .. :data:`SYNC_MAX_S`.
* :func:`jobs_wait` -- a refused job (the queued-jobs limit): the time the job workers need at their measured
  mean job time to bring the queue under its limit, ``(queued - limit + 1) * mean_job / workers`` (None before
  any job was measured: the caller answers :data:`~ocrpipe.server.intake.QUEUE_RETRY_AFTER_S`).
* :func:`queue_wait` -- a full recognition queue (``503 overloaded``): ``queued crops * measured time per
  crop``, at least 1 s.
"""

from __future__ import annotations

from collections.abc import Sequence

SYNC_MAX_S = 120.0
"""The longest ``Retry-After`` of a refused synchronous request."""


def sync_wait(elapsed: Sequence[float], mean_s: float, waiting: int) -> float:
    """Seconds until a synchronous slot frees for a client refused now (module docstring).

    ``elapsed``: how long each request in flight has run; ``mean_s``: the measured mean duration of a
    request; ``waiting``: clients refused before this one whose ``Retry-After`` is not yet due.
    """
    mean = max(mean_s, 0.0)
    remaining = sorted(max(mean - e, 0.1 * mean) for e in elapsed) or [mean]
    slots = len(remaining)
    wait = remaining[waiting % slots] + (waiting // slots) * mean
    return min(SYNC_MAX_S, max(1.0, wait))


def jobs_wait(queued: int, limit: int, mean_job_s: float, workers: int) -> float | None:
    """Seconds the job workers need to bring ``queued`` jobs under ``limit`` (None: no job measured yet)."""
    if mean_job_s <= 0:
        return None
    return max(1.0, (queued - limit + 1) * mean_job_s / max(workers, 1))


def queue_wait(queued: int, item_s: float) -> float:
    """Seconds the recognition queue needs to run ``queued`` crops at ``item_s`` each (at least 1)."""
    return max(1.0, round(queued * item_s, 1))
