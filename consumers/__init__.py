"""headrace: consumers."""
