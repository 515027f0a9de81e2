"""headrace: streams."""
