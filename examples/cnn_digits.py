"""A small CNN written in PyTorch, imported with dp.from_torch and trained by dagprop on 8x8 digits.

The network is an ordinary ``torch.nn.Module``:

    block1: conv 1 -> 8 (3x3, padding 1), ReLU, max-pool 2     8x8 -> 4x4
    block2: conv 8 -> 16 (3x3, padding 1), ReLU, max-pool 2    4x4 -> 2x2
    head:   flatten, linear 64 -> 10, log-softmax

``dp.from_torch`` turns it into a dagprop graph (params named as in its state_dict,
one scope per module). The loss is added in dagprop, from dagprop ops: the negative
log-likelihood -sum(log_probs * targets) / batch, with the one-hot targets fed as an
input next to the images. Training is dagprop's own loop (zero_grad, forward,
backward, step: plain SGD) on minibatches of the 8x8 digits that scikit-learn ships
inside its wheel (``sklearn.datasets.load_digits``: 1797 images, nothing downloaded),
in float64.

Before training, the gradients of the first minibatch are compared with PyTorch
autograd's on the same batch and weights. After training, the accuracy on held-out
digits is printed, and the network is drawn at its first step with every value and
gradient; 4-D tensors are summarised and one slice of each (image 0, channel 0)
is drawn as a matrix, so the first digit of the batch can be read off.

Run ``python examples/cnn_digits.py [-o OUTDIR] [--quick]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import dagprop as dp

try:
    from tqdm import tqdm
except ImportError:  # tqdm is optional: without it the loss lines printed every few steps show the progress
    tqdm = None

NAME = "cnn_digits"
BATCH = 32
LEARNING_RATE = 0.3
TEST_IMAGES = 400  # held out; the other 1397 digits are for training
STEPS = 500  # about 11 passes over the training digits
PRINT_EVERY = 50
QUICK_STEPS = 40
QUICK_TRAIN_IMAGES = 320
QUICK_TEST_IMAGES = 200
QUICK_PRINT_EVERY = 10
SEED = 0
CLASSES = 10


class DigitsCNN(nn.Module):
    """Two conv blocks and a linear head: 8x8 grey images in, log-probabilities of the ten digits out."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, CLASSES), nn.LogSoftmax(dim=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(images)))


def digits(rng: np.random.Generator, quick: bool) -> dict[str, np.ndarray]:
    """The 8x8 digits scaled to [0, 1], shuffled, split into training and held-out images (N, 1, 8, 8)."""
    data = load_digits()
    order = rng.permutation(len(data.images))
    images, labels = data.images[order][:, None] / 16.0, data.target[order]
    test = QUICK_TEST_IMAGES if quick else TEST_IMAGES
    train_end = QUICK_TRAIN_IMAGES if quick else len(images) - test
    return {"order": order, "train_images": images[:train_end], "train_labels": labels[:train_end],
            "test_images": images[-test:], "test_labels": labels[-test:]}


def build(model: nn.Module) -> dp.Graph:
    """The model as a dagprop graph for minibatches of BATCH images, with the NLL loss added in dagprop."""
    g = dp.from_torch(model, torch.zeros(BATCH, 1, 8, 8, dtype=torch.float64))
    targets = g.input("targets", np.zeros((BATCH, CLASSES)))  # one-hot rows
    picked = g.op("mul", g["output"], targets, name="picked")  # log-probability of each image's own digit
    g.op("mul", g.op("sum", picked, name="log_likelihood"), -1.0 / BATCH, name="loss")
    return g


