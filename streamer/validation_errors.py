"""One-line descriptions of pydantic validation errors that name the field."""

from __future__ import annotations

from pydantic import ValidationError


def field_errors(exc: ValidationError, *, show_input: bool = False) -> str:
    """``"kafka.sasl_mechanism: Input should be ...; buffer.hop: ..."``.

    ``show_input`` appends the offending value for type/range errors; off where a value may
    be a secret (daemon settings).
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(config)"
        msg = err["msg"].removeprefix("Value error, ")
        got = (f" (got {err['input']!r})"
               if show_input and err["type"] not in ("value_error", "missing") else "")
        lines.append(f"{loc}: {msg}{got}")
    return "; ".join(lines)
