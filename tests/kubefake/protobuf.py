"""Request bodies in the API server's protobuf encoding, for the kinds kubectl sends that way.

kubectl's typed clients (e.g. `kubectl auth can-i`) send `application/vnd.kubernetes.protobuf`:
the magic `k8s\\0`, then a runtime.Unknown message whose `raw` field holds the object encoded as
in k8s.io/api's generated.proto. Only the kinds in SCHEMAS decode; other kinds answer 415, as
the real server does for a media type it cannot read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# field number -> (JSON name, nested schema or None for a string)
Schema = dict[int, tuple[str, "Schema | None"]]

_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", None), 2: ("verb", None), 3: ("group", None), 4: ("version", None),
    5: ("resource", None), 6: ("subresource", None), 7: ("name", None),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", None), 2: ("verb", None)}
_SELF_SUBJECT_ACCESS_REVIEW: Schema = {
    2: ("spec", {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                 2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES)}),
}
SCHEMAS: dict[tuple[str, str], Schema] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _SELF_SUBJECT_ACCESS_REVIEW,
}


class ProtobufError(ValueError):
    pass


class UnsupportedKind(ProtobufError):
    pass


def decode(data: bytes) -> dict[str, Any]:
    """The object in a protobuf request body, as its JSON form (empty strings omitted)."""
    if not data.startswith(MAGIC):
        raise ProtobufError("protobuf body without the k8s magic prefix")
    envelope = dict((number, value) for number, _, value in _fields(data[len(MAGIC):]))
    type_meta = {n: v for n, _, v in _fields(_as_bytes(envelope.get(1, b"")))}
    api_version = _as_bytes(type_meta.get(1, b"")).decode()
    kind = _as_bytes(type_meta.get(2, b"")).decode()
    schema = SCHEMAS.get((api_version, kind))
    if schema is None:
        raise UnsupportedKind(f"no protobuf decoding for {api_version} {kind}")
    return {"apiVersion": api_version, "kind": kind,
            **_message(_as_bytes(envelope.get(2, b"")), schema)}


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for number, wire_type, value in _fields(data):
        if number not in schema or wire_type != 2:
            continue
        name, nested = schema[number]
        if nested is not None:
            result[name] = _message(_as_bytes(value), nested)
        elif value:
            result[name] = _as_bytes(value).decode()
    return result


def _as_bytes(value: bytes | int) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited field")
    return value


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of each field of a protobuf message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, wire_type, value
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProtobufError("truncated protobuf field")
            yield number, wire_type, data[position:position + length]
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            yield number, wire_type, int.from_bytes(data[position:position + size], "little")
            position += size
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire_type}")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated protobuf varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position