def feeds(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    return {"images": images, "targets": np.eye(CLASSES)[labels]}


def batches(rng: np.random.Generator, count: int, steps: int) -> list[np.ndarray]:
    """The indices of each step's minibatch: passes over the training images, each in a new random order."""
    out: list[np.ndarray] = []
    while len(out) < steps:
        order = rng.permutation(count)
        out.extend(order[k:k + BATCH] for k in range(0, count - BATCH + 1, BATCH))
    return out[:steps]


def compare_with_torch(g: dp.Graph, model: nn.Module, images: np.ndarray, labels: np.ndarray) -> dict:
    """dagprop's gradients on one minibatch against torch autograd's on the same batch and weights."""
    model.zero_grad()
    log_probs = model(torch.tensor(images))
    loss = -(log_probs * torch.tensor(np.eye(CLASSES)[labels])).sum() / len(images)
    loss.backward()
    print(f"== step 0: dagprop against torch autograd on the same {len(images)} images")
    print(f"loss: dagprop {float(g['loss'].value):.15f}, torch {loss.item():.15f}")
    print(f"{'param':18s}{'shape':>14s}{'norm of grad':>15s}{'largest relative difference':>30s}")
    worst = {}
    for name, param in model.named_parameters():
        ours, theirs = np.asarray(g[name].grad), param.grad.numpy()
        worst[name] = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        print(f"{name:18s}{str(tuple(theirs.shape)):>14s}{np.linalg.norm(theirs):15.6f}{worst[name]:30.2e}")
    agree = max(worst.values()) <= 1e-9
    print(f"largest relative difference {max(worst.values()):.2e}: "
          + ("they agree to 1e-9" if agree else "MORE THAN 1e-9: dagprop and torch disagree"))
    return {"loss_dagprop": float(g["loss"].value), "loss_torch": loss.item(), "relative": worst, "agree": agree}


def train(g: dp.Graph, data: dict, steps_indices: list[np.ndarray], print_every: int) -> list[float]:
    losses = []
    bar = tqdm(total=len(steps_indices), desc="training", unit="step") if tqdm is not None else None
    say = tqdm.write if bar is not None else print
    for step, index in enumerate(steps_indices, start=1):
        g.zero_grad()
        g.forward(feeds=feeds(data["train_images"][index], data["train_labels"][index]))
        g.backward("loss")
        g.step(lr=LEARNING_RATE)
        losses.append(float(g["loss"].value))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if step == 1 or step % print_every == 0 or step == len(steps_indices):
            recent = losses[-print_every:]
            say(f"step {step:4d}  loss {losses[-1]:.4f}  (mean of the last {len(recent)}: {np.mean(recent):.4f})")
    if bar is not None:
        bar.close()
    return losses


def accuracy(g: dp.Graph, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The share of ``images`` whose most probable digit is their label (the graph runs on all of them at once)."""
    g.forward(feeds={"images": images}, outputs=["output"])
    predicted = g["output"].value.argmax(axis=1)
    return float(np.mean(predicted == labels)), predicted


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_STEPS} steps on {QUICK_TRAIN_IMAGES} digits instead of {STEPS} on all of them")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    steps = QUICK_STEPS if args.quick else STEPS
    print_every = QUICK_PRINT_EVERY if args.quick else PRINT_EVERY

    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    data = digits(rng, args.quick)
    model = DigitsCNN().double()
    start = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    g = build(model)
    print(f"{len(data['train_images'])} training digits, {len(data['test_images'])} held out; "
          f"the network as a dagprop graph: {len(g)} nodes, {len(g.params)} params "
          f"({sum(p.value.size for p in g.params)} numbers)")

    plan = batches(rng, len(data["train_images"]), steps)
    first = plan[0]
    g.forward(feeds=feeds(data["train_images"][first], data["train_labels"][first]))
    g.backward("loss")
    check = compare_with_torch(g, model, data["train_images"][first], data["train_labels"][first])
    step0_grads = {p.name: np.array(p.grad) for p in g.params}
    # drawn now, at the step just checked: the gradients are those of the untrained network on the first batch
    diagram = args.outdir / "cnn_gradients.png"
    drawn = dp.render(g, diagram, rankdir="TB", slices=(0, 0), max_matrix=(8, 8), precision=3,
                      title=f"the CNN at step 0 on a minibatch of {BATCH} digits: values and gradients\n"
                            "4-D tensors summarised, with [0, 0, :, :] drawn: the first image, channel 0")
    diagram.with_suffix(".dot").write_text(drawn.source, encoding="utf-8")  # for scripts/gallery.py

    print(f"\n== {steps} steps of SGD, lr = {LEARNING_RATE}, minibatches of {BATCH}")
    losses = train(g, data, plan, print_every)
    trained = {p.name: p.value.copy() for p in g.params}
    train_accuracy, _ = accuracy(g, data["train_images"], data["train_labels"])
    test_accuracy, predicted = accuracy(g, data["test_images"], data["test_labels"])
    print(f"accuracy: {100 * train_accuracy:.1f}% on the {len(data['train_images'])} training digits, "
          f"{100 * test_accuracy:.1f}% on the {len(data['test_images'])} held-out digits")
    confusion = np.zeros((CLASSES, CLASSES), dtype=int)
    np.add.at(confusion, (data["test_labels"], predicted), 1)
    print("held-out digits, a row per true digit, a column per predicted one:")
    print("     " + " ".join(f"{d:3d}" for d in range(CLASSES)))
    for digit, row in enumerate(confusion):
        print(f"  {digit}: " + " ".join(f"{n:3d}" for n in row))

    print(f"\nwritten: {diagram}")
    return {"data": data, "start": start, "batches": plan, "losses": losses, "trained": trained, "check": check,
            "step0_grads": step0_grads, "train_accuracy": train_accuracy, "test_accuracy": test_accuracy,
            "predicted": predicted, "files": [diagram]}


if __name__ == "__main__":
    main()
