"""12. cnn: one training step of the small CNN of examples/cnn_digits.py, a PyTorch module imported by dagprop."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

import dagprop as dp
from harness import Case, Context, Factory, Subject

from .shared import dagprop_grads

CNN_LR = 0.1
CLASSES = 10
NAMES = ("block1.0.weight", "block1.0.bias", "block2.0.weight", "block2.0.bias", "head.1.weight", "head.1.bias")


def cnn_data(batch: int, seed: int = 12) -> dict[str, np.ndarray]:
    """Images in [0, 1) (batch, 1, 8, 8), their labels, and weights drawn as torch initialises them
    (uniform within +-1/sqrt(fan-in)), under the module's state_dict names."""
    rng = np.random.default_rng(seed)
    data = {"images": rng.uniform(size=(batch, 1, 8, 8)), "labels": rng.integers(0, CLASSES, size=batch)}
    for name, shape, fan_in in (("block1.0", (8, 1, 3, 3), 9), ("block2.0", (16, 8, 3, 3), 72),
                                ("head.1", (CLASSES, 64), 64)):
        bound = 1 / np.sqrt(fan_in)
        data[f"{name}.weight"] = rng.uniform(-bound, bound, size=shape)
        data[f"{name}.bias"] = rng.uniform(-bound, bound, size=shape[0])
    return data


def digits_cnn(torch: Any) -> Any:
    """The network of examples/cnn_digits.py (written again here: benchmarks do not import the examples)."""
    nn = torch.nn

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, CLASSES), nn.LogSoftmax(dim=1))

        def forward(self, images: Any) -> Any:
            return self.head(self.block2(self.block1(images)))

    return DigitsCNN


def torch_model(torch: Any, d: dict[str, np.ndarray]) -> Any:
    model = digits_cnn(torch)().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(d[name]))
    return model


