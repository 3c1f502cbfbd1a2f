"""Training: features, the accelerate loop and evaluation."""
