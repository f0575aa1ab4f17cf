"""CloudEvent types and data shapes emitted and accepted by the functions."""
from __future__ import annotations

SOURCE_PREFIX = "/dynafed-fn"

CHECKSUM_REQUESTED = "ch.cern.dynafed.checksum.requested"
CHECKSUM_COMPUTED = "ch.cern.dynafed.checksum.computed"
COPY_REQUESTED = "ch.cern.dynafed.copy.requested"
COPY_STARTED = "ch.cern.dynafed.copy.started"
COPY_PROGRESS = "ch.cern.dynafed.copy.progress"
COPY_COMPLETED = "ch.cern.dynafed.copy.completed"
COPY_FAILED = "ch.cern.dynafed.copy.failed"
SCRUB_REQUESTED = "ch.cern.dynafed.scrub.requested"
SCRUB_MISMATCH = "ch.cern.dynafed.scrub.mismatch"
SCRUB_COMPLETED = "ch.cern.dynafed.scrub.completed"
#: What a Knative PingSource sends (the scrub schedule).
PING = "dev.knative.sources.ping"

#: Types the functions emit (Triggers may filter only on these).
EMITTED: frozenset[str] = frozenset(
    {CHECKSUM_COMPUTED, COPY_STARTED, COPY_PROGRESS, COPY_COMPLETED, COPY_FAILED, SCRUB_MISMATCH,
     SCRUB_COMPLETED}
)
#: Types the functions accept as requests.
ACCEPTED: frozenset[str] = frozenset({CHECKSUM_REQUESTED, COPY_REQUESTED, SCRUB_REQUESTED, PING})
#: Terminal copy events: exactly one per job.
COPY_TERMINAL: frozenset[str] = frozenset({COPY_COMPLETED, COPY_FAILED})