# -- the NumPy floor: im2col convolution, 2x2 max-pooling, linear, log-softmax and NLL by hand ----------------
# Activations are kept channels-last (B, H, W, C), so that a convolution's im2col rows, its matrix product and its
# output need no transposes; only the weights (torch's (O, C, 3, 3)) and the flattening (torch's (C, H, W) order)
# are reordered.


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 3x3 convolution, padding 1, of x (B, H, W, C): the output (B, H, W, O) and the im2col rows
    (B*H*W, 9*C), in (ki, kj, c) order, kept for the backward pass."""
    batch, height, width, channels = x.shape
    padded = np.zeros((batch, height + 2, width + 2, channels))
    padded[:, 1:-1, 1:-1] = x
    rows = np.empty((batch, height, width, 9 * channels))
    for k in range(9):
        ki, kj = divmod(k, 3)
        rows[..., k * channels:(k + 1) * channels] = padded[:, ki:ki + height, kj:kj + width]
    rows = rows.reshape(-1, 9 * channels)
    matrix = weight.transpose(0, 2, 3, 1).reshape(len(weight), -1)  # (O, ki, kj, c)
    return (rows @ matrix.T + bias).reshape(batch, height, width, -1), rows


def conv_backward(grad_out: np.ndarray, rows: np.ndarray, weight: np.ndarray,
                  need_input: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """dL/dx (B, H, W, C) (None unless asked), dL/dweight (O, C, 3, 3), dL/dbias from dL/dout (B, H, W, O)."""
    batch, height, width, out_channels = grad_out.shape
    channels = weight.shape[1]
    grad_rows_out = grad_out.reshape(-1, out_channels)
    grad_weight = (grad_rows_out.T @ rows).reshape(out_channels, 3, 3, channels).transpose(0, 3, 1, 2)
    grad_bias = grad_rows_out.sum(axis=0)
    if not need_input:
        return None, grad_weight, grad_bias
    matrix = weight.transpose(0, 2, 3, 1).reshape(out_channels, -1)
    grad_rows = (grad_rows_out @ matrix).reshape(batch, height, width, 9 * channels)
    padded = np.zeros((batch, height + 2, width + 2, channels))
    for k in range(9):  # col2im: each window position adds its share back where it was read from
        ki, kj = divmod(k, 3)
        padded[:, ki:ki + height, kj:kj + width] += grad_rows[..., k * channels:(k + 1) * channels]
    return padded[:, 1:-1, 1:-1], grad_weight, grad_bias


def pool_forward(x: np.ndarray) -> np.ndarray:
    """2x2 max-pooling, stride 2, of x (B, H, W, C)."""
    batch, height, width, channels = x.shape
    return x.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


def pool_backward(grad_out: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/dx: each window's gradient goes to its largest entry. A window with tied largest entries sends it
    to each of them (torch: to the first), but here every tie is between ReLU's zeros, whose gradient the
    ReLU then stops; with continuous data, positive entries are never tied."""
    batch, height, width, channels = x.shape
    grouped = x.reshape(batch, height // 2, 2, width // 2, 2, channels)
    won = grouped == out[:, :, None, :, None]
    return (won * grad_out[:, :, None, :, None]).reshape(x.shape)


def workload_cnn(ctx: Context) -> Iterator[Case]:
    """Conv 1->8, ReLU, max-pool, conv 8->16, ReLU, max-pool, linear 64->10, log-softmax, NLL: one SGD step."""
    batch = ctx.settings.pick(32, 32, 4)
    d = cnn_data(batch)
    one_hot = np.eye(CLASSES)[d["labels"]]
    torch = ctx.peers.get("torch")

    def dagprop_subject() -> Subject:
        g = dp.from_torch(torch_model(torch, d), torch.from_numpy(d["images"]))
        targets = g.input("targets", one_hot)
        loss = g.op("mul", g.op("sum", g.op("mul", g["output"], targets)), -1.0 / batch, name="loss")
        params = {name: g[name] for name in NAMES}

        def step() -> None:
            g.zero_grad()
            g.forward()
            g.backward(loss)
            g.step(lr=CNN_LR)

        return Subject(step, lambda: dagprop_grads(params), note="graph from dp.from_torch")

    def numpy_subject() -> Subject:
        s = {name: d[name].copy() for name in NAMES}
        images, labels = d["images"].transpose(0, 2, 3, 1).copy(), d["labels"]  # channels-last
        examples = np.arange(batch)
        grads: dict[str, np.ndarray] = {}

        def step() -> None:
            a1, rows1 = conv_forward(images, s["block1.0.weight"], s["block1.0.bias"])
            h1 = np.maximum(a1, 0.0)
            p1 = pool_forward(h1)
            a2, rows2 = conv_forward(p1, s["block2.0.weight"], s["block2.0.bias"])
            h2 = np.maximum(a2, 0.0)
            p2 = pool_forward(h2)
            flat = p2.transpose(0, 3, 1, 2).reshape(batch, -1)  # torch's flatten: (C, H, W) order
            logits = flat @ s["head.1.weight"].T + s["head.1.bias"]
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            s["loss"] = -log_probs[examples, labels].mean()

            grad_logits = np.exp(log_probs)
            grad_logits[examples, labels] -= 1.0
            grad_logits /= batch
            grads["head.1.weight"] = grad_logits.T @ flat
            grads["head.1.bias"] = grad_logits.sum(axis=0)
            grad_p2 = (grad_logits @ s["head.1.weight"]).reshape(batch, -1, *p2.shape[1:3]).transpose(0, 2, 3, 1)
            grad_a2 = pool_backward(grad_p2, h2, p2) * (a2 > 0)
            grad_p1, grads["block2.0.weight"], grads["block2.0.bias"] = conv_backward(
                grad_a2, rows2, s["block2.0.weight"], need_input=True)
            grad_a1 = pool_backward(grad_p1, h1, p1) * (a1 > 0)
            _, grads["block1.0.weight"], grads["block1.0.bias"] = conv_backward(
                grad_a1, rows1, s["block1.0.weight"], need_input=False)
            for name in NAMES:
                s[name] = s[name] - CNN_LR * grads[name]

        return Subject(step, lambda: {name: grads[name].copy() for name in NAMES},
                       note="im2col by hand, channels-last")

    def torch_subject() -> Subject:
        model = torch_model(torch, d)
        params = list(model.parameters())
        images, labels = torch.from_numpy(d["images"]), torch.from_numpy(d["labels"])

        def step() -> None:
            for p in params:
                p.grad = None
            loss = torch.nn.functional.nll_loss(model(images), labels)
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(CNN_LR * p.grad)

        def gradients() -> dict[str, np.ndarray]:
            return {name: p.grad.numpy().copy() for name, p in model.named_parameters()}

        return Subject(step, gradients, note="the same nn.Module, float64")

    dagprop: Factory | str = dagprop_subject
    if torch is None:
        dagprop = f"needs torch for dp.from_torch: {ctx.peers.missing.get('torch', 'not installed')}"
    systems = {"dagprop": dagprop, "numpy": numpy_subject, "torch": torch_subject}
    yield Case("cnn", f"8x8 images, batch {batch}", systems, note="forward + backward + SGD step")
