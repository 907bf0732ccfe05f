"""A module whose FUNC_HANDLER names something that is not callable."""

handler = 42
