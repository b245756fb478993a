"""Protobuf text format (Triton's config.pbtxt) from plain Python values.

Small on purpose: fer-edge writes configs without needing tritonclient; the tests parse every config
with Triton's own schema (``tritonclient.grpc.model_config_pb2``), which rejects a misspelt field.
"""
from __future__ import annotations

import json
from typing import Any


class Enum(str):
    """An enum value (written bare: ``kind: KIND_GPU``), not a string."""


def render(message: dict[str, Any], indent: int = 0) -> str:
    """A message (field -> value) as protobuf text; lists of messages use the ``field [ {...}, ... ]`` form."""
    pad = "  " * indent
    lines = []
    for field, value in message.items():
        if value is None:
            continue
        if isinstance(value, dict):
            lines.append(f"{pad}{field} {{\n{render(value, indent + 1)}{pad}}}")
        elif isinstance(value, list):
            if not value:
                continue
            if all(isinstance(v, dict) for v in value):
                inner = ",\n".join(f"{pad}  {{\n{render(v, indent + 2)}{pad}  }}" for v in value)
                lines.append(f"{pad}{field} [\n{inner}\n{pad}]")
            else:
                lines.append(f"{pad}{field}: [ {', '.join(_scalar(v) for v in value)} ]")
        else:
            lines.append(f"{pad}{field}: {_scalar(value)}")
    return "".join(line + "\n" for line in lines)


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a double-quoted string with escapes protobuf text also reads
    raise TypeError(f"cannot write {type(value).__name__} in protobuf text")


def parameters(values: dict[str, str]) -> list[dict[str, Any]]:
    """Triton's ``parameters`` map (string values only)."""
    return [{"key": k, "value": {"string_value": str(v)}} for k, v in values.items()]
