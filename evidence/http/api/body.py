"""The base of every JSON request body the API accepts.

Text with a NUL character is refused here (422) rather than reaching the database:
PostgreSQL cannot store one and would fail the request with a 500, while SQLite would
store it, so the two would disagree about what a case reference or an email is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


class Body(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("text may not contain a NUL character")
        return value
