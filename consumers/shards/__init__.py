"""headrace: consumers/shards."""
