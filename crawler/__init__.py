"""headrace: crawler."""
