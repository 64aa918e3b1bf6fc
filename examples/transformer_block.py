"""One transformer block written in PyTorch, imported with dp.from_torch: which paths carry a token's gradient.

The block is an ordinary ``torch.nn.Module`` (vocabulary of 20 tokens, width 8):

    x = embed(tokens)                                   token embeddings, one row per position
    x = x + attn(ln1(x))                                causal self-attention, one head:
                                                        softmax(q k^T / sqrt(8), masked) v, then out
    x = x + mlp(ln2(x))                                 linear 8 -> 32, GELU, linear 32 -> 8
    log_probs = log_softmax(unembed(x))                 the next token's log-probabilities

``dp.from_torch`` turns it into a dagprop graph (params named as in its state_dict,
one scope per module); the loss is added in dagprop from dagprop ops: next-token
cross-entropy, -sum(log_probs * next) / 5, with the one-hot next tokens fed as an input
(the sixth position has no next token, so its row is zero). dagprop's gradients are
compared with PyTorch autograd's.

Then the gradient of one token's embedding (token 7, which appears twice in the
sequence) is split into the paths it flows along from the loss. At the tensor level
there are eight: straight up the residual stream, through the MLP, through the
attention's values, keys or queries, and through the attention then the MLP.
``top_paths`` ranks them; all eight add up to the gradient. At the element level one
number of the embedding row, through single neurons, has billions of paths;
``top_paths`` finds the largest without listing them.

The block is drawn twice: one box per module (``depth=1``), and every op with the three
largest tensor paths highlighted.

Run ``python examples/transformer_block.py [-o OUTDIR]``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dagprop as dp

NAME = "transformer_block"
VOCAB = 20
WIDTH = 8
HIDDEN = 32
TOKENS = [3, 7, 1, 7, 12, 5]  # token 7 at positions 1 and 3
TOKEN = 7  # whose embedding's gradient is split into paths
TOP_TENSOR = 3  # tensor paths shown by top_paths and highlighted
TOP_ELEMENT = 8  # element paths shown
SEED = 0
ZERO = 1e-12  # a gradient no larger than this is rounding of an exact zero: compared absolutely, not relatively


class Attention(nn.Module):
    """One causal self-attention head, written out: every step becomes a node of its own."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        later = torch.triu(torch.ones(len(x), len(x), dtype=torch.bool), diagonal=1)  # a position sees no later one
        weights = torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1)
        return self.out(weights @ v)


