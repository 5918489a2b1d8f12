"""Training: paired-crop input, losses, the SRGAN/Per-Pix train step, checkpoints, export."""
