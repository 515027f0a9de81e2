"""headrace composition root: CLI, configuration and the embedded all-in-one runner."""
