"""Findings and quality issues back to the hospital, encrypted with that institution's own key.

One envelope per institution per processed batch on the ``feedback`` topic (key = institution code),
record type ``feedback`` (schemas/feedback.avsc, the shape of the national 3101 result). The SDK's
FeedbackListener opens only its own institution's envelopes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from yijian.keyring import KeyError_, KeyRing
from yijian.processors.contracts import Finding, QualityIssue
from yijian.producers.envelope import seal
from yijian.schemas.models import Feedback, FindingDetail

PLATFORM_PRODUCER = "yijian-platform"


def from_issue(q: QualityIssue) -> Feedback:
    return Feedback(
        feedback_id=q.issue_id,
        kind="quality_issue",
        institution_code=q.institution_code,
        record_type=q.record_type,
        record_id=q.record_id or "-",
        record_version=max(1, q.record_version),
        code=q.code,
        code_version=0,
        name=q.message.split("：", 1)[0],
        severity=q.severity,
        result_type="明确",
        message=q.message,
        basis="",
        vola_amt=Decimal("0"),
        field=q.field,
        created_time=q.detected_time,
    )


def from_finding(f: Finding) -> Feedback:
    return Feedback(
        feedback_id=f.finding_id,
        kind="finding",
        institution_code=f.institution_code,
        record_type=f.record_type,
        record_id=f.record_id,
        record_version=f.record_version,
        code=f.rule_id,
        code_version=f.rule_version,
        name=f.rule_name,
        severity=f.severity,
        result_type=f.result_type,
        message=f.message,
        basis=f.basis,
        vola_amt=f.vola_amt,
        details=[FindingDetail(record_type=i.record_type, record_id=i.record_id, vola_item_type=i.vola_item_type, vola_amt=i.vola_amt) for i in f.items],
        created_time=f.detected_time,
    )


def seal_feedback(keyring: KeyRing, institution_code: str, items: list[Feedback]) -> bytes | None:
    """An envelope of feedback for one institution; None if it has no usable key (nothing to send to)."""
    if not items:
        return None
    try:
        key = keyring.active(institution_code)
    except KeyError_:
        return None
    # feedback is numbered by the platform per institution; the sequence carries no gap semantics here
    first_seq = int(datetime.now(timezone.utc).timestamp() * 1000)
    return seal("feedback", items, key, PLATFORM_PRODUCER, first_seq)
