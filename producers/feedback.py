"""`FeedbackListener`: a hospital receives the platform's findings and quality issues and handles them.

The platform publishes each feedback item on the ``feedback`` topic in an envelope sealed with the
institution's own key (record type ``feedback``). The listener reads the clear header, skips envelopes
of other institutions without trying to decrypt them, opens its own, and hands :class:`Feedback`
items to the HIS. The HIS answers each with :meth:`acknowledge` (确认), :meth:`explain` (说明),
or :meth:`handle` with another way (correct 已更正 / self_pay 转自费); the answer is a
:class:`FeedbackHandling` record published through the producer (durable outbox) to
``feedback.handling``.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Callable

from yijian.producers.envelope import EnvelopeRejected, open_envelope, read_header
from yijian.producers.producer import HospitalProducer
from yijian.schemas.models import Feedback, FeedbackHandling

log = logging.getLogger("yijian.producers.feedback")


class FeedbackListener:
    """Consume this institution's feedback; answer items through a :class:`HospitalProducer`."""

    def __init__(self, producer: HospitalProducer, group_id: str | None = None) -> None:
        from yijian.kafka import consumer

        self.producer = producer
        self.institution_code = producer.institution_code
        settings = producer.settings
        self._consumer = consumer(
            settings,
            group_id or f"yijian-feedback-{self.institution_code}-{producer.producer_id}",
            **{"logger": logging.getLogger("yijian.producers.kafka")},
        )
        self._consumer.subscribe([settings.topic("feedback")])
        self.rejected: list[EnvelopeRejected] = []  # own envelopes that did not open (reported, not raised)

    def poll(self, timeout: float = 1.0, max_messages: int = 100) -> list[Feedback]:
        """Feedback items for this institution that arrived within ``timeout`` seconds."""
        out: list[Feedback] = []
        for msg in self._consumer.consume(max_messages, timeout):
            if msg.error():
                log.warning("feedback topic: %s", msg.error())
                continue
            try:
                header = read_header(msg.value())
                if header["institution_code"] == self.institution_code:
                    opened = open_envelope(msg.value(), self.producer.keyring)
                    if opened.record_type != "feedback":
                        raise EnvelopeRejected("schema_type_mismatch", f"{opened.record_type} on the feedback topic", header)
                    out.extend(Feedback.model_validate(r) for r in opened.records)
            except EnvelopeRejected as exc:
                log.warning("feedback envelope at %s[%d]@%d refused: %s", msg.topic(), msg.partition(), msg.offset(), exc.reason)
                self.rejected.append(exc)
            self._consumer.store_offsets(msg)
        return out

    def run(self, on_feedback: Callable[[Feedback], None], stop: Callable[[], bool], timeout: float = 1.0) -> None:
        """Call ``on_feedback`` for every item until ``stop()`` is true."""
        while not stop():
            for item in self.poll(timeout):
                on_feedback(item)

    def handle(self, feedback_id: str, way: str, handler_code: str, reason: str = "") -> Future:
        """Publish the handling of a feedback item (acknowledge / explain / correct / self_pay)."""
        return self.producer.handle_feedback(
            FeedbackHandling(
                feedback_id=feedback_id,
                institution_code=self.institution_code,
                dspo_way=way,
                dspo_way_rea=reason,
                handler_code=handler_code,
                handled_time=datetime.now(timezone.utc),
            )
        )

    def acknowledge(self, feedback_id: str, handler_code: str, reason: str = "") -> Future:
        """确认: the hospital accepts the finding."""
        return self.handle(feedback_id, "acknowledge", handler_code, reason)

    def explain(self, feedback_id: str, reason: str, handler_code: str) -> Future:
        """说明: the hospital explains why the record is right (reason required)."""
        if not reason.strip():
            raise ValueError("说明需要理由 / an explanation needs a reason")
        return self.handle(feedback_id, "explain", handler_code, reason)

    def close(self) -> None:
        self._consumer.close()


def new_feedback_id() -> str:
    return uuid.uuid4().hex
