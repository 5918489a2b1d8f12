"""Learning-rate schedules for the trainer (Keras 3, any backend)."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="vsr")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate: linear warm-up from 0 to ``peak`` over ``warmup`` steps after ``start``, then
    cosine decay to ``floor`` at ``end``; ``floor`` after that. Steps are the optimiser's iterations."""

    def __init__(self, peak, start, warmup, end, floor=0.0):
        self.peak, self.start, self.warmup, self.end, self.floor = peak, start, warmup, end, floor

    def __call__(self, step):
        t = ops.cast(step, "float32") - self.start
        warm = self.peak * ops.minimum(1.0, (t + 1.0) / max(self.warmup, 1))
        span = max(self.end - self.start - self.warmup, 1)
        progress = ops.clip((t - self.warmup) / span, 0.0, 1.0)
        cosine = self.floor + 0.5 * (self.peak - self.floor) * (1.0 + ops.cos(np.pi * progress))
        return ops.where(t < self.warmup, warm, cosine)

    def get_config(self):
        return dict(peak=self.peak, start=self.start, warmup=self.warmup, end=self.end, floor=self.floor)
