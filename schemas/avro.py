"""Avro schemas of the interface standard, generated from the pydantic models (schemas/models.py).

``generate()`` renders every model to an Avro schema dict; ``write_all()`` writes ``schemas/<type>.avsc``
(the published standard). Custom attributes keep the documentation in the schema files: ``zh``
(Chinese name), ``need`` (required / conditional / optional), ``when`` (condition), ``allowed``
(value domain of coded strings).
"""

from __future__ import annotations

import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from yijian.schemas.models import ENVELOPE_MODELS, RECORD_MODELS, SCHEMA_NAMESPACE

ALL_MODELS = {**RECORD_MODELS, **ENVELOPE_MODELS}

SCHEMA_DIR = Path(__file__).parent
HISTORY_DIR = SCHEMA_DIR / "history"


def _strip_annotated(tp):
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _avro_type(tp, info: FieldInfo | None, defined: set[str]):
    tp = _strip_annotated(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"only Optional[X] unions are supported, got {tp}")
        return ["null", _avro_type(args[0], info, defined)]
    if origin is typing.Literal:
        values = typing.get_args(tp)
        return "long" if all(isinstance(v, int) for v in values) else "string"
    if origin is list:
        return {"type": "array", "items": _avro_type(typing.get_args(tp)[0], None, defined)}
    if origin is dict:
        return {"type": "map", "values": _avro_type(typing.get_args(tp)[1], None, defined)}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _record(tp, defined)
    if tp is bool:
        return "boolean"
    if tp is int:
        return "long"
    if tp is str:
        return "string"
    if tp is bytes:
        return "bytes"
    if tp is datetime:
        return {"type": "long", "logicalType": "timestamp-millis"}
    if tp is date:
        return {"type": "int", "logicalType": "date"}
    if tp is Decimal:
        extra = (info.json_schema_extra or {}) if info else {}
        return {"type": "bytes", "logicalType": "decimal", "precision": extra.get("precision", 16), "scale": extra["scale"]}
    raise TypeError(f"no Avro mapping for {tp!r}")


def _record(model: type[BaseModel], defined: set[str]):
    name = f"{SCHEMA_NAMESPACE}.{model.__name__}"
    if name in defined:
        return name  # Avro: a named type is defined once, then referenced by name
    defined.add(name)
    fields = []
    for fname, info in model.model_fields.items():
        extra = dict(info.json_schema_extra or {})
        extra.pop("scale", None), extra.pop("precision", None)
        field: dict = {"name": fname, "type": _avro_type(info.annotation, info, defined), "doc": info.description or ""}
        ann = _strip_annotated(info.annotation)
        lit = ann
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            lit = next(a for a in typing.get_args(ann) if a is not type(None))
        if typing.get_origin(lit) is typing.Literal:
            field["allowed"] = list(typing.get_args(lit))
        field.update(extra)
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, (date, datetime, Decimal)):
                raise TypeError(f"{model.__name__}.{fname}: non-JSON default")
            field["default"] = default
        fields.append(field)
    return {"type": "record", "name": model.__name__, "namespace": SCHEMA_NAMESPACE, "doc": (model.__doc__ or "").strip(), "fields": fields}


def generate(record_type: str) -> dict:
    return _record(ALL_MODELS[record_type], set())


def render(schema: dict) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def schema_path(record_type: str) -> Path:
    return SCHEMA_DIR / f"{record_type}.avsc"


def write_all() -> list[Path]:
    paths = []
    for record_type in ALL_MODELS:
        path = schema_path(record_type)
        path.write_text(render(generate(record_type)), encoding="utf-8")
        paths.append(path)
    return paths


def load(record_type: str) -> dict:
    return json.loads(schema_path(record_type).read_text(encoding="utf-8"))


def history(record_type: str) -> list[Path]:
    """Earlier published versions of a schema: schemas/history/<type>/v<N>.avsc, oldest first."""
    folder = HISTORY_DIR / record_type
    return sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:])) if folder.exists() else []


if __name__ == "__main__":
    for p in write_all():
        print(p)
