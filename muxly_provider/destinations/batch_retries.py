"""A destination's batch, written with the destination's own retries (a run's delivery and a dead-letter replay).

A batch that fails is tried again ``retry_count`` times with exponential backoff (``retry_backoff_seconds``,
doubling, at most :data:`MAX_RETRY_DELAY_SECONDS`), through tenacity, unless the error is permanent
(``retryable=False``: a ``4xx`` answer, a bad template, a constraint violation) or the destination retries each
request by itself (``retries_itself``: the webhook destination, through Muxly's HTTP layer). A failed try that
delivered part of the batch (``MuxlyDeliveryError.delivered``) is followed by a try of the rest only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import tenacity

from muxly_provider.destinations.base import MuxlyDeliveryError, MuxlyDestination, Record

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 60.0
"""The longest wait between two tries of a batch."""


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at each wait: tests replace ``time.sleep``


@dataclass
class BatchResult:
    """What :func:`write_with_retries` achieved for one batch.

    :param delivered: records written, over every try
    :param remaining: records not written (the whole batch, or what a partial try left)
    :param retries: tries after the first one
    :param error: the last try's error (``None`` when the whole batch was written); a library exception
        becomes a retryable :class:`MuxlyDeliveryError` naming the destination
    :param message: the error as the run's result shows it
    """

    remaining: list[Record]
    delivered: int = 0
    retries: int = 0
    error: MuxlyDeliveryError | None = None
    message: str = ""


def write_with_retries(destination: MuxlyDestination, batch: list[Record], index: int) -> BatchResult:
    """Write ``batch`` (the destination's batch number ``index``) with the destination's retries.

    :param destination: the destination
    :param batch: the records
    :param index: the batch's number (set as ``destination.batch_index`` before each try)
    :returns: the result; ``error`` is set when the batch (or its rest) could not be written
    """
    tries = 1 if destination.retries_itself else 1 + destination.retry_count
    result = BatchResult(remaining=batch)

    def attempt() -> BatchResult:
        destination.batch_index = index
        try:
            destination.write_batch(result.remaining)
        except MuxlyDeliveryError as exc:
            if exc.delivered:
                result.delivered += exc.delivered
                result.remaining = result.remaining[exc.delivered :]
            result.error, result.message = exc, str(exc)
        except Exception as exc:  # a library error: retryable (an outage until proven otherwise)
            result.error = destination.fail(destination.describe(exc))
            result.message = f"destination {destination.context.id!r}: {destination.describe(exc)}"
        else:
            result.delivered += len(result.remaining)
            result.remaining, result.error = [], None
        return result

    def before_sleep(state: tenacity.RetryCallState) -> None:
        result.retries += 1
        log.warning(
            "Muxly: %s; batch %d: try %d of %d in %.1f s",
            result.message,
            index,
            state.attempt_number + 1,
            tries,
            state.upcoming_sleep,
        )

    tenacity.Retrying(
        sleep=_sleep,
        stop=tenacity.stop_after_attempt(tries),
        wait=tenacity.wait_exponential(
            multiplier=destination.retry_backoff_seconds, max=MAX_RETRY_DELAY_SECONDS
        ),
        retry=tenacity.retry_if_result(lambda outcome: outcome.error is not None and outcome.error.retryable),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: result,
    )(attempt)
    return result
