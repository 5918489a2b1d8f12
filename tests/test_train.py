import json

import cv2
import numpy as np
import pytest

from vsr.errors import Cancelled, DataError
from vsr.train.config import TrainConfig
from vsr.train.trainer import Trainer


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    """Four synthetic 'photos' (smooth shapes, edges and texture) and two validation images."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for folder, n in (("train", 4), ("val", 2)):
        (root / folder / "sub").mkdir(parents=True)
        for i in range(n):
            h, w = rng.integers(100, 140, 2)
            y, x = np.mgrid[0:h, 0:w] / 20.0
            img = np.stack([np.sin(x + i), np.cos(y * 1.3), np.sin(x * y / 3)], -1) * 90 + 128
            cv2.circle(img, (int(w // 2), int(h // 2)), 25, (250, 30, 60), -1)
            img += rng.normal(0, 8, img.shape)
            cv2.imwrite(str(root / folder / "sub" / f"{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    return root / "train", root / "val"


def tiny_config(photo_dirs, **kw):
    train, val = photo_dirs
    base = dict(name="tiny", blocks=2, channels=16, discriminator_channels=8, train_dirs=[str(train)],
                val_dir=str(val), hr_crop=32, batch=4, loss="mse", steps=6, lr=1e-3,
                checkpoint_every=3, validate_every=3, feature_weights="random", seed=7)
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_batches_depend_only_on_seed_and_step(photo_dirs):
    from vsr.train.data import PairedImages

    images = PairedImages([photo_dirs[0]], min_size=32)
    a = images.batch(1, 5, 3, 32)
    b = images.batch(1, 5, 3, 32)
    c = images.batch(1, 6, 3, 32)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0].shape == (3, 8, 8, 3) and a[1].shape == (3, 32, 32, 3)


def test_min_detail_redraws_flat_crops(tmp_path):
    """Half flat, half textured: crops drawn with min_detail come from the texture; without it, many
    are flat; batches stay a function of (seed, step)."""
    from vsr.quality import detail_energy
    from vsr.train.data import PairedImages

    img = np.full((64, 256, 3), 120, np.uint8)
    img[:, 128:] = np.random.default_rng(0).integers(60, 180, (64, 128, 3))
    cv2.imwrite(str(tmp_path / "half.png"), img)
    images = PairedImages([tmp_path], min_size=32)
    plain = np.array([detail_energy(h * 255) for s in range(8) for h in images.batch(1, s, 8, 32)[1]])
    picky = np.array([detail_energy(h * 255) for s in range(8) for h in images.batch(1, s, 8, 32, 5.0)[1]])
    assert np.mean(plain < 5.0) > 0.3
    assert np.all(picky >= 5.0)
    np.testing.assert_array_equal(images.batch(1, 3, 8, 32, 5.0)[0], images.batch(1, 3, 8, 32, 5.0)[0])
    lr, hr = images.batch(1, 3, 8, 32, 5.0)
    assert lr.shape == (8, 8, 8, 3) and hr.shape == (8, 32, 32, 3)


def test_lr_crop_is_the_bi_degradation_of_the_hr_crop_region(photo_dirs):
    from vsr.quality import degrade_bi
    from vsr.train.data import PairedImages

    images = PairedImages([photo_dirs[0]], min_size=32)
    np.testing.assert_array_equal(images.lr[0], degrade_bi(images.hr[0]))


def test_mse_training_decreases_loss_and_exports(photo_dirs, tmp_path):
    cfg = tiny_config(photo_dirs, steps=60, validate_every=30, checkpoint_every=30)
    Trainer(cfg, tmp_path, progress=False).run()
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    first, last = log[0]["pixel"], np.mean([r["pixel"] for r in log[-2:]])
    assert all(np.isfinite(r["total"]) for r in log)
    assert last < 0.5 * first
    assert "val_psnr_y" in log[-1]
    # the export loads through the same engine as `vsr upscale --weights`
    from vsr.models.registry import load_model
    from vsr.models.weights import read_manifest

    entry = read_manifest(tmp_path / "export")["tiny"]
    assert entry.arch == {"blocks": 2, "channels": 16, "scale": 4}
    up = load_model("perpix", weights=tmp_path / "export" / entry.file)
    assert up.upscale(np.zeros((1, 9, 7, 3), np.uint8)).shape == (1, 36, 28, 3)


@pytest.mark.parametrize("preset", ["vgg54", "perpix"])
@pytest.mark.parametrize("network", ["vgg19", "effnet-lite0"])
def test_every_preset_runs(photo_dirs, tmp_path, preset, network):
    cfg = tiny_config(photo_dirs, loss=preset, feature_network=network, steps=2, pretrain_steps=1,
                      hr_crop=32, checkpoint_every=2, validate_every=2, val_dir=None)
    Trainer(cfg, tmp_path, progress=False).run()
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {"content", "adversarial", "discriminator"} <= set(log[-1])
    assert all(np.isfinite(v) for k, v in log[-1].items() if k != "time")


def test_discriminator_sees_real_and_fake_in_one_batch_at_its_own_learning_rate(photo_dirs, tmp_path):
    """One call on the 2B real+fake crops (its BatchNorm then normalises both with the same statistics;
    apart, a blurred batch and a sharp one were each rescaled to look alike), and d_lr is its rate."""
    cfg = tiny_config(photo_dirs, loss="perpix", feature_network="effnet-lite0", steps=2, d_lr=4e-3,
                      checkpoint_every=2, validate_every=2, val_dir=None)
    trainer = Trainer(cfg, tmp_path, progress=False)
    seen, model = [], trainer.discriminator

    def recording(x, training=False):
        seen.append(int(x.shape[0]))
        return model(x, training=training)

    recording.trainable_variables = model.trainable_variables
    recording.save_weights = model.save_weights
    trainer.discriminator = recording
    trainer.run()
    assert seen and set(seen) == {2 * cfg.batch}, seen
    assert float(trainer.d_opt.learning_rate) == pytest.approx(4e-3)
    assert float(trainer.g_opt.learning_rate) == pytest.approx(cfg.lr)


def test_bf16_trains_generator_and_discriminator_in_bfloat16_and_validates_in_float32(photo_dirs, tmp_path):
    """--precision bf16: G and D compute in bfloat16 (float32 weights, float32 Adam, no loss scale),
    the content network stays float32, and validation scores the weights as float32 inference would."""
    from vsr.engine import Upscaler
    from vsr.models.srgan import build_generator
    from vsr.quality import score

    cfg = tiny_config(photo_dirs, loss="perpix", feature_network="effnet-lite0", steps=3,
                      checkpoint_every=3, validate_every=3)
    trainer = Trainer(cfg, tmp_path, progress=False, precision="bf16")
    assert trainer.generator.get_layer("res0_conv1").compute_dtype == "bfloat16"
    assert trainer.discriminator.get_layer("d1_conv").compute_dtype == "bfloat16"
    assert trainer.features.layers[-1].compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in trainer.generator.weights + trainer.g_opt.variables
               if "iteration" not in v.path)
    before = [np.array(w) for w in trainer.generator.trainable_weights]
    trainer.run()
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for k, v in log[-1].items() if k != "time")
    assert any(not np.array_equal(a, np.array(b)) for a, b in zip(before, trainer.generator.trainable_weights))

    # validation: the trained weights in a float32 generator, not the bfloat16 compute
    float32 = build_generator(cfg.blocks, cfg.channels, cfg.scale)
    float32.set_weights(trainer.generator.get_weights())
    from vsr.train.data import ValidationSet

    val = ValidationSet(cfg.val_dir, cfg.scale, cfg.degradation, cfg.val_max_side)
    expected = np.mean([score(Upscaler(float32, 4, batch=1, tile=0).upscale(lr), hr, channel="y",
                              crop_border=4)["psnr"] for lr, hr in zip(val.lr, val.hr)])
    assert trainer.validate(val)[0] == pytest.approx(expected, abs=1e-6)
    low = np.mean([score(Upscaler(trainer.generator, 4, batch=1, tile=0).upscale(lr), hr, channel="y",
                         crop_border=4)["psnr"] for lr, hr in zip(val.lr, val.hr)])
    assert low != pytest.approx(expected, abs=1e-6)  # so the check above could fail


def test_training_precision_choices():
    from vsr.errors import ModelError
    from vsr.train.trainer import training_policy

    assert training_policy("bf16") == "mixed_bfloat16" and training_policy("float32") is None
    assert training_policy("auto") is None  # the CPU; a GPU gets mixed_float16
    with pytest.raises(ModelError, match="choose one of"):
        training_policy("fp8")


def test_d_shift_shows_the_discriminator_each_crop_moved_by_its_own_offset(photo_dirs, tmp_path):
    cfg = tiny_config(photo_dirs, loss="perpix", feature_network="effnet-lite0", steps=2, d_shift=3,
                      checkpoint_every=2, validate_every=2, val_dir=None)
    trainer = Trainer(cfg, tmp_path, progress=False)
    x = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
    shifted = np.asarray(trainer._shifted(x, 3))
    padded = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="reflect")
    offsets = [[(dy, dx) for dy in range(7) for dx in range(7)
                if np.array_equal(padded[i, dy:dy + 32, dx:dx + 32], shifted[i])] for i in range(8)]
    assert all(len(o) == 1 for o in offsets), offsets  # each a window of the reflected crop
    assert len({o[0] for o in offsets}) > 2  # and not one offset for the whole batch
    np.testing.assert_array_equal(shifted, np.asarray(trainer._shifted(x, 3)))  # (seed, step) decide
    trainer.run()
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert np.isfinite(log[-1]["adversarial"]) and np.isfinite(log[-1]["discriminator"])
    with pytest.raises(DataError, match="d_shift"):
        tiny_config(photo_dirs, d_shift=16)  # half the 32-pixel crop


def test_lattice_mse_costs_the_4_pixel_grid_and_hardly_anything_else():
    from vsr.train import losses

    rng = np.random.default_rng(3)
    hr = rng.random((2, 32, 32, 3)).astype(np.float32)
    pattern = rng.normal(0, 0.02, (4, 4, 3)).astype(np.float32)
    pattern -= pattern.mean(axis=(0, 1))
    grid = np.tile(pattern, (8, 8, 1))[None]

    def cost(err):
        return float(losses.lattice_mse(hr + err, hr, 4))

    assert cost(grid) == pytest.approx(float(np.mean(pattern ** 2)), rel=1e-4)  # all of a grid
    assert cost(np.full_like(hr, 0.1)) == pytest.approx(0.0, abs=1e-10)  # a colour shift: nothing
    ramp = 0.001 * np.arange(32, dtype=np.float32)[None, None, :, None]  # smooth: next to nothing
    noise = rng.normal(0, 0.02, hr.shape).astype(np.float32)  # texture of a grid's energy: 1/64 of it
    assert cost(ramp) < cost(grid) / 100 and cost(noise) < cost(grid) / 20
    # a grid whose sign flips from one 32x32 tile to the next costs as much as one that does not
    hr = rng.random((1, 64, 64, 3)).astype(np.float32)
    flipping = np.tile(pattern, (16, 16, 1))[None] * np.kron([[1, -1], [-1, 1]], np.ones((32, 32)))[None, :, :, None]
    assert cost(flipping.astype(np.float32)) == pytest.approx(float(np.mean(pattern ** 2)), rel=1e-4)


def test_grid_weight_adds_the_lattice_term_to_the_generator_loss(photo_dirs, tmp_path):
    cfg = tiny_config(photo_dirs, loss="perpix", steps=2, grid=100.0, checkpoint_every=2,
                      validate_every=2, val_dir=None)
    Trainer(cfg, tmp_path, progress=False).run()
    last = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()][-1]
    parts = last["pixel"] + last["content"] + 1e-3 * last["adversarial"]  # the perpix preset
    assert last["grid"] > 0 and last["total"] == pytest.approx(parts + 100.0 * last["grid"], rel=1e-4)
    with pytest.raises(DataError, match="grid"):
        tiny_config(photo_dirs, grid=-1.0)
    with pytest.raises(DataError, match="multiple of 32"):
        tiny_config(photo_dirs, grid=1.0, hr_crop=48)


def test_relativistic_losses_score_real_against_the_batch_of_fakes():
    from vsr.train import losses

    sharp = np.array([[3.0], [2.5]]), np.array([[-2.0], [-3.0]])  # D tells them apart
    alike = np.array([[0.4], [-0.1]]), np.array([[0.4], [-0.1]])  # D cannot
    d_sharp, d_alike = (float(losses.relativistic_discriminator_loss(*x)) for x in (sharp, alike))
    g_sharp, g_alike = (float(losses.relativistic_generator_adversarial(*x)) for x in (sharp, alike))
    assert d_sharp < 0.02 < g_alike < g_sharp and d_alike == pytest.approx(g_alike)
    assert d_alike == pytest.approx(2 * np.log(2), abs=0.1)  # chance, whatever the shared offset
    shifted = (sharp[0] + 5.0, sharp[1] + 5.0)
    assert float(losses.relativistic_discriminator_loss(*shifted)) == pytest.approx(d_sharp, rel=1e-5)


def test_relativistic_gan_trains(photo_dirs, tmp_path):
    cfg = tiny_config(photo_dirs, loss="perpix", gan="relativistic", steps=2, checkpoint_every=2,
                      validate_every=2, val_dir=None)
    Trainer(cfg, tmp_path, progress=False).run()
    log = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert np.isfinite(log[-1]["adversarial"]) and np.isfinite(log[-1]["discriminator"])
    with pytest.raises(Exception, match="gan must be"):
        tiny_config(photo_dirs, gan="wasserstein")


def _weights(model):
    return [np.asarray(v) for v in model.weights]


def test_resume_is_exact(photo_dirs, tmp_path):
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    cfg = dict(loss="perpix", feature_network="vgg19", steps=6, pretrain_steps=2, checkpoint_every=3,
               val_dir=None)
    straight = Trainer(tiny_config(photo_dirs, **cfg), tmp_path / "a", progress=False)
    straight.run()
    half = Trainer(tiny_config(photo_dirs, **{**cfg, "steps": 3}), tmp_path / "b", progress=False)
    half.run()
    resumed = Trainer(tiny_config(photo_dirs, **cfg), tmp_path / "b", progress=False)
    resumed.run(resume=True)
    assert resumed.step == straight.step == 6
    for a, b in zip(_weights(straight.generator) + _weights(straight.discriminator),
                    _weights(resumed.generator) + _weights(resumed.discriminator)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(straight.g_opt.variables, resumed.g_opt.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_continuing_a_checkpoint_under_another_recipe_keeps_adams_moments(photo_dirs, tmp_path):
    """--init-weights CHECKPOINT_DIR: generator, Adam's moments and step go on under a new recipe
    (here BatchNorm frozen, so the moments of the BN affine are dropped and the rest matched)."""
    first = Trainer(tiny_config(photo_dirs, steps=3, val_dir=None), tmp_path / "a", progress=False)
    first.run()
    cfg = tiny_config(photo_dirs, steps=5, val_dir=None, bn_frozen=True, pixel_loss="l1",
                      init_weights=str(tmp_path / "a"))
    second = Trainer(cfg, tmp_path / "b", progress=False)
    assert cfg.start_step == 3
    for a, b in zip(_weights(first.generator), _weights(second.generator)):
        np.testing.assert_array_equal(a, b)
    moments = {v.path.split("/", 1)[1]: np.asarray(v) for v in first.g_opt.variables}
    matched = 0
    for v in second.g_opt.variables:
        key = v.path.split("/", 1)[1]
        if key.endswith(("_momentum", "_velocity")):
            np.testing.assert_array_equal(np.asarray(v), moments[key])
            assert np.any(np.asarray(v) != 0)
            matched += 1
    assert matched == 2 * len(second.generator.trainable_variables) > 0
    assert not any("_bn" in w.path for w in second.generator.trainable_variables)
    bn_before = [np.asarray(w) for w in second.generator.weights if "_bn" in w.path]
    second.run()
    assert second.step == 5
    # frozen BatchNorm: neither its affine nor its statistics moved; the convolutions did
    for a, b in zip(bn_before, [np.asarray(w) for w in second.generator.weights if "_bn" in w.path]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_weights(first.generator)[0], _weights(second.generator)[0])


def test_legacy_positional_optimizer_file_is_matched_by_variable(photo_dirs, tmp_path):
    """Checkpoints of the first trainer versions stored Adam's variables as arr_0, arr_1, ..."""
    from vsr.train.trainer import _load_optimizer

    first = Trainer(tiny_config(photo_dirs, steps=2, val_dir=None), tmp_path / "a", progress=False)
    first.run()
    legacy = tmp_path / "legacy.npz"
    np.savez(legacy, *[np.asarray(v) for v in first.g_opt.variables])
    second = Trainer(tiny_config(photo_dirs, steps=4, val_dir=None, seed=3), tmp_path / "b", progress=False)
    _load_optimizer(second.g_opt, legacy, second.generator)
    for a, b in zip(first.g_opt.variables[1:], second.g_opt.variables[1:]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_ema_is_validated_exported_and_resumed(photo_dirs, tmp_path):
    cfg = dict(steps=4, ema=0.5, checkpoint_every=2, validate_every=2, lr_schedule="cosine",
               warmup_steps=1, lr=1e-3)
    straight = Trainer(tiny_config(photo_dirs, **cfg), tmp_path / "a", progress=False)
    straight.run()
    log = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert {"val_psnr_y", "val_psnr_y_raw"} <= set(log[-1]) and log[-1]["val_psnr_y"] != log[-1]["val_psnr_y_raw"]
    raw, avg = _weights(straight.generator), _weights(straight.ema_generator)
    assert not np.allclose(raw[0], avg[0])
    from vsr.models.srgan import build_generator

    exported = build_generator(2, 16)
    exported.load_weights(str(tmp_path / "a" / "export" / "tiny.weights.h5"))
    best = max(r["val_psnr_y"] for r in log if "val_psnr_y" in r)
    if best == log[-1]["val_psnr_y"]:  # the export is the average, not the raw weights
        np.testing.assert_array_equal(_weights(exported)[0], avg[0])
    # the average is checkpointed and restored with the rest
    resumed = Trainer(tiny_config(photo_dirs, **cfg), tmp_path / "a", progress=False)
    resumed.restore(resumed.latest_checkpoint())
    for a, b in zip(avg, _weights(resumed.ema_generator)):
        np.testing.assert_array_equal(a, b)


def test_warmup_cosine_schedule():
    from vsr.train.schedules import WarmupCosine

    s = WarmupCosine(4e-4, start=100, warmup=10, end=200, floor=1e-5)
    lrs = [float(s(t)) for t in (100, 109, 110, 155, 200, 400)]
    np.testing.assert_allclose(lrs, [4e-5, 4e-4, 4e-4, 0.5 * (4e-4 + 1e-5), 1e-5, 1e-5], rtol=1e-3)


def test_training_runs_without_tensorboard(photo_dirs, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    Trainer(tiny_config(photo_dirs, steps=2, val_dir=None), tmp_path, progress=True).run()
    assert "TensorBoard is not installed" in capsys.readouterr().out
    assert (tmp_path / "log.jsonl").read_text().strip() and not (tmp_path / "tb").exists()


def test_existing_run_needs_resume_and_same_recipe(photo_dirs, tmp_path):
    Trainer(tiny_config(photo_dirs, steps=3, val_dir=None), tmp_path, progress=False).run()
    with pytest.raises(DataError, match="--resume"):
        Trainer(tiny_config(photo_dirs, steps=6, val_dir=None), tmp_path, progress=False).run()
    with pytest.raises(DataError, match="different recipe"):
        Trainer(tiny_config(photo_dirs, steps=6, lr=5e-4, val_dir=None), tmp_path,
                progress=False).run(resume=True)


def test_interrupt_saves_a_checkpoint(photo_dirs, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(photo_dirs, steps=50, checkpoint_every=100, val_dir=None), tmp_path,
                      progress=False)
    original = trainer._step_fn
    calls = {"n": 0}

    def interrupting(full):
        fn = original(full)

        def step(lr, hr):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return fn(lr, hr)

        return step

    monkeypatch.setattr(trainer, "_step_fn", interrupting)
    with pytest.raises(Cancelled, match="--resume"):
        trainer.run()
    assert trainer.latest_checkpoint().name == "step-0000004"


_MIRRORED = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from vsr.train.config import TrainConfig
from vsr.train.trainer import Trainer
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
cfg = TrainConfig.from_dict(dict(name="tiny", blocks=2, channels=16, discriminator_channels=8,
    train_dirs=[sys.argv[1]], hr_crop=32, batch=4, loss="perpix", feature_network="vgg19",
    feature_weights="random", steps=3, pretrain_steps=1, checkpoint_every=3))
t = Trainer(cfg, sys.argv[2], strategy=strategy, progress=False)
t.run()
print("replicas", t.replicas, "step", t.step)
"""


def test_mirrored_strategy_over_two_logical_cpus(photo_dirs, tmp_path):
    """Logical devices must be set before TensorFlow starts: run in a fresh process."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _MIRRORED, str(photo_dirs[0]), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "replicas 2 step 3" in proc.stdout
    assert (tmp_path / "checkpoints" / "step-0000003" / "generator.weights.h5").is_file()


def test_bad_data_folder(tmp_path):
    from vsr.train.data import find_images

    with pytest.raises(DataError, match="does not exist"):
        find_images([tmp_path / "nope"])
    with pytest.raises(DataError, match="no images"):
        find_images([tmp_path])
    # a run that fails on its data leaves no run folder behind
    cfg = TrainConfig.from_dict(dict(name="t", blocks=1, channels=4, train_dirs=[str(tmp_path / "nope")],
                                     hr_crop=16, batch=1, steps=2))
    with pytest.raises(DataError, match="does not exist"):
        Trainer(cfg, tmp_path / "run", progress=False).run()
    assert not (tmp_path / "run").exists()


def test_train_cli_and_continuing_from_committed_weights(photo_dirs, tmp_path):
    """`vsr train` end to end, then a new machine continuing from the exported generator only."""
    from click.testing import CliRunner

    from vsr.cli import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nblocks: 2\nchannels: 8\nhr_crop: 32\nbatch: 2\nloss: mse\n"
                      "checkpoint_every: 2\nvalidate_every: 2\nlr: 1.0e-3\n")
    train, val = photo_dirs
    run = CliRunner().invoke(main, ["train", "--config", str(recipe), "--data", str(train), "--val", str(val),
                                    "--out", str(tmp_path / "a"), "--steps", "2", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "step 2, best validation PSNR" in run.output
    exported = tmp_path / "a" / "export" / "tiny.weights.h5"
    run = CliRunner().invoke(main, ["train", "--config", str(recipe), "--data", str(train),
                                    "--out", str(tmp_path / "b"), "--steps", "4", "--quiet",
                                    "--init-weights", str(exported), "--start-step", "2"])
    assert run.exit_code == 0, run.output
    steps = [json.loads(l)["step"] for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == [4]
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-0000004" / "state.json").read_text())
    assert state["step"] == 4

    missing = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_publish_weights_records_scores_measured_by_the_bench(photo_dirs, tmp_path):
    """training/publish_weights.py: bundles the run's export and writes scores that the bench protocol
    gives for that file (checked here independently with vsr.quality on the same images)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from vsr.models.registry import load_model
    from vsr.models.weights import read_manifest, sha256_of
    from vsr.quality import degrade_bi, psnr_y

    Trainer(tiny_config(photo_dirs, steps=3), tmp_path / "run", progress=False).run()
    # a tiny Set5 (two of the validation photos) and a tiny Vid4 (two 2-frame sequences)
    data = tmp_path / "datasets"
    images = sorted(photo_dirs[1].rglob("*.png"))
    (data / "Set5").mkdir(parents=True)
    for p in images:
        cv2.imwrite(str(data / "Set5" / p.name), cv2.imread(str(p))[:96, :100])
    for seq, p in zip(("a", "b"), images):
        (data / "Vid4" / "GT" / seq).mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(data / "Vid4" / "GT" / seq / f"{k:08d}.png"), cv2.imread(str(p))[k:k + 64, :80])
    out = tmp_path / "weights"
    out.mkdir()
    env = {**os.environ, "VSR_WEIGHTS_DIR": str(out), "VSR_DATASETS": str(data)}
    script = Path(__file__).resolve().parents[1] / "training" / "publish_weights.py"
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), "--as", "mse",
                          "--sets", "set5,vid4"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]

    entry = read_manifest(out)["mse"]
    assert entry.file == "mse.weights.h5" and entry.sha256 == sha256_of(out / entry.file)
    assert {"set5", "vid4"} <= set(entry.scores)  # besides the validation score of training
    up = load_model("perpix", weights=out / entry.file, runtime="tf")

    def y_psnr(hr, crop):
        return psnr_y(up.upscale(degrade_bi(hr)), hr, crop_border=crop)

    set5 = [y_psnr(cv2.imread(str(p))[:96, :100, ::-1].copy(), 4) for p in sorted((data / "Set5").iterdir())]
    assert entry.scores["set5"]["psnr_y"] == pytest.approx(np.mean(set5), abs=2e-3)
    assert "psnr_rgb_nocrop" in entry.scores["set5"]
    per_seq = entry.scores["vid4"]["psnr_y_per_item"]
    assert set(per_seq) == {"a", "b"}
    for seq in ("a", "b"):
        frames = sorted((data / "Vid4" / "GT" / seq).iterdir())
        want = np.mean([y_psnr(cv2.imread(str(f))[..., ::-1].copy(), 0) for f in frames])
        assert per_seq[seq] == pytest.approx(want, abs=2e-3)
    assert entry.scores["vid4"]["psnr_y"] == pytest.approx(np.mean(list(per_seq.values())), abs=2e-3)


def test_publish_lineage_follows_each_run_back_to_the_checkpoint_it_started_from(photo_dirs, tmp_path):
    """A bundled generator is often several runs deep (pixel phase, then Per-Pix arms): the manifest's
    lineage lists each run's steps, hours, loss and loss weights, oldest first, read from the
    checkpoints, and the recorded hours are their sum."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from publish_weights import lineage

    first = Trainer(tiny_config(photo_dirs, steps=3), tmp_path / "a", progress=False)
    first.run()
    start = tmp_path / "a" / "checkpoints" / "step-0000003"
    second = Trainer(tiny_config(photo_dirs, steps=6, loss="perpix", adversarial=1e-3, content=2.0,
                                 init_weights=str(start)), tmp_path / "b", progress=False)
    second.run()
    legs = lineage(tmp_path / "b" / "checkpoints" / "step-0000006")
    assert [leg["steps"] for leg in legs] == [[0, 3], [3, 6]]
    assert [leg["loss"] for leg in legs] == ["mse", "perpix"]
    assert legs[0]["from"] is None and legs[1]["from"] == str(start)
    assert legs[1]["weights"] == {"content": 2.0, "adversarial": 1e-3}
    assert legs[0]["hours"] == pytest.approx(first.wall_seconds / 3600, abs=1e-3)
    assert legs[1]["hours"] == pytest.approx(second.wall_seconds / 3600, abs=1e-3)


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_signals_stop_a_real_training_process_with_a_checkpoint(photo_dirs, tmp_path, signum):
    """`vsr train` in its own process: SIGTERM (a scheduler's stop) or Ctrl-C ends it after the current
    step with exit 130 and a checkpoint at the step reached, from which --resume continues."""
    import os
    import signal
    import subprocess
    import sys
    import time

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nblocks: 2\nchannels: 8\nhr_crop: 32\nbatch: 2\nloss: mse\n"
                      "checkpoint_every: 100000\nvalidate_every: 100000\n")
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "vsr", "train", "--config", str(recipe), "--data",
                             str(photo_dirs[0]), "--out", str(run), "--steps", "100000", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not ((run / "log.jsonl").is_file() and (run / "log.jsonl").read_text().strip()):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        proc.send_signal(getattr(signal, signum))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + getattr(signal, signum), err[-2000:]  # 130 Ctrl-C, 143 SIGTERM
    errors = [line for line in err.splitlines() if line.startswith("vsr: error:")]
    assert len(errors) == 1 and "checkpoint saved" in errors[0] and "--resume" in errors[0]
    step = int(errors[0].split("stopped at step ")[1].split(";")[0])
    assert step >= 10 and (run / "checkpoints" / f"step-{step:07d}" / "state.json").is_file()


def test_a_fresh_discriminator_warms_up_alone_before_the_generator_sees_it(photo_dirs, tmp_path):
    """d_warmup_steps: D trains against the fixed generator first (G's weights and Adam untouched,
    the step count too), logged apart; a run resumed from its own checkpoint does not warm up again."""
    cfg = tiny_config(photo_dirs, loss="perpix", steps=2, d_warmup_steps=20, checkpoint_every=2,
                      validate_every=2, val_dir=None, d_lr=2e-3)
    trainer = Trainer(cfg, tmp_path, progress=False)
    g0, d0 = _weights(trainer.generator), _weights(trainer.discriminator)
    from vsr.train.data import PairedImages

    with open(tmp_path / "warm.jsonl", "w") as log:
        terms = trainer.warm_up_discriminator(PairedImages(cfg.train_dirs, min_size=cfg.hr_crop), log)
    for a, b in zip(g0, _weights(trainer.generator)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(d0, _weights(trainer.discriminator)))
    assert int(trainer.g_opt.iterations) == 0 and int(trainer.d_opt.iterations) == 0 and trainer.step == 0
    records = [json.loads(l) for l in (tmp_path / "warm.jsonl").read_text().splitlines()]
    assert [r["d_warmup_step"] for r in records] == [10, 20]
    # 20 steps at 2e-3 teach a tiny D to tell blurred 4x upscales from the photos
    assert terms["d_accuracy"] > 0.6 and terms["discriminator"] < 2 * np.log(2)

    run_dir = tmp_path / "run"
    Trainer(cfg, run_dir, progress=False).run()
    assert len((run_dir / "d_warmup.jsonl").read_text().splitlines()) == 2
    assert [json.loads(l)["step"] for l in (run_dir / "log.jsonl").read_text().splitlines()] == [2]
    more = tiny_config(photo_dirs, loss="perpix", steps=4, d_warmup_steps=20, checkpoint_every=2,
                       validate_every=2, val_dir=None, d_lr=2e-3)
    Trainer(more, run_dir, progress=False).run(resume=True)
    assert len((run_dir / "d_warmup.jsonl").read_text().splitlines()) == 2  # not warmed up again
    with pytest.raises(DataError, match="d_warmup_steps"):
        tiny_config(photo_dirs, d_warmup_steps=-1)
