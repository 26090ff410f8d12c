"""Training: TrainConfig, the loop and its events, optimizer races, exported scripts, analysis."""
