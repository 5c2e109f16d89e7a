"""What every config section shares: strict keys, validation on assignment, the (low, high) range check."""

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _check_range(lo_hi: tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = lo_hi
    if lo > hi:
        raise ValueError(f"{name}: lower bound {lo} is above upper bound {hi}")
    return lo_hi
