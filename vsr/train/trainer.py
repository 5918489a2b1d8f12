"""The SRGAN / Per-Pix training loop: phases, checkpoints, resume, validation, logs, export.

Checkpoints are plain files so that any Keras backend and any machine can read them:
``<run>/checkpoints/step-XXXXXXX/`` holds the generator and discriminator ``.weights.h5`` (and the
generator's moving average, ``ema.weights.h5``, when the recipe keeps one), both optimisers'
variables (``.npz``, keyed by variable path) and ``state.json`` (step, best validation PSNR, wall time, the
config fingerprint). A checkpoint is written to a temporary folder and renamed, so a crash
leaves either the old one or the new one, never half of one. Batches depend only on
(seed, step) (see ``vsr.train.data``), so resuming is exact.
"""

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np

from vsr.errors import Cancelled, DataError
from vsr.train import losses, schedules
from vsr.train.config import TrainConfig


def make_strategy():
    """MultiWorkerMirroredStrategy when TF_CONFIG names several machines, MirroredStrategy over
    all GPUs when there are several, else the default (one device) strategy."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class Trainer:
    """Trains one generator (and its discriminator) as ``config`` says, into ``run_dir``.

    Args:
        config: a ``TrainConfig``.
        run_dir: folder for checkpoints, logs (``log.jsonl``, TensorBoard ``tb/``) and ``export/``.
        strategy: a ``tf.distribute`` strategy; default from :func:`make_strategy`.
        progress: show a tqdm bar on stderr.
    """

    def __init__(self, config: TrainConfig, run_dir, strategy=None, progress=True, precision="auto"):
        import keras

        self.cfg = config
        self.run_dir = Path(run_dir)
        self.strategy = strategy or make_strategy()
        self.progress = progress
        self.weights = losses.loss_weights(config.loss, pixel=config.pixel, content=config.content,
                                           adversarial=config.adversarial)
        self.replicas = self.strategy.num_replicas_in_sync
        if config.batch % self.replicas:
            raise DataError(f"batch {config.batch} must be a multiple of the {self.replicas} replicas")
        self.policy = training_policy(precision)
        # float16 needs its loss scaled so that small gradients do not flush to zero; bfloat16
        # has float32's exponent range and does not.
        self.mixed = self.policy == "mixed_float16"
        self.init_checkpoint = None
        if config.init_weights and Path(config.init_weights).is_dir():
            self.init_checkpoint = _checkpoint_folder(config.init_weights)
            if not config.start_step:  # go on counting from where that checkpoint stopped
                config.start_step = json.loads((self.init_checkpoint / "state.json").read_text())["step"]
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self._build(keras)
        self.step = 0
        self.best_psnr = -np.inf
        self.wall_seconds = 0.0

    # -- construction ---------------------------------------------------------------------
    def _build(self, keras):
        from vsr.models import weights as weights_mod
        from vsr.models.srgan import build_discriminator, build_generator

        cfg = self.cfg
        self.generator = build_generator(cfg.blocks, cfg.channels, cfg.scale, dtype=self.policy,
                                         zero_init_residual=cfg.zero_init_residual)
        if cfg.bn_frozen:
            for layer in self.generator.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        if cfg.init_weights:
            source = self.init_checkpoint / "generator.weights.h5" if self.init_checkpoint else cfg.init_weights
            weights_mod.load_weights_into(self.generator, source)
        self.g_opt = self._optimizer(keras)
        self.g_opt.build(self.generator.trainable_variables)
        self.ema_generator = None
        if cfg.ema:
            self.ema_generator = build_generator(cfg.blocks, cfg.channels, cfg.scale, name="srgan_generator_ema")
            self.ema_generator.set_weights(self.generator.get_weights())
        if self.init_checkpoint:
            _load_optimizer(self.g_opt, self.init_checkpoint / "g_opt.npz", self.generator)
            if self.ema_generator is not None and (self.init_checkpoint / "ema.weights.h5").is_file():
                self.ema_generator.load_weights(str(self.init_checkpoint / "ema.weights.h5"))
        self.discriminator = self.d_opt = self.features = None
        if self.weights.adversarial_on:
            self.discriminator = build_discriminator(cfg.discriminator_channels, hr_size=cfg.hr_crop,
                                                     dtype=self.policy)
            self.d_opt = self._optimizer(keras, (cfg.d_lr / cfg.lr) if cfg.d_lr else 1.0)
            self.d_opt.build(self.discriminator.trainable_variables)
        if self.weights.needs_features:
            from vsr.train.features import build_feature_extractor

            weights = None if cfg.feature_weights == "random" else cfg.feature_weights
            # The features stay float32 under a mixed policy: in bfloat16 they saved nothing
            # (perpix 1.01 s/step against 0.97, AMX Xeon) and would round the small differences
            # between SR and HR features that the content loss is made of.
            self.features = build_feature_extractor(cfg.feature_network, weights=weights)

    def _optimizer(self, keras, factor=1.0):
        """Adam under the recipe's schedule, every learning rate times ``factor``."""
        cfg = self.cfg
        lr = cfg.lr * factor
        if cfg.lr_schedule == "cosine":
            lr = schedules.WarmupCosine(lr, cfg.start_step, cfg.warmup_steps, cfg.steps, cfg.lr_min * factor)
        elif cfg.lr_values:
            lr = keras.optimizers.schedules.PiecewiseConstantDecay(cfg.lr_boundaries,
                                                                   [v * factor for v in cfg.lr_values])
        opt = keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.beta1, epsilon=cfg.adam_epsilon)
        return keras.optimizers.LossScaleOptimizer(opt) if self.mixed else opt

    # -- the train step -------------------------------------------------------------------
    def _replica_step(self, lr, hr, full_loss):
        import tensorflow as tf

        w = self.weights if full_loss else losses.LossWeights(pixel=1.0)
        adversarial = w.adversarial_on and self.discriminator is not None
        terms = {}
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            sr = self.generator(lr, training=True)
            total = 0.0
            if w.pixel:
                terms["pixel"] = losses.PIXEL_LOSSES[self.cfg.pixel_loss](sr, hr)
                total += w.pixel * terms["pixel"]
            if w.content:
                terms["content"] = losses.content_mse(self.features(sr), self.features(hr))
                total += w.content * terms["content"]
            if full_loss and self.cfg.grid:
                terms["grid"] = losses.lattice_mse(sr, hr, self.cfg.scale)
                total += self.cfg.grid * terms["grid"]
            if adversarial:
                real, fake = self._discriminator(hr, sr)
                terms["adversarial"], terms["discriminator"] = self._gan_losses(real, fake)
                total += w.adversarial * terms["adversarial"]
            terms["total"] = total
            # Each replica's mean is divided by the replica count: the optimiser sums gradients
            # across replicas, which then equals the gradient of the global-batch mean.
            g_loss = total / self.replicas
            if self.mixed:
                g_loss = self.g_opt.scale_loss(g_loss)
            if adversarial:
                d_loss = terms["discriminator"] / self.replicas
                if self.mixed:
                    d_loss = self.d_opt.scale_loss(d_loss)
        if adversarial:
            d_vars = self.discriminator.trainable_variables
            self.d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
        g_vars = self.generator.trainable_variables
        self.g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        return terms

    def _discriminator(self, hr, sr):
        """D's logits for the real and the fake crops, from one call on both."""
        import tensorflow as tf

        # Real and fake in one batch, so the discriminator's BatchNorm normalises both with the same
        # statistics. Called apart, each batch was normalised by its own, which rescales away what
        # tells a blurred batch from a sharp one (less high-frequency energy); measured on
        # runs/perpix6 at step 16,000: D gave each SR crop the logit of its HR crop (within 0.01),
        # D loss 1.387 = 2 ln 2 for 300 steps, no texture.
        both = tf.concat([hr, tf.cast(sr, "float32")], 0)
        if self.cfg.d_shift:
            both = self._shifted(both, self.cfg.d_shift)
        return tf.split(self.discriminator(both, training=True), 2)

    def _shifted(self, x, shift):
        """Each image of ``x`` moved by its own offset in [-shift, shift] pixels each way, borders
        reflected; the offsets depend only on (seed, the optimiser's step), so a resumed run draws
        the same ones."""
        import tensorflow as tf

        n, size = tf.shape(x)[0], x.shape[1]
        seed = tf.stack([tf.constant(self.cfg.seed, tf.int64), tf.cast(self.d_opt.iterations, tf.int64)])
        offsets = tf.random.stateless_uniform([n, 2], seed, 0, 2 * shift + 1, dtype=tf.int32)
        padded = tf.pad(x, [[0, 0], [shift, shift], [shift, shift], [0, 0]], mode="REFLECT")
        span = tf.range(size)[None, :]
        rows = offsets[:, :1] + span
        cols = offsets[:, 1:] + span
        return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)

    def _gan_losses(self, real, fake):
        """(the generator's adversarial loss, the discriminator's loss) of the recipe's GAN."""
        if self.cfg.gan == "relativistic":
            return (losses.relativistic_generator_adversarial(real, fake),
                    losses.relativistic_discriminator_loss(real, fake))
        return losses.generator_adversarial(fake), losses.discriminator_loss(real, fake)

    def _replica_d_step(self, lr, hr):
        """One step of the discriminator alone, against the generator as it is (the warm-up)."""
        import tensorflow as tf

        sr = self.generator(lr, training=False)
        with tf.GradientTape() as tape:
            real, fake = self._discriminator(hr, sr)
            loss = self._gan_losses(real, fake)[1]
            scaled = loss / self.replicas
            if self.mixed:
                scaled = self.d_opt.scale_loss(scaled)
        d_vars = self.discriminator.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(scaled, d_vars), d_vars))
        right = tf.concat([tf.cast(real > 0, "float32"), tf.cast(fake < 0, "float32")], 0)
        return {"discriminator": loss, "d_accuracy": tf.reduce_mean(right)}

    def warm_up_discriminator(self, images, log=None, stop=None):
        """Train the fresh discriminator alone for ``d_warmup_steps`` on batches of its own (seed + 1),
        so that the generator's first adversarial gradients come from a D that already tells its
        outputs from photos; a fresh D hit the generator hardest in its first steps (runs/perpix6-8).
        Every 10 steps the terms go to ``log`` (a file; the run writes ``d_warmup.jsonl``, apart from
        the steps' ``log.jsonl``). Returns the last logged terms."""
        import tensorflow as tf

        from vsr.train.data import make_dataset

        cfg, n = self.cfg, self.cfg.d_warmup_steps
        step = tf.function(lambda lr, hr: {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in
                                           self.strategy.run(self._replica_d_step, args=(lr, hr)).items()})
        ds = self.strategy.experimental_distribute_dataset(
            make_dataset(images, cfg.seed + 1, 0, n, cfg.batch, cfg.hr_crop, cfg.min_detail))
        iterations = int(self.d_opt.iterations)
        values, t0 = {}, time.time()
        for i, (lr, hr) in enumerate(ds, 1):
            if stop is not None and stop.requested:
                raise KeyboardInterrupt
            terms = step(lr, hr)
            if i % 10 == 0 or i == n:
                values = {k: float(v) for k, v in terms.items()}
                if log is not None:
                    record = {"d_warmup_step": i, "at_step": self.step, "time": time.time(),
                              "steps_per_s": i / max(time.time() - t0, 1e-9), **values}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
        self.d_opt.iterations.assign(iterations)  # its lr schedule follows the generator's steps
        return values

    def _step_fn(self, full_loss):
        import tensorflow as tf

        @tf.function
        def step(lr, hr):
            terms = self.strategy.run(self._replica_step, args=(lr, hr, full_loss))
            if self.ema_generator is not None:
                d = self.cfg.ema
                for avg, var in zip(self.ema_generator.weights, self.generator.weights):
                    avg.assign(d * avg + (1.0 - d) * tf.cast(var, avg.dtype))
            return {k: self.strategy.reduce("MEAN", v, axis=None) for k, v in terms.items()}

        return step

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint_root(self):
        return self.run_dir / "checkpoints"

    def latest_checkpoint(self):
        found = sorted(self.checkpoint_root.glob("step-*[0-9]")) if self.checkpoint_root.is_dir() else []
        return found[-1] if found else None

    def save_checkpoint(self):
        final = self.checkpoint_root / f"step-{self.step:07d}"
        tmp = self.checkpoint_root / f".tmp-step-{self.step:07d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.generator.save_weights(str(tmp / "generator.weights.h5"))
        _save_optimizer(self.g_opt, tmp / "g_opt.npz")
        if self.ema_generator is not None:
            self.ema_generator.save_weights(str(tmp / "ema.weights.h5"))
        if self.discriminator is not None:
            self.discriminator.save_weights(str(tmp / "discriminator.weights.h5"))
            _save_optimizer(self.d_opt, tmp / "d_opt.npz")
        state = {"step": self.step, "best_psnr": self.best_psnr if np.isfinite(self.best_psnr) else None,
                 "wall_seconds": self.wall_seconds, "fingerprint": self.cfg.fingerprint()}
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(self.checkpoint_root.glob("step-*[0-9]"))[:-self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def restore(self, path):
        state = json.loads((path / "state.json").read_text())
        if state["fingerprint"] != self.cfg.fingerprint():
            raise DataError(f"checkpoint {path} was made with a different recipe: resume with the "
                            f"same recipe, or start afresh in a new --out folder")
        self.generator.load_weights(str(path / "generator.weights.h5"))
        _assign(self.g_opt.variables, np.load(path / "g_opt.npz"))
        if self.ema_generator is not None:
            self.ema_generator.load_weights(str(path / "ema.weights.h5"))
        if self.discriminator is not None:
            self.discriminator.load_weights(str(path / "discriminator.weights.h5"))
            _assign(self.d_opt.variables, np.load(path / "d_opt.npz"))
        self.step = state["step"]
        self.best_psnr = state["best_psnr"] if state["best_psnr"] is not None else -np.inf
        self.wall_seconds = state.get("wall_seconds", 0.0)

    # -- validation and export ------------------------------------------------------------
    @property
    def exported_generator(self):
        """The generator that is validated and exported: the moving average when the recipe keeps one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def validate(self, val, model=None):
        """Mean PSNR/SSIM (Y, crop = scale) of ``model`` (default: the exported generator) over the
        validation set, and one (lr, sr, hr) example for the image log."""
        from vsr.engine import Upscaler
        from vsr.quality import score

        model = model or self.exported_generator
        if model is self.generator and self.policy:
            model = self._float32_twin()
        upscalers = self.__dict__.setdefault("_val_upscalers", {})
        if id(model) not in upscalers:
            upscalers[id(model)] = Upscaler(model, self.cfg.scale, batch=1, tile=0)
        psnrs, ssims, example = [], [], None
        for lr, hr in zip(val.lr, val.hr):
            sr = upscalers[id(model)].upscale(lr)
            s = score(sr, hr, channel="y", crop_border=self.cfg.scale)
            psnrs.append(s["psnr"])
            ssims.append(s["ssim"])
            example = example or (lr, sr, hr)
        return float(np.mean(psnrs)), float(np.mean(ssims)), example

    def _float32_twin(self):
        """A float32 copy of the generator as it is now: validation scores what inference will run
        (float32), not the mixed-precision compute of the train step."""
        from vsr.models.srgan import build_generator

        twin = getattr(self, "_twin", None)
        if twin is None:
            cfg = self.cfg
            twin = self._twin = build_generator(cfg.blocks, cfg.channels, cfg.scale, name="srgan_generator_float32")
        twin.set_weights(self.generator.get_weights())
        return twin

    def export_best(self, psnr, ssim):
        """Write the generator in the weights/ format with its manifest entry, into run/export/."""
        from vsr.models import weights as weights_mod

        out = self.run_dir / "export"
        out.mkdir(parents=True, exist_ok=True)
        file = f"{self.cfg.name}.weights.h5"
        tmp = out / f".{file}.tmp.weights.h5"
        self.exported_generator.save_weights(str(tmp))
        os.replace(tmp, out / file)
        entry = weights_mod.WeightsEntry(
            name=self.cfg.name, file=file, sha256=weights_mod.sha256_of(out / file),
            arch={"blocks": self.cfg.blocks, "channels": self.cfg.channels, "scale": self.cfg.scale},
            recipe=self.cfg.recipe, steps=self.step, cpu_hours=round(self.wall_seconds / 3600, 3),
            data=self.cfg.data_note or ", ".join(self.cfg.train_dirs),
            scores={"val": {"psnr_y": round(psnr, 3), "ssim_y": round(ssim, 4)}},
            extra={"loss": self.cfg.loss, "pixel_loss": self.cfg.pixel_loss, "ema": self.cfg.ema or None,
                   "feature_network": self.cfg.feature_network
                   if self.weights.needs_features else None})
        weights_mod.write_manifest_entry(entry, out)
        return out / file

    # -- the loop -------------------------------------------------------------------------
    def run(self, resume=False):
        """Train until ``config.steps``. Returns a summary dict. Ctrl-C/SIGTERM save a checkpoint
        and raise ``Cancelled``."""
        import tensorflow as tf
        from tqdm import tqdm

        from vsr.train.data import PairedImages, ValidationSet, make_dataset

        cfg = self.cfg
        latest = self.latest_checkpoint()
        if latest and not resume:
            raise DataError(f"{self.run_dir} already has checkpoints: add --resume to continue, "
                            "or choose a new --out folder")
        if latest:
            self.restore(latest)
        elif cfg.start_step:
            self.step = cfg.start_step
            for opt in (self.g_opt, self.d_opt):
                if opt is not None:
                    opt.iterations.assign(cfg.start_step)
        remaining = cfg.steps - self.step
        if remaining <= 0:
            return {"step": self.step, "best_psnr": self.best_psnr}
        # Data first: a bad folder must fail before anything is written (no half-made run folder).
        images = PairedImages(cfg.train_dirs, cfg.scale, cfg.degradation, min_size=cfg.hr_crop)
        val = ValidationSet(cfg.val_dir, cfg.scale, cfg.degradation, cfg.val_max_side) if cfg.val_dir else None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        ds = make_dataset(images, cfg.seed, self.step, remaining, cfg.batch, cfg.hr_crop, cfg.min_detail)
        ds = self.strategy.experimental_distribute_dataset(ds)
        steps = {False: self._step_fn(False), True: self._step_fn(True)}
        writer = _summary_writer(self.run_dir / "tb", quiet=not self.progress)
        log = open(self.run_dir / "log.jsonl", "a")
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, unit="step",
                   dynamic_ncols=True, desc=cfg.name)
        stop = _StopRequests()
        t_last, s_last = time.time(), self.step
        wall_base, t_start = self.wall_seconds, time.time()
        # A fresh discriminator is warmed up when the adversarial phase begins in this run; one
        # restored from the run's own checkpoint of that phase already is.
        warm = (self.discriminator is None or not cfg.d_warmup_steps
                or (latest is not None and self.step > cfg.pretrain_steps))
        warming = False
        try:
            for lr, hr in ds:
                full_loss = self.step >= cfg.pretrain_steps
                if full_loss and not warm:
                    warming = True
                    with open(self.run_dir / "d_warmup.jsonl", "a") as warm_log:
                        self.warm_up_discriminator(images, warm_log, stop)
                    warm, warming = True, False
                terms = steps[full_loss](lr, hr)
                self.step += 1
                self.wall_seconds = wall_base + time.time() - t_start
                bar.update(1)
                if self.step % 10 == 0 or self.step == cfg.steps:
                    values = {k: float(v) for k, v in terms.items()}
                    rate = (self.step - s_last) / max(time.time() - t_last, 1e-9)
                    t_last, s_last = time.time(), self.step
                    bar.set_postfix(loss=f"{values['total']:.4g}")
                    record = {"step": self.step, "time": time.time(), "steps_per_s": rate, **values}
                    if writer:
                        with writer.as_default(step=self.step):
                            for k, v in values.items():
                                tf.summary.scalar(f"loss/{k}", v)
                # The checkpoint comes before the validation, so that a validation that fails
                # (a bad val image, an engine error) never costs the steps since the last one.
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
                if self.step % 10 == 0 or self.step == cfg.steps:
                    if val and (self.step % cfg.validate_every == 0 or self.step == cfg.steps):
                        record.update(self._validate_and_log(val, writer))
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if warming:  # the generator has not moved since the last checkpoint; D's warm-up restarts
                raise Cancelled(f"training stopped during the discriminator's warm-up at step {self.step}; "
                                "nothing saved: rerun the same command" + (" with --resume" if latest else ""),
                                stop.signum) from None
            self.save_checkpoint()
            raise Cancelled(f"training stopped at step {self.step}; checkpoint saved: rerun the same "
                            "command with --resume to continue", stop.signum) from None
        finally:
            stop.restore()
            bar.close()
            log.close()
            if writer:
                writer.close()
        if val is None:  # nothing to choose the best by: export the last generator
            self.export_best(float("nan"), float("nan"))
        return {"step": self.step, "best_psnr": self.best_psnr, "wall_seconds": self.wall_seconds}

    def _validate_and_log(self, val, writer):
        import tensorflow as tf

        psnr, ssim, (lr, sr, hr) = self.validate(val)
        record = {"val_psnr_y": psnr, "val_ssim_y": ssim}
        if self.ema_generator is not None:  # the raw weights too, to see what the average adds
            record["val_psnr_y_raw"], record["val_ssim_y_raw"], _ = self.validate(val, self.generator)
        if writer:
            with writer.as_default(step=self.step):
                for k, v in record.items():
                    tf.summary.scalar(k.replace("val_", "val/"), v)
                h, w = hr.shape[:2]
                lr_up = np.repeat(np.repeat(lr, self.cfg.scale, 0), self.cfg.scale, 1)[:h, :w]
                tf.summary.image("val/lr_sr_hr", np.concatenate([lr_up, sr, hr], 1)[None], max_outputs=1)
        if psnr > self.best_psnr:
            self.best_psnr = psnr
            self.export_best(psnr, ssim)
        return record


def training_policy(precision):
    """The Keras dtype policy that ``Trainer(precision=...)`` trains in (None: float32).

    ``"auto"``: float16 compute (with loss scaling) on a GPU, float32 on the CPU; otherwise one of
    ``vsr.models.registry.PRECISIONS``: ``"bf16"`` is bfloat16 compute with float32 weights, fast on
    CPUs with AMX (Intel Xeon since Sapphire Rapids: a generator step 0.33 s against 0.63 s in
    float32) and slower than float32 on those with AVX512-BF16 alone (1.56 s against 0.93 s).
    """
    from vsr.models.registry import dtype_policy
    from vsr.runtime import tf_sees_gpu

    if precision == "auto":
        return "mixed_float16" if tf_sees_gpu() else None
    return dtype_policy(precision)


def _save_optimizer(opt, path):
    np.savez(path, **{v.path: np.asarray(v) for v in opt.variables})


def _assign(variables, arrays):
    """Restore an optimiser saved by ``_save_optimizer`` (keyed by variable path) or by the first
    trainer versions (positional ``arr_N``), into the same recipe's optimiser."""
    if "arr_0" in arrays.files:
        values = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    else:
        # matched without the optimiser's own name, which Keras numbers per process (adam, adam_1, ...)
        saved = {k.split("/", 1)[-1]: k for k in arrays.files}
        values = [arrays[saved[v.path.split("/", 1)[-1]]] for v in variables if v.path.split("/", 1)[-1] in saved]
    if len(values) != len(variables):
        raise DataError("optimizer checkpoint does not match the model: resume with the same recipe")
    for var, value in zip(variables, values):
        var.assign(value)


def _load_optimizer(opt, path, model):
    """Load Adam's moments from another run's checkpoint into ``opt`` (built on ``model``'s trainable
    variables), matching them by variable; moments of variables that are not trained here are
    dropped. A missing file leaves the moments at zero (Adam starts afresh)."""
    if not path.is_file():
        return
    arrays = np.load(path)
    if "arr_0" in arrays.files:  # positional: Adam over every trainable variable of the generator
        trainable = [w for w in model.weights if "moving_" not in w.path]
        names = [f"{w.path.replace('/', '_')}_{kind}" for w in trainable for kind in ("momentum", "velocity")]
        # iteration first, then learning_rate unless the run used a schedule
        names = ["iteration", "learning_rate"][:len(arrays.files) - len(names)] + names
        if len(arrays.files) != len(names) or len(names) < 2 * len(trainable) + 1:
            raise DataError(f"{path} does not match this generator: continue from a checkpoint of "
                            "the same architecture")
        by_name = {n: arrays[f"arr_{i}"] for i, n in enumerate(names)}
    else:
        by_name = {k.split("/", 1)[-1]: arrays[k] for k in arrays.files}
    for var in opt.variables:
        key = var.path.split("/", 1)[-1]
        if key in by_name and key not in ("iteration", "learning_rate"):
            var.assign(by_name[key])


def _checkpoint_folder(path):
    """``path`` itself when it is a checkpoint folder, else the latest checkpoint of a run folder."""
    path = Path(path)
    if (path / "generator.weights.h5").is_file():
        return path
    found = sorted((path / "checkpoints").glob("step-*[0-9]"))
    if not found:
        raise DataError(f"{path} is neither a checkpoint folder (generator.weights.h5, g_opt.npz, "
                        "state.json) nor a run folder with checkpoints/: pass one of those or a .weights.h5")
    return found[-1]


def _summary_writer(folder, quiet):
    """A TensorBoard writer, or None with a one-line note when TensorBoard is not installed (the
    JSONL log is always written)."""
    import tensorflow as tf

    try:
        import tensorboard  # noqa: F401
    except ImportError:
        if not quiet:
            print("note: TensorBoard is not installed, so only log.jsonl is written "
                  "(pip install tensorboard for runs/NAME/tb)")
        return None
    return tf.summary.create_file_writer(str(folder))


class _StopRequests:
    """SIGINT/SIGTERM ask the training loop to stop after the current step (it then saves a
    checkpoint). A flag rather than an exception raised from the handler: TensorFlow's C++ code
    runs Python signal handlers itself and can drop the exception, which left a real run ignoring
    SIGTERM. A second Ctrl-C raises at once, for a step that never returns."""

    def __init__(self):
        self.requested = False
        self.signum = signal.SIGINT  # the signal that asked to stop: the exit status is 128 + it
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def restore(self):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
