"""Fault injection for chaos tests: end the worker process in the middle of a step.

`WORKFLOW_CRASH_AFTER_STEP = "<workflow type>:<step>"` makes the process that runs that step exit
at once after the step's action returned and before its completion is recorded: the worst
moment, when the effect exists and the log does not know it. Empty (the default) disables it;
nothing else in the runtime depends on it.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

logger = logging.getLogger(__name__)

CRASH_EXIT_CODE = 75


def _die() -> None:
    # os._exit skips every finally block, atexit hook and Celery acknowledgement, as a killed
    # process would; a plain exception would let the runtime clean up, which proves nothing.
    os._exit(CRASH_EXIT_CODE)


def crash_point(workflow_type: str, step: str) -> None:
    target = settings.WORKFLOW_CRASH_AFTER_STEP
    if target and target == f"{workflow_type}:{step}":
        logger.critical("fault injection: ending the process after %s", target)
        for handler in logging.getLogger().handlers:
            handler.flush()
        _die()
