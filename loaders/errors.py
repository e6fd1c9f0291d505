"""The one error type every loader raises for malformed or unsupported input."""


class FormatError(ValueError):
    """Input is not a well-formed file of the expected format (or exceeds a safety limit)."""