class Block(nn.Module):
    """Token embedding, one pre-norm transformer block, and the unembedding to next-token log-probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.ln1 = nn.LayerNorm(WIDTH)
        self.attn = Attention(WIDTH)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, WIDTH))
        self.unembed = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return torch.log_softmax(self.unembed(x), dim=-1)


def next_tokens() -> np.ndarray:
    """One-hot rows of the token that follows each position; the last position has none (a row of zeros)."""
    one_hot = np.zeros((len(TOKENS), VOCAB))
    one_hot[np.arange(len(TOKENS) - 1), TOKENS[1:]] = 1.0
    return one_hot


def build(model: nn.Module) -> dp.Graph:
    g = dp.from_torch(model, torch.tensor(TOKENS))
    picked = g.op("mul", g["output"], g.input("next", next_tokens()), name="picked")
    g.op("mul", g.op("sum", picked, name="log_likelihood"), -1.0 / (len(TOKENS) - 1), name="loss")
    g.forward()
    g.backward("loss")
    return g


def compare_with_torch(g: dp.Graph, model: nn.Module) -> dict:
    """dagprop's gradients against torch autograd's, params and the embedded tokens."""
    model.zero_grad()
    kept = []

    def keep(_module: nn.Module, _inputs: tuple, embedded: torch.Tensor) -> None:  # None: the output stays as it is
        embedded.retain_grad()
        kept.append(embedded)

    hook = model.embed.register_forward_hook(keep)  # the embedded tokens' gradient, from the module's own forward
    log_probs = model(torch.tensor(TOKENS))
    hook.remove()
    loss = -(log_probs * torch.tensor(next_tokens())).sum() / (len(TOKENS) - 1)
    loss.backward()
    embedded = kept[0]
    print("== dagprop against torch autograd")
    print(f"loss: dagprop {float(g['loss'].value):.15f}, torch {loss.item():.15f}")
    pairs = [(name, np.asarray(g[name].grad), p.grad.numpy()) for name, p in model.named_parameters()]
    pairs.append(("embedding (node)", np.asarray(g["embedding"].grad), embedded.grad.numpy()))
    relative, absolute = {}, {}
    width = max(len(name) for name, _, _ in pairs)
    for name, ours, theirs in pairs:
        absolute[name] = float(np.abs(ours - theirs).max())
        scale = float(np.abs(theirs).max())
        if scale > ZERO:
            relative[name] = absolute[name] / scale
            agreement = f"largest relative difference {relative[name]:.1e}"
        else:
            agreement = f"zero but for rounding in both (largest: {scale:.0e}); largest difference {absolute[name]:.0e}"
        print(f"  {name:{width}s} {str(theirs.shape):>9s}  grad norm {np.linalg.norm(theirs):.6f}  {agreement}")
    print(f"largest relative difference {max(relative.values()):.1e}. attn.k.bias gets no gradient: it adds q . b to\n"
          "every score of a query's row, and softmax does not change when a whole row moves by the same amount.")
    return {"loss": float(g["loss"].value), "loss_torch": loss.item(), "relative": relative, "absolute": absolute,
            "torch_grads": {name: theirs.copy() for name, _, theirs in pairs}}


def route(g: dp.Graph, path: dp.Path) -> str:
    """The modules a tensor path passes, in order: "embed > ln1 > attn.v > attn > attn.out > unembed"."""
    modules: list[str] = []
    for name in path.nodes:
        scope = ".".join(g[name].scope)
        if scope and (not modules or modules[-1] != scope):
            modules.append(scope)
    return " > ".join(modules)


def tensor_paths(g: dp.Graph, row: int) -> dict:
    grad = g["embed.weight"].grad
    count = g.count_paths("embed.weight", "loss")
    best = g.top_paths("embed.weight", "loss", TOP_TENSOR)
    print(f"\n== tensor level: {count} paths from embed.weight to the loss; the {TOP_TENSOR} largest "
          f"(top_paths, by the norm of what each carries)")
    print(dp.path_table(best))
    every = g.paths("embed.weight", "loss")  # few enough to list: check that they add up to the gradient
    total = sum(p.contribution for p in every)
    print(f"all {len(every)} paths add up to dL/d(embed.weight): largest difference "
          f"{np.abs(total - grad).max():.1e}")
    token_grad = grad[row]
    print(f"\nwhat each path carries to token {row}'s embedding, row {row} of embed.weight "
          f"(its gradient: norm {np.linalg.norm(token_grad):.4f}; share: the projection on it)")
    print(f"  {'norm':>8s} {'share':>7s}  modules passed")
    shares = []
    for path in sorted(every, key=lambda p: -np.linalg.norm(p.contribution[row])):
        part = path.contribution[row]
        share = float(part @ token_grad / (token_grad @ token_grad))
        shares.append((route(g, path), float(np.linalg.norm(part)), share))
        print(f"  {shares[-1][1]:8.4f} {share:7.1%}  {shares[-1][0]}")
    return {"count": count, "best": [(p.nodes, np.array(p.contribution)) for p in best],
            "every": [(p.nodes, np.array(p.contribution)) for p in every], "row_shares": shares, "paths": best}


def element_paths(g: dp.Graph, row: int) -> dict:
    grad = g["embed.weight"].grad
    column = int(np.argmax(np.abs(grad[row])))
    index = (row, column)
    count = g.count_paths("embed.weight", "loss", index=index)
    best = g.top_paths("embed.weight", "loss", TOP_ELEMENT, index=index)
    print(f"\n== element level: dL/d(embed.weight[{row},{column}]) = {grad[index]:.6g}, the largest entry of "
          f"token {row}'s gradient,\nis the sum of {count:,} element paths; the {TOP_ELEMENT} largest (top_paths):")
    print(dp.path_table(best))
    carried = sum(p.contribution for p in best)
    print(f"these {TOP_ELEMENT} carry {carried:.6g} of {grad[index]:.6g}; the other {count - TOP_ELEMENT:,} paths "
          f"carry the rest")
    return {"index": index, "count": count, "grad": float(grad[index]),
            "best": [(p.nodes, tuple(float(f) for f in p.factors), float(p.contribution)) for p in best]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).parent / "out" / NAME,
                        help=f"where to write the diagrams (default: examples/out/{NAME})")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(SEED)
    model = Block().double()
    g = build(model)
    scopes = sorted({n.scope[0] for n in g if n.scope})
    print(f"tokens {TOKENS}; the block as a dagprop graph: {len(g)} nodes in the scopes {', '.join(scopes)}")
    results = {"weights": {name: p.detach().numpy().copy() for name, p in model.named_parameters()},
               "grads": {p.name: np.array(p.grad) for p in g.params}, "embedding_grad": np.array(g["embedding"].grad)}
    results["torch"] = compare_with_torch(g, model)
    results["tensor"] = tensor_paths(g, TOKEN)
    results["element"] = element_paths(g, TOKEN)

    boxes = args.outdir / "block_depth1.png"
    drawn = dp.render(g, boxes, depth=1, rankdir="TB", precision=3,
                      title=f"the transformer block on tokens {TOKENS}, one box per module (depth=1):\n"
                            "values and gradients of the tensors leaving each module")
    boxes.with_suffix(".dot").write_text(drawn.source, encoding="utf-8")  # for scripts/gallery.py
    full = args.outdir / "block_full.png"
    dp.render(g, full, rankdir="TB", precision=3, highlight=results["tensor"].pop("paths"),
              title=f"the transformer block, every op; highlighted: the {TOP_TENSOR} paths carrying the most "
                    f"gradient to embed.weight")
    print(f"\nwritten: {boxes}, {full}")
    results["files"] = [boxes, full]
    return results


if __name__ == "__main__":
    main()
