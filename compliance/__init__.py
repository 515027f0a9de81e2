"""headrace: compliance."""
