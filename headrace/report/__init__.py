"""The data-quality scorecard: collect measures from a corpus, render HTML, check release gates."""
