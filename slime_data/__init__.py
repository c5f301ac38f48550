"""slime_data: build the SliME training data (sophisticated tasks + the 2M mixture) as Arrow shards."""

__version__ = "0.2.0"
