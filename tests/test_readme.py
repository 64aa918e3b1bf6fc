"""The README's Python blocks run, in order, and what their comments claim is true."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_blocks_run_and_their_claims_hold(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in python_blocks(ROOT / "README.md"):
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    x = np.array([[1, 3], [4, .3], [2, 2]])
    alpha, y = np.array([[5, -2]]), np.array([[-1], [20], [5]])
    z = x @ alpha.T
    assert "[-1.  19.4  6. ]\n[ 0.  -1.8  3. ]" in printed  # as the README's comments say
    np.testing.assert_allclose(z.ravel(), [-1.0, 19.4, 6.0])  # the comment's forward value
    np.testing.assert_allclose(((z - y) @ alpha).sum(axis=1), [0.0, -1.8, 3.0])  # the comment's bias gradient
    assert "(3, 1) (3, 3)\n(3, 2)\n[('l2_loss_1', 1.0)]" in printed  # the run record's block
    assert "(3, 1, 3, 3)" in printed and "[ 3. 12.]" in printed
    for name in ("linear.svg", "softmax.png", "focus.svg", "run.html"):
        assert (tmp_path / name).stat().st_size > 0
    paths, e = namespace["paths"], namespace["e"]
    np.testing.assert_allclose(sum(p.contribution for p in paths), e.grad)
    assert "\n9\n" in printed  # the element paths from e[0,0] through the opened softmax: 3 x 3
    W, bias = np.eye(3), np.zeros((3, 1))  # the README's training loop, written out in numpy
    for _ in range(10):
        dz = (W @ x + bias) @ alpha.T - y
        W, bias = W - 0.002 * (dz @ alpha) @ x.T, bias - 0.002 * (dz @ alpha).sum(axis=1, keepdims=True)
    trained = 0.5 * float((((W @ x + bias) @ alpha.T - y) ** 2).sum())
    assert f"\n{trained!r}\n" in printed and trained < 1e-15
    e = np.array([2.0, 1.0])
    s = np.exp(e) / np.exp(e).sum()
    incoming = np.array([1.0, -2.0])
    expected = s[0] * (incoming[0] - (s * incoming).sum())  # softmax's vjp at e[0], written out
    np.testing.assert_allclose(sum(p.contribution for p in namespace["element_paths"]), expected)
    xv, wv = np.array([0.5, -1.0]), np.array([2.0, 3.0])  # the forward-mode block, in closed form
    t = np.tanh(xv * wv)
    np.testing.assert_allclose(float(namespace["F"].tangent), (1 - t[0] ** 2) * wv[0], rtol=1e-12)
    np.testing.assert_allclose(namespace["x"].grad, (1 - t**2) * wv, rtol=1e-12)
    hessian = np.diag(-2 * t * (1 - t**2) * wv**2)
    np.testing.assert_allclose(namespace["f"].hessian(namespace["F"], namespace["x"]), hessian, rtol=1e-12)
    assert "] dF/dx\n" in printed
    assert "v.tangent = 4. (sum of 2 so far)" in printed
    assert "param ('mlp', '0') (1, 3, 8)\nTrue\n" in printed  # the torch block: torch's gradient
    assert "param (2, 2)\n" in printed  # the ONNX model's initializer is a param with a gradient
    assert (tmp_path / "block.svg").stat().st_size > 0
    for name in ("tangents.svg", "forward.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert "def forward" not in printed and "d_softmax_1 = d_mul_1 * const_1" in printed
    # the array-API block: the gradient stays array-api-strict's; d/dx tanh(2x) = 2 (1 - tanh(2x)^2) at 0.5
    assert f"array_api_strict {round(2 * (1 - np.tanh(1.0) ** 2), 4)}\n" in printed
    # the Dask block, in closed form: every row of U1 @ u is 0.5 u, so U2 @ tanh(.) = tanh(0.5 u)
    u = np.linspace(-1, 1, 8)
    o = np.tanh(0.5 * u)
    np.testing.assert_allclose(namespace["U1"].grad.ravel(), np.full(4, (2 * o * 0.25 * (1 - o**2) * u).sum()),
                               rtol=1e-12)
