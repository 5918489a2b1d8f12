import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from vsr.cli import main
from vsr.errors import ModelError, OutputError
from vsr.export import export_model
from vsr.models import registry

# TensorFlow alone, as a serving container has it: no vsr import, no custom layers to register.
_TF_SERVING_REST = """
import json, sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
body = json.load(open(sys.argv[2]))
frames = tf.constant(np.asarray(body["instances"], np.uint8))
(out,) = serve(frames=frames).values()
json.dump({"predictions": out.numpy().tolist()}, open(sys.argv[3], "w"))
print(json.dumps({"vsr_imported": "vsr" in sys.modules,
                  "inputs": {k: [v.dtype.name, v.shape.as_list()]
                             for k, v in serve.structured_input_signature[1].items()}}))
"""


def _write_png(path, rgb):
    import cv2

    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _read_png(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_savedmodel_answers_tf_serving_rest_body_like_vsr_upscale(tiny_weights, frames, tmp_path):
    out = tmp_path / "perpix_savedmodel"
    result = CliRunner().invoke(main, ["export", "--model", "perpix", "--format", "savedmodel",
                                       "--weights", str(tiny_weights), str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "saved_model.pb").is_file()

    _write_png(tmp_path / "in.png", frames[0])
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.png"), str(tmp_path / "sr.png"),
                                       "--weights", str(tiny_weights), "--quiet"])
    assert result.exit_code == 0, result.output
    upscaled = _read_png(tmp_path / "sr.png")

    (tmp_path / "request.json").write_text(json.dumps({"instances": [frames[0].tolist()]}))
    proc = subprocess.run([sys.executable, "-c", _TF_SERVING_REST, str(out), str(tmp_path / "request.json"),
                           str(tmp_path / "response.json")], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {"vsr_imported": False, "inputs": {"frames": ["uint8", [None, None, None, 3]]}}
    predictions = np.asarray(json.loads((tmp_path / "response.json").read_text())["predictions"])
    assert predictions.shape == (1, 92, 68, 3)
    assert np.abs(predictions[0] - upscaled.astype(int)).max() <= 1
    assert (predictions[0] == upscaled).mean() > 0.999


def test_savedmodel_float16_is_close(tiny_weights, frames, tmp_path):
    import tensorflow as tf

    out = export_model("perpix", "savedmodel", tmp_path / "sm16", precision="float16", weights=tiny_weights)
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = serve(frames=tf.constant(frames))["sr"].numpy()
    ref = registry.load_model("perpix", weights=tiny_weights).upscale(frames)
    assert got.dtype == np.uint8 and got.shape == ref.shape
    assert np.abs(got.astype(int) - ref).mean() < 1


def _litert(path, shape):
    pytest.importorskip("ai_edge_litert")
    from vsr.runtime.litert import new_interpreter

    return new_interpreter(path.read_bytes(), shape)


def _convs_outside_xnnpack(interpreter):
    """CONV_2D nodes whose weights no XNNPACK partition consumed (the delegate takes a node's
    constant inputs as its own; anything left runs on TFLite's reference kernels)."""
    ops = interpreter._get_ops_details()
    delegated = {int(t) for op in ops if op["op_name"] == "DELEGATE" for t in op["inputs"]}
    return [op["index"] for op in ops if op["op_name"] == "CONV_2D" and int(op["inputs"][1]) not in delegated]


def test_tflite_runs_in_litert_with_every_conv_in_xnnpack(tiny_weights, tmp_path):
    from vsr.runtime.litert import run_interpreter

    out = export_model("perpix", "tflite", tmp_path / "perpix.tflite", weights=tiny_weights)
    # 480x270 is where an unfrozen export's reference conv kernel overflowed int32.
    rng = np.random.default_rng(5)
    for shape in [(2, 23, 17, 3), (1, 270, 480, 3)]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        interpreter = _litert(out, shape)
        assert interpreter.get_input_details()[0]["dtype"] == np.uint8
        assert _convs_outside_xnnpack(interpreter) == []
        got = run_interpreter(interpreter, x)
        ref = registry.load_model("perpix", weights=tiny_weights, tile=0).upscale(x)
        assert got.dtype == np.uint8 and got.shape == ref.shape
        assert np.abs(got.astype(int) - ref).max() <= 1
    # Frozen and folded: the weights are in the file, and no BatchNorm arithmetic is left.
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not ops & {"VAR_HANDLE", "READ_VARIABLE", "SQUARED_DIFFERENCE", "RSQRT", "SUB"}
    assert out.stat().st_size > 4 * registry.generator_parameter_count(2, 8, 4) * 0.9


def test_tflite_float16_is_half_size_and_close(tiny_weights, frames, tmp_path):
    from vsr.runtime.litert import run_interpreter

    f32 = export_model("perpix", "tflite", tmp_path / "f32.tflite", weights=tiny_weights)
    f16 = export_model("perpix", "tflite", tmp_path / "f16.tflite", precision="float16", weights=tiny_weights)
    assert f16.stat().st_size < 0.75 * f32.stat().st_size
    interpreter = _litert(f16, frames.shape)
    assert _convs_outside_xnnpack(interpreter) == []
    got = run_interpreter(interpreter, frames)
    ref = registry.load_model("perpix", weights=tiny_weights).upscale(frames)
    assert np.abs(got.astype(int) - ref).mean() < 1


def test_export_user_errors(tiny_weights, tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists"):
        export_model("perpix", "tflite", target, weights=tiny_weights)
    with pytest.raises(ModelError, match="no network"):
        export_model("bicubic", "tflite", tmp_path / "b.tflite")
    with pytest.raises(ModelError, match="format"):
        export_model("perpix", "onnx", tmp_path / "m.onnx", weights=tiny_weights)
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--format", "tflite", "--weights", str(tiny_weights), str(target)])
    assert result.exit_code == OutputError.exit_code and "--overwrite" in result.output
    assert target.read_bytes() == b"old"
    result = runner.invoke(main, ["export", "--format", "tflite", "--weights", str(tiny_weights),
                                  "--overwrite", str(target)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
