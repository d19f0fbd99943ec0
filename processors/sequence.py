"""Gap-free sequence numbers per (institution, producer, record type): proof of full upload (全量汇聚).

Producers number their records without gaps. The tracker remembers the next expected number per
stream; an envelope that starts beyond it reveals records never sent (a gap), one that starts below
it is a re-delivery (already counted). State is a plain dict so the Faust worker can keep it in a
table (changelog-backed, survives restarts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SeqVerdict:
    gap: tuple[int, int] | None  # first and last missing sequence numbers
    duplicate_count: int  # records of the envelope already seen
    new_from: int  # index in the envelope of the first new record


def stream_key(institution: str, producer_id: str, record_type: str) -> str:
    return f"{institution}|{producer_id}|{record_type}"


def observe(state: dict[str, int], key: str, first_seq: int, count: int) -> SeqVerdict:
    """Update ``state`` (stream → next expected seq) with an envelope [first_seq, first_seq+count)."""
    expected = state.get(key)
    end = first_seq + count
    if expected is None:
        # first envelope seen from this stream: sequences start at 1; anything before is a gap
        expected = 1
    gap = None
    if first_seq > expected:
        gap = (expected, first_seq - 1)
    dup = max(0, min(end, expected) - first_seq) if first_seq < expected else 0
    state[key] = max(expected, end)
    return SeqVerdict(gap=gap, duplicate_count=dup, new_from=dup)
