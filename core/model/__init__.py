"""The models, their checkpoints (loaded safely), prediction on any image, and attributions."""
