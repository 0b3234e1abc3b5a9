"""HTTP answers as the fake sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any) -> Response:
    return Response(status, (json.dumps(obj) + "\n").encode())


def not_found_page() -> Response:
    """What the real server answers for paths it does not serve."""
    return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
