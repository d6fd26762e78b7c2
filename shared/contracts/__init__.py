"""Models that cross a service boundary: the provider answers with them, the consumer reads them.

Every model forbids members it does not define, so the provider cannot build an answer with a
misspelt or renamed field; the consumer reads with `read_answer`, which ignores members a newer
provider added.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Answer = TypeVar("Answer", bound=BaseModel)


class UnreadableAnswer(ValueError):
    """The other service answered with a body that does not fit the contract."""


def read_answer(model: type[Answer], body: Any) -> Answer:
    """Validate an upstream answer against its contract, ignoring members added since."""
    try:
        return model.model_validate(body, extra="ignore")
    except ValidationError:
        raise UnreadableAnswer(model.__name__) from None


class ProblemAnswer(BaseModel):
    """The members of an RFC 9457 problem another service reads: type, reason, extensions."""

    model_config = ConfigDict(extra="ignore")

    type: str | None = None
    detail: str | None = None
    reason: str | None = None
    programmes: list[str] = []  # programme-required: the codes the caller may choose from

    @property
    def slug(self) -> str | None:
        """The last part of the problem type URN (`basis-no-longer-valid`)."""
        return self.type.rsplit(":", 1)[-1] if self.type else None
