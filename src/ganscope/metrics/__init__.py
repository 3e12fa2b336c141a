"""Quality metrics for generated images: a shipped feature extractor and metric functions."""
