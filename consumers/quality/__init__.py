"""Quality filters (datatrove-compatible Gopher, C4 and FineWeb rules) and text hygiene rules."""
