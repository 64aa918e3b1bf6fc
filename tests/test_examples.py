"""Every example in examples/ runs, writes its pictures, and computes the right numbers.

"Right" is decided here, independently of dagprop: the notes' data are typed in
again, and the expected numbers come from plain numpy (closed forms, hand-written
backward passes, the notes' training loops re-implemented) or from central
differences of plain-numpy losses. Nothing an example prints is trusted.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from helpers import central_difference

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, outdir: Path, *flags: str) -> tuple[object, dict]:
    """Import examples/<name>.py as a user's script would be and call its main()."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.main(["-o", str(outdir), *flags])


def assert_pictures(outdir: Path, *names: str) -> None:
    for name in names:
        path = outdir / name
        assert path.exists(), f"{name} was not written"
        head = path.read_bytes()[:8]
        if name.endswith(".png"):
            assert head == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        else:
            assert head.lstrip().startswith((b"<?xml", b"<svg", b"<!--")), f"{name} is not an SVG"


def l2(z: np.ndarray, y: np.ndarray) -> float:
    return 0.5 * float(np.sum((z - y) ** 2))


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- the examples list ---------------------------------------------------------------------------


def test_every_example_is_documented_and_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    tested = {name[len("test_"):] for name in globals() if name.startswith("test_")}
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert script in tested, f"examples/{script}.py has no test here"
        assert f"examples/{script}.py" in readme, f"examples/README.md does not list {script}"


# -- linear layer --------------------------------------------------------------------------------


def test_linear_layer(tmp_path):
    module, out = run("linear_layer", tmp_path)
    assert_pictures(tmp_path, "linear_vector.png", "linear_matrix.png", "linear_absorbed.png")

    data = {k: np.asarray(v, dtype=float) for k, v in module.VECTOR.items()}
    W, b, x, y = data["W"], data["b"], data["x"], data["y"]
    z = W @ x + b
    vector = out["vector"]
    assert vector["L"] == pytest.approx(l2(z, y))
    np.testing.assert_allclose(vector["dW"], (z - y) @ x.T)
    np.testing.assert_allclose(vector["db"], z - y)
    np.testing.assert_allclose(vector["dW"], central_difference(lambda w: l2(w @ x + b, y), W), atol=1e-6)
    W1, b1 = W - module.LEARNING_RATE * (z - y) @ x.T, b - module.LEARNING_RATE * (z - y)
    np.testing.assert_allclose(vector["W_after"], W1)
    np.testing.assert_allclose(vector["b_after"], b1)
    assert vector["L_after"] == pytest.approx(l2(W1 @ x + b1, y))

    data = {k: np.asarray(v, dtype=float) for k, v in module.MATRIX.items()}
    W, b, x, y = data["W"], data["b"], data["x"], data["y"]
    assert x.shape[1] == 3
    z = W @ x + b
    matrix = out["matrix"]
    assert matrix["L"] == pytest.approx(l2(z, y))
    np.testing.assert_allclose(matrix["dW"], (z - y) @ x.T)
    np.testing.assert_allclose(matrix["db"], (z - y).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(matrix["db"], central_difference(lambda c: l2(W @ x + c, y), b), atol=1e-6)

    absorbed = out["absorbed"]
    assert absorbed["L"] == pytest.approx(l2(z, y))
    np.testing.assert_allclose(absorbed["dWb"], np.hstack([(z - y) @ x.T, (z - y).sum(axis=1, keepdims=True)]))


# -- attention's V, Q and K: the notes' loops in numpy -----------------------------------------------


def test_attention_values(tmp_path):
    _, out = run("attention_values", tmp_path)
    assert_pictures(tmp_path, "values_v.png", "values_layer.png")

    V = np.array([[-1, 6, 7], [2, 2, 2], [5, 5, 5]], dtype=float)
    b = np.zeros((3, 1))
    alpha = np.array([[5.0, -2.0]])
    x = np.array([[1, 3], [4, 0.3], [2, 2]])
    y = np.array([[-1.0], [20.0], [5.0]])

    v = V @ x + b
    z = v @ alpha.T
    part1 = out["parameters"]
    np.testing.assert_allclose(part1["z"], z)
    np.testing.assert_allclose(part1["dv"], (z - y) @ alpha)
    np.testing.assert_allclose(part1["dv"], central_difference(lambda w: l2(w @ alpha.T, y), v), rtol=1e-6)

    losses = []
    for _ in range(10):
        v = V @ x + b
        z = v @ alpha.T
        losses.append(l2(z, y))
        dv = (z - y) @ alpha
        V = V - 0.002 * dv @ x.T
        b = b - 0.002 * dv.sum(axis=1, keepdims=True)
    layer = out["layer"]
    assert len(layer["losses"]) == 10
    np.testing.assert_allclose(layer["losses"], losses, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(layer["V"], V, rtol=1e-9)
    np.testing.assert_allclose(layer["b"], b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer["z"], (V @ x + b) @ alpha.T, rtol=1e-9)
    assert losses[0] == pytest.approx(20123.3)


def query_data():
    Q = np.array([[1, 5, 0.2, 0], [1, 2, 0.4, 0], [4, 5, 1, 0]], dtype=float)
    k = np.array([[1, -3, 6], [2, 0, 1], [4, 5, 1]], dtype=float)
    x = np.array([0.5, 0.5, 0.3, 1.0])
    y = np.array([-3.14, -6.3, 2.21])
    return Q, k, x, y


def test_attention_query(tmp_path):
    _, out = run("attention_query", tmp_path)
    assert_pictures(tmp_path, "query.png")
    Q, k, x, y = query_data()

    def loss(Qm):
        return l2((Qm @ x) @ k, y)

    ours = out["dagprop"]
    np.testing.assert_allclose(ours["first_grad"], central_difference(loss, Q), rtol=1e-6)
    assert ours["gradcheck_error"] < 1e-5

    chain, note = Q.copy(), Q.copy()
    chain_losses, note_losses = [], []
    for _ in range(100):
        dq = k @ ((chain @ x) @ k - y)  # dL/dq = k (e - y)^T
        chain_losses.append(loss(chain))
        chain = chain - 0.02 * np.outer(dq, x)
        # the note's rule: its weight block moves by the row dq * x, the same for every row
        dq = k @ ((note @ x) @ k - y)
        note_losses.append(loss(note))
        step = np.tile(dq[:3] * x[:3], (3, 1))
        note = note - 0.02 * np.hstack([step, dq[:, None]])
    np.testing.assert_allclose(ours["losses"], chain_losses, rtol=1e-7)
    np.testing.assert_allclose(ours["Q"], chain, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours["e"].ravel(), (chain @ x) @ k, rtol=1e-7)
    assert ours["final_loss"] == pytest.approx(loss(chain), rel=1e-6)

    theirs = out["note_rule"]
    np.testing.assert_allclose(theirs["losses"], note_losses, rtol=1e-7)
    np.testing.assert_allclose(theirs["Q"], note, rtol=1e-7, atol=1e-10)
    assert theirs["final_loss"] > 10 * ours["final_loss"]


def test_attention_keys(tmp_path):
    _, out = run("attention_keys", tmp_path)
    assert_pictures(tmp_path, "keys.png")
    K = np.array([[1, -3, 6, 0], [2, 0, 1, 0], [4, 5, 1, 0]], dtype=float)
    q = np.array([1.0, 5.0, 0.2])
    x = np.array([[0.5, 0.2, 0.4], [0.5, 0.2, 0.6], [0.3, 0.25, 0.7], [1, 1, 1]])
    y = np.array([-3.14, -6.3, 2.21])

    def loss(Km):
        return l2(q @ (Km @ x), y)

    np.testing.assert_allclose(out["first_grad"], central_difference(loss, K), rtol=1e-6)
    losses = []
    for _ in range(300):
        e = q @ (K @ x)
        losses.append(l2(e, y))
        dk = np.outer(q, e - y)  # dL/dk: column j is q (e_j - y_j)
        K = K - 0.01 * dk @ x.T  # the last column of x^T is ones: the bias gets the column sums
    np.testing.assert_allclose(out["losses"], losses, rtol=1e-7)
    np.testing.assert_allclose(out["K"], K, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(out["e"].ravel(), q @ (K @ x), rtol=1e-7)
    assert out["final_loss"] < 1e-4


# -- softmax ---------------------------------------------------------------------------------------


def test_softmax_circuit(tmp_path, capsys):
    module, out = run("softmax_circuit", tmp_path)
    printed = capsys.readouterr().out
    assert_pictures(tmp_path, "softmax_box.png", "softmax_circuit.png", "softmax_paths.png")
    e = np.asarray(module.SCORES)
    incoming = np.asarray(module.INCOMING)
    g1, g2 = incoming
    a = np.exp(e) / np.exp(e).sum()
    jacobian = np.diag(a) - np.outer(a, a)
    grad = jacobian.T @ incoming

    np.testing.assert_allclose(out["alpha"], a)
    np.testing.assert_allclose(out["jacobian"], jacobian)
    np.testing.assert_allclose(out["grad"], grad)
    np.testing.assert_allclose(out["grad"], central_difference(lambda s: float(softmax(s) @ incoming), e), atol=1e-8)
    np.testing.assert_allclose(out["circuit_grad"], grad)
    np.testing.assert_allclose(out["box_contributions"], sorted([a[0] * (1 - a[0]) * g1, -a[0] * a[1] * g2]))

    # the three teaching paths e1 -> s1 -> a1 -> ...: their local derivatives and contributions
    branches = out["branches"]
    assert set(branches) == {"top", "mid", "cross"}
    expected = {"top": (a[0], a[0] * g1), "mid": (-a[0] ** 2, -a[0] ** 2 * g1),
                "cross": (-a[0] * a[1], -a[0] * a[1] * g2)}
    for name, (local, contribution) in expected.items():
        assert branches[name] == pytest.approx((local, contribution))
    assert branches["top"][1] + branches["mid"][1] == pytest.approx(a[0] * (1 - a[0]) * g1)
    # the numbers the note's story quotes
    assert [f"{x:.4f}" for x in (a[0], -a[0] ** 2, a[0] * (1 - a[0]), -a[0] * a[1], grad[0])] == [
        "0.7311", "-0.5344", "0.1966", "-0.1966", "0.5898"]

    # the six paths through the max: e1 is the max, so e1 -> m (1) -> s_j (-1) -> a_j (exp(s_j)), then
    # straight to alpha_j (r = 1/b) or through b (1) and r (-1/b^2) to alpha_k (a_k)
    assert e.argmax() == 0
    exps = np.exp(e - e.max())
    r = 1 / exps.sum()
    through_max = [-exps[j] * r * incoming[j] for j in range(2)]
    through_max += [-exps[j] * -r**2 * exps[k] * incoming[k] for j in range(2) for k in range(2)]
    np.testing.assert_allclose(out["max_contributions"], sorted(through_max))
    assert abs(sum(through_max)) < 1e-15 and abs(out["max_sum"]) < 1e-15  # 0 up to rounding
    assert out["max_grad"] == pytest.approx(0, abs=1e-15)
    np.testing.assert_allclose(out["sub_grad"], grad)  # softmax(e - m) = softmax(e): s gets e's gradient
    assert out["path_count"] == 3 * 3  # (e1 -> s1, e1 -> m -> s1, e1 -> m -> s2) x 3 routes from s_j to L
    # e2 is not the max, so its paths skip m: s2 -> a2 -> alpha2, and through b to alpha1 and alpha2
    np.testing.assert_allclose(out["e2_contributions"],
                               sorted([a[1] * g2, -a[1] * a[0] * g1, -a[1] * a[1] * g2]))

    # what the example prints comes out of these closed forms
    for line in (f"top   reaches alpha[0]: dalpha/de1 along it = {a[0]:+.4f}, contribution {a[0] * g1:+.4f}",
                 f"mid   reaches alpha[0]: dalpha/de1 along it = {-a[0] ** 2:+.4f}, "
                 f"contribution {-a[0] ** 2 * g1:+.4f}",
                 f"cross reaches alpha[1]: dalpha/de1 along it = {-a[0] * a[1]:+.4f}, "
                 f"contribution {-a[0] * a[1] * g2:+.4f}",
                 f"top + mid = {a[0] * (1 - a[0]):.4f} = alpha1 (1 - alpha1) = {a[0] * (1 - a[0]):.4f}; "
                 f"times g1 = {g1:g}: {a[0] * (1 - a[0]) * g1:+.4f}",
                 f"sum of the three = {grad[0]:.4f} = dL/de1 = {grad[0]:.4f}",
                 f"dL/dm = -(dL/ds1 + dL/ds2) = -({grad[0]:.4f} + {grad[1]:.4f}) = 0.",
                 f"all 9 paths: {grad[0]:.4f} = dL/de1",
                 f"b = {exps.sum():.4f}, r = 1/b = {r:.4f}"):
        assert line in printed, line

    # shifted far past exp's overflow, the circuit still gives softmax's numbers
    shifted = out["shifted"]
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(shifted["scores"])).all()
    np.testing.assert_allclose(shifted["scores"], e + module.SHIFT)
    np.testing.assert_allclose(shifted["alpha"], a)
    np.testing.assert_allclose(shifted["grad"], grad)


def test_softmax_jacobian(tmp_path):
    module, out = run("softmax_jacobian", tmp_path)
    assert_pictures(tmp_path, "softmax_rows.png", "softmax_all.png")
    Q, K, C = (np.asarray(m, dtype=float) for m in (module.Q0, module.K0, module.C))
    assert Q.shape == (3, 2) and K.shape == (2, 3)
    eye = np.eye(3)

    rows = out["rows"]
    S = softmax(Q @ K, axis=1)
    np.testing.assert_allclose(rows["dA_dQ"], np.einsum("ir,sj->ijrs", eye, K))
    expected = np.zeros((3, 3, 3, 2))
    for i, j, d in np.ndindex(3, 3, 2):
        expected[i, j, i, d] = S[i, j] * (K[d, j] - S[i] @ K[d])
    np.testing.assert_allclose(rows["dS_dQ"], expected, atol=1e-12)
    np.testing.assert_allclose(rows["dL_dQ"], central_difference(lambda q: float(np.sum(C * softmax(q @ K))), Q),
                               atol=1e-8)
    np.testing.assert_allclose(rows["dL_dK"], central_difference(lambda k: float(np.sum(C * softmax(Q @ k))), K),
                               atol=1e-8)

    def all_nine(q, k):
        return softmax((q @ k).ravel()).reshape(3, 3)

    every = out["all"]
    S = all_nine(Q, K)
    expected = np.zeros((3, 3, 3, 2))
    for i, j, c, d in np.ndindex(3, 3, 3, 2):
        expected[i, j, c, d] = S[i, j] * ((i == c) * K[d, j] - S[c] @ K[d])
    np.testing.assert_allclose(every["dS_dQ"], expected, atol=1e-12)
    for i, j in np.ndindex(3, 3):
        numeric = central_difference(lambda q: float(all_nine(q, K)[i, j]), Q)
        np.testing.assert_allclose(every["dS_dQ"][i, j], numeric, atol=1e-8)
    np.testing.assert_allclose(every["dL_dQ"], central_difference(lambda q: float(np.sum(C * all_nine(q, K))), Q),
                               atol=1e-8)
    assert np.abs(every["as_printed"] - expected).max() > 0.1  # the answer's printed formula is not this


# -- the MLP and its paths ------------------------------------------------------------------------------


def test_mlp_paths(tmp_path):
    _, out = run("mlp_paths", tmp_path)
    assert_pictures(tmp_path, "mlp.png", "paths_w212.png", "paths_w131.png", "paths_w212_full.png",
                    "paths_w131_full.png")
    W1 = np.array([[0.1, 0.3, 0.8, -0.4], [-0.3, -0.2, 0.5, 0.5], [-0.3, 0, 0.5, 0.4], [0.2, 0.5, -0.9, 0.7]])
    W2 = np.array([[0.5, 0.8, 0.2, 0.4], [0.5, 0.2, 0.3, -0.5]])
    x = np.array([2.0, 5, 3, 3])
    y = np.array([1.0, 0])

    def forward(w1, w2):
        a1 = w1 @ x
        h1 = 1 / (1 + np.exp(-a1))
        a2 = w2 @ h1
        yhat = softmax(a2)
        return a1, h1, a2, yhat, float(np.sum((y - yhat) ** 2))

    a1, h1, a2, yhat, L = forward(W1, W2)
    for name, value in zip(("a1", "h1", "a2", "yhat", "L"), (a1, h1, a2, yhat, L)):
        np.testing.assert_allclose(out["forward"][name], value)
    # the notes' rounded values
    np.testing.assert_allclose(a1, [2.9, 1.4, 2.1, 2.3])
    np.testing.assert_allclose(yhat, [0.77, 0.23], atol=0.005)

    # hand-written backward pass
    dyhat = -2 * (y - yhat)
    softmax_jacobian = np.diag(yhat) - np.outer(yhat, yhat)  # [m, k] = dyhat_m / da2_k
    da2 = softmax_jacobian.T @ dyhat
    dW2 = np.outer(da2, h1)
    da1 = (W2.T @ da2) * h1 * (1 - h1)
    dW1 = np.outer(da1, x)
    np.testing.assert_allclose(dW1, central_difference(lambda w: forward(w, W2)[-1], W1), atol=1e-9)
    np.testing.assert_allclose(dW2, central_difference(lambda w: forward(W1, w)[-1], W2), atol=1e-9)

    w212, w131 = out["w212"], out["w131"]
    assert w212["engine"] == pytest.approx(dW2[0, 1]) and w212["finite"] == pytest.approx(dW2[0, 1], abs=1e-7)
    assert w131["engine"] == pytest.approx(dW1[2, 0]) and w131["finite"] == pytest.approx(dW1[2, 0], abs=1e-7)
    assert (w212["note"], w131["note"]) == (-0.065, 0.001595)

    # every path: W2[0,1] -> a2[0] -> yhat[m] -> L, and W1[2,0] -> a1[2] -> h1[2] -> a2[k] -> yhat[m] -> L
    expected_212 = {("W2[0,1]", "a2[0]", f"yhat[{m}]", "L"): h1[1] * softmax_jacobian[m, 0] * dyhat[m]
                    for m in range(2)}
    expected_131 = {("W1[2,0]", "a1[2]", "h1[2]", f"a2[{k}]", f"yhat[{m}]", "L"):
                    x[0] * h1[2] * (1 - h1[2]) * W2[k, 2] * softmax_jacobian[m, k] * dyhat[m]
                    for k in range(2) for m in range(2)}
    for result, expected in ((w212, expected_212), (w131, expected_131)):
        found = {tuple(nodes): contribution for nodes, _, contribution in result["paths"]}
        assert set(found) == set(expected)
        for nodes, contribution in expected.items():
            assert found[nodes] == pytest.approx(contribution)
        assert sum(found.values()) == pytest.approx(result["engine"])
    # the notes keep the paths through yhat[k] from a2[k] only: exactly half the gradient here
    assert w212["note_paths_exact"] == pytest.approx(dW2[0, 1] / 2)
    assert w131["note_paths_exact"] == pytest.approx(dW1[2, 0] / 2)
    assert w212["note"] == pytest.approx(w212["note_paths_exact"], abs=5e-4)
    assert w131["note"] == pytest.approx(w131["note_paths_exact"], abs=2e-5)


# -- explicit Jacobians against vjps --------------------------------------------------------------------


def test_jacobian_vs_vjp(tmp_path):
    _, out = run("jacobian_vs_vjp", tmp_path, "--quick")
    assert_pictures(tmp_path, "network.png")
    small = out["small"]
    v = small["values"]
    a1 = v["x"] @ v["W1"] + v["b1"]
    h1 = np.maximum(a1, 0)
    a2 = h1 @ v["W2"] + v["b2"]
    h2 = np.maximum(a2, 0)
    f = h2 @ v["W3"] + v["b3"]
    # backward with the row-vector rules of the notes' answers: dL/dh = dL/da W^T, dL/dW = h^T dL/da
    df = f - v["y"]
    grads = {"W3": h2.T @ df, "b3": df.sum(0)}
    da2 = (df @ v["W3"].T) * (a2 > 0)
    grads.update(W2=h1.T @ da2, b2=da2.sum(0))
    da1 = (da2 @ v["W2"].T) * (a1 > 0)
    grads.update(W1=v["x"].T @ da1, b1=da1.sum(0))
    for name, grad in grads.items():
        np.testing.assert_allclose(small["grads"][name], grad, atol=1e-12)
        np.testing.assert_allclose(small["by_jacobian"][name], grad, atol=1e-12)
    np.testing.assert_allclose(small["relu_jacobian"], np.diag((a1.ravel() > 0).astype(float)))

    for table in ("to_input", "to_weights"):
        rows = out[table]
        assert [r["D"] for r in rows] == [16, 32, 64]
        for row in rows:
            assert row["vjp_time"] > 0 and row["jacobian_time"] > 0
            # an explicit D x D Jacobian must have been held at some point
            assert row["jacobian_peak"] >= 8 * row["D"] ** 2
        first, last = rows[0], rows[-1]
        assert last["jacobian_peak"] / first["jacobian_peak"] > 2 * last["vjp_peak"] / first["vjp_peak"]
    inference = out["inference"]
    assert inference["same_loss"]
    assert inference["free"]["held"] < inference["retain"]["held"] / 4
    assert inference["free"]["peak"] < inference["retain"]["peak"]


# -- a trained attention head -----------------------------------------------------------------------------


def attention_loss_and_grads(X, Y, W):
    """mean((softmax(Q K^T / sqrt(d)) V Wo - Y)^2) over a batch, and its gradients, by hand."""
    Q, K, V = X @ W["Wq"], X @ W["Wk"], X @ W["Wv"]
    scale = 1 / np.sqrt(Q.shape[-1])
    A = softmax(Q @ np.swapaxes(K, -1, -2) * scale)
    H = A @ V
    out = H @ W["Wo"]
    loss = float(np.mean((out - Y) ** 2))
    dout = 2 * (out - Y) / out.size
    dH = dout @ W["Wo"].T
    dA = dH @ np.swapaxes(V, -1, -2)
    dS = A * (dA - (dA * A).sum(-1, keepdims=True)) * scale
    dQ, dK, dV = dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(A, -1, -2) @ dH

    def to_weight(d):
        return np.einsum("btf,btd->fd", X, d)

    return loss, {"Wq": to_weight(dQ), "Wk": to_weight(dK), "Wv": to_weight(dV),
                  "Wo": np.einsum("bth,bto->ho", H, dout)}


def test_attention_head(tmp_path):
    module, out = run("attention_head", tmp_path, "--quick")
    assert_pictures(tmp_path, "loss_curve.svg", "loss_curve.png", "attention_head.png")
    X, Y = out["X"], out["Y"]
    # the task: every position's target is the payload of the one marked token
    assert (X[:, :, 1].sum(axis=1) == 1).all()
    marked = X[:, :, 1].argmax(axis=1)
    np.testing.assert_array_equal(Y, np.repeat(X[np.arange(len(X)), marked, 2:][:, None], X.shape[1], axis=1))

    W = {name: value.copy() for name, value in out["start"].items()}
    _, grads = attention_loss_and_grads(X, Y, W)
    for name in W:
        def loss_of(w, name=name):
            return attention_loss_and_grads(X, Y, {**W, name: w})[0]
        np.testing.assert_allclose(grads[name], central_difference(loss_of, W[name]), atol=1e-8)

    losses = []
    for _ in range(module.QUICK_STEPS):
        loss, grads = attention_loss_and_grads(X, Y, W)
        losses.append(loss)
        W = {name: W[name] - module.LEARNING_RATE * grads[name] for name in W}
    np.testing.assert_allclose(out["losses"], losses, rtol=1e-8)
    for name in W:
        np.testing.assert_allclose(out["trained"][name], W[name], rtol=1e-8, atol=1e-12)
    assert out["test_loss"] == pytest.approx(attention_loss_and_grads(out["X_test"], out["Y_test"], W)[0])
    assert losses[-1] < losses[0] / 2


# -- partial and total derivatives ------------------------------------------------------------------------


def test_partial_vs_total(tmp_path, capsys):
    module, out = run("partial_vs_total", tmp_path)
    printed = capsys.readouterr().out
    assert_pictures(tmp_path, "partial_total_x.png", "partial_total_x_forward.png", "partial_total_t.png",
                    "partial_total_t_forward.png")

    # f(x, y(x)) = x y with y = x^2: the partial df/dx is y, the total y + x 2x = 3 x^2
    x = module.X0
    one = out["x"]
    assert one["reverse"]["partial_x"] == pytest.approx(x**2)  # the edge x -> f alone
    assert one["reverse"]["partial_y"] == pytest.approx(x)
    assert one["reverse"]["through_y"] == pytest.approx(x * 2 * x)  # (df/dy)(dy/dx), along x -> y
    assert one["reverse"]["total_x"] == pytest.approx(3 * x**2)
    assert one["reverse"]["total_y"] == pytest.approx(x)  # y feeds only f: total = partial
    assert one["finite"]["partial_x"] == pytest.approx(
        central_difference(lambda v: float(v[0] * x**2), np.array([x]))[0], rel=1e-8)
    assert one["finite"]["total_x"] == pytest.approx(
        central_difference(lambda v: float(v[0] * v[0] ** 2), np.array([x]))[0], rel=1e-8)
    assert one["forward"] == pytest.approx({"partial_x": x**2, "through_y": 2 * x * x, "dy_dx": 2 * x,
                                            "total_x": 3 * x**2})
    expected_paths = {("x", "f"): ((x**2,), x**2), ("x", "y", "f"): ((2 * x, x), 2 * x**2)}
    assert set(one["paths"]) == set(expected_paths)
    for route, (factors, product) in expected_paths.items():
        assert one["paths"][route][0] == pytest.approx(factors)
        assert one["paths"][route][1] == pytest.approx(product)

    # f(x(t), y(t)) with x = tanh(t), y = exp(t): df/dt = (df/dx)(dx/dt) + (df/dy)(dy/dt), two paths
    t = module.T0
    dx_dt, dy_dt = 1 - np.tanh(t) ** 2, np.exp(t)
    df_dx, df_dy = np.exp(t), np.tanh(t)
    total = df_dx * dx_dt + df_dy * dy_dt
    assert total == pytest.approx(central_difference(lambda v: float(np.tanh(v[0]) * np.exp(v[0])),
                                                     np.array([t]))[0], rel=1e-8)
    two = out["t"]
    assert two["reverse"]["total_t"] == pytest.approx(total)
    assert two["finite"]["total_t"] == pytest.approx(total, rel=1e-8)
    expected_paths = {("t", "x", "f"): ((dx_dt, df_dx), dx_dt * df_dx), ("t", "y", "f"): ((dy_dt, df_dy), dy_dt * df_dy)}
    assert set(two["paths"]) == set(expected_paths)
    for route, (factors, product) in expected_paths.items():
        assert two["paths"][route][0] == pytest.approx(factors)
        assert two["paths"][route][1] == pytest.approx(product)
    assert two["forward"]["total_t"] == pytest.approx(total)
    assert two["forward"]["x_f"] == pytest.approx(df_dx * dx_dt)
    assert two["forward"]["y_f"] == pytest.approx(df_dy * dy_dt)
    # no partial derivative with respect to t: t is no argument of f, and no edge t -> f carries anything
    assert two["arguments"] == ["x", "y"]
    assert two["reverse"]["edge_t_f"] is None and two["forward"]["edge_t_f"] is None
    assert "so it is undefined" in printed
    assert f"x^2 + x 2x = 3 x^2 = {3 * x**2:g}" in printed


# -- forward mode against reverse mode --------------------------------------------------------------------


def tanh_network_jacobian(x, W1, W2):
    """dy/dx of y = tanh(W2 tanh(W1 x)) by the chain rule: diag(1 - y^2) W2 diag(1 - h^2) W1."""
    h = np.tanh(W1 @ x)
    y = np.tanh(W2 @ h)
    return (1 - y**2)[:, None] * W2 @ ((1 - h**2)[:, None] * W1), h, y


def test_forward_vs_reverse(tmp_path):
    module, out = run("forward_vs_reverse", tmp_path, "--quick")
    assert_pictures(tmp_path, "path.png", "path_forward.png")
    small = out["small"]
    expected, _, _ = tanh_network_jacobian(*(small["values"][k] for k in ("x", "W1", "W2")))
    assert expected.shape == (5, 3)
    for mode in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(small[mode], expected, rtol=1e-12, atol=1e-15)
    assert small["passes"] == (3, 5)
    assert "forward mode, 3 passes" in small["auto_log"]

    base, sizes = module.QUICK_BASE, module.QUICK_SIZES
    assert [(r["n"], r["m"]) for r in out["vary_n"]] == [(n, base) for n in sizes]
    assert [(r["n"], r["m"]) for r in out["vary_m"]] == [(base, m) for m in sizes]
    for row in out["vary_n"] + out["vary_m"]:
        assert (row["forward_passes"], row["reverse_passes"]) == (row["n"], row["m"])
        assert row["agree"] and row["forward_time"] > 0 and row["reverse_time"] > 0

    # the element paths from x[0] to y[1] through each hidden unit j: W1[j,0], 1 - h_j^2, W2[1,j], 1 - y_1^2
    x, W1, W2 = (np.asarray(v, dtype=float) for v in (module.SMALL_X, module.SMALL_W1, module.SMALL_W2))
    jacobian, h, y = tanh_network_jacobian(x, W1, W2)
    expected_paths = {("x[0]", f"a1[{j}]", f"h[{j}]", "a2[1]", "y[1]"):
                      (W1[j, 0], 1 - h[j] ** 2, W2[1, j], 1 - y[1] ** 2) for j in range(3)}
    path = out["path"]
    found = {tuple(nodes): factors for nodes, factors, _ in path["paths"]}
    assert set(found) == set(expected_paths)
    for nodes, factors in expected_paths.items():
        assert found[nodes] == pytest.approx(factors)
    for nodes, factors, contribution in path["paths"]:
        assert contribution == pytest.approx(np.prod(factors))
    largest = max(expected_paths, key=lambda nodes: abs(np.prod(expected_paths[nodes])))
    assert tuple(path["chosen"]) == largest
    factors = expected_paths[largest]
    np.testing.assert_allclose(path["forward_products"], np.cumprod((1.0,) + factors))
    np.testing.assert_allclose(path["backward_products"], np.cumprod((1.0,) + factors[::-1]))
    for total in (path["path_sum"], path["tangent"], path["gradient"]):
        assert total == pytest.approx(jacobian[1, 0])


# -- the Hessian of a layer ---------------------------------------------------------------------------------


def test_hessian_of_a_layer(tmp_path):
    module, out = run("hessian_of_a_layer", tmp_path)
    assert_pictures(tmp_path, "layer_backward.png", "layer_second_order.png")
    W, b, x0, y, v = (np.asarray(m, dtype=float) for m in (module.W, module.B, module.X, module.Y, module.V))

    def gradient(x):  # of L = 0.5 sum((tanh(W x + b) - y)^2), by hand
        z = np.tanh(W @ x + b)
        return W.T @ ((z - y) * (1 - z**2))

    def loss(x):
        return l2(np.tanh(W @ x + b), y)

    np.testing.assert_allclose(gradient(x0), central_difference(loss, x0), atol=1e-9)
    # the Hessian by central differences of the hand-written gradient, column by column
    step = 1e-5
    hessian = np.stack([(gradient(x0 + step * e) - gradient(x0 - step * e)) / (2 * step) for e in np.eye(3)], axis=1)

    np.testing.assert_allclose(out["gradient"], gradient(x0), rtol=1e-12)
    np.testing.assert_allclose(out["grad_node_value"], gradient(x0), rtol=1e-12)
    for name in ("hessian", "by_hand", "central"):
        np.testing.assert_allclose(out[name], hessian, atol=1e-9)
    np.testing.assert_allclose(out["hessian"], out["hessian"].T, atol=1e-15)
    for name in ("hvp", "reverse_hvp"):
        np.testing.assert_allclose(out[name], hessian @ v, atol=1e-9)
    assert (out["torch"] is None) == (importlib.util.find_spec("torch") is None)
    if out["torch"] is not None:
        np.testing.assert_allclose(out["torch"], hessian, atol=1e-9)
    assert out["grad_node"] in out["backward_nodes"]


# -- a CNN from PyTorch trained on the 8x8 digits -----------------------------------------------------------


def test_cnn_digits(tmp_path):
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    module, out = run("cnn_digits", tmp_path, "--quick")
    assert_pictures(tmp_path, "cnn_gradients.png")

    # the data: scikit-learn's digits, scaled to [0, 1], split by the example's shuffle
    digits = datasets.load_digits()
    data = out["data"]
    assert sorted(data["order"]) == list(range(len(digits.images)))
    images, labels = digits.images[data["order"]][:, None] / 16.0, digits.target[data["order"]]
    train, test = len(data["train_images"]), len(data["test_images"])
    assert (train, test) == (module.QUICK_TRAIN_IMAGES, module.QUICK_TEST_IMAGES)
    np.testing.assert_array_equal(data["train_images"], images[:train])
    np.testing.assert_array_equal(data["train_labels"], labels[:train])
    np.testing.assert_array_equal(data["test_images"], images[-test:])
    np.testing.assert_array_equal(data["test_labels"], labels[-test:])
    assert train + test <= len(images)  # held-out digits are never trained on

    # the same training in torch: the example's network and starting weights, its minibatches, torch's own
    # loss (F.nll_loss, mean over the batch) and autograd, plain SGD by hand
    model = module.DigitsCNN().double()
    assert {name: tuple(p.shape) for name, p in model.named_parameters()} == {
        "block1.0.weight": (8, 1, 3, 3), "block1.0.bias": (8,), "block2.0.weight": (16, 8, 3, 3),
        "block2.0.bias": (16,), "head.1.weight": (10, 64), "head.1.bias": (10,)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(out["start"][name]))
    assert len(out["batches"]) == module.QUICK_STEPS
    losses = []
    for step, index in enumerate(out["batches"]):
        assert len(index) == module.BATCH and len(set(index.tolist())) == module.BATCH
        model.zero_grad()
        loss = torch.nn.functional.nll_loss(model(torch.from_numpy(data["train_images"][index])),
                                            torch.from_numpy(data["train_labels"][index]))
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            for name, p in model.named_parameters():
                np.testing.assert_allclose(out["step0_grads"][name], p.grad.numpy(), rtol=1e-9,
                                           atol=1e-9 * float(p.grad.abs().max()))
        with torch.no_grad():
            for p in model.parameters():
                p -= module.LEARNING_RATE * p.grad
    np.testing.assert_allclose(out["losses"], losses, rtol=1e-9)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(out["trained"][name], p.detach().numpy(), rtol=1e-8, atol=1e-12)
    assert out["check"]["agree"] and max(out["check"]["relative"].values()) < 1e-9

    with torch.no_grad():
        predicted = model(torch.from_numpy(data["test_images"])).argmax(dim=1).numpy()
    np.testing.assert_array_equal(out["predicted"], predicted)
    assert out["test_accuracy"] == pytest.approx(np.mean(predicted == data["test_labels"]))
    assert np.mean(losses[-10:]) < losses[0]
    assert out["test_accuracy"] > 0.25  # 40 steps on 320 digits: well above chance (0.1), far from trained


# -- a transformer block from PyTorch: its gradients and the paths they flow along ---------------------------


def test_transformer_block(tmp_path):
    torch = pytest.importorskip("torch")
    module, out = run("transformer_block", tmp_path)
    assert_pictures(tmp_path, "block_depth1.png", "block_full.png")

    # torch's own next-token loss on the example's weights, with the embedded tokens' gradient kept
    model = module.Block().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(out["weights"][name]))
    tokens = torch.tensor(module.TOKENS)
    kept = []

    def keep(_module, _inputs, embedded):  # returns None: the output is left as it is
        embedded.retain_grad()
        kept.append(embedded)

    model.embed.register_forward_hook(keep)
    log_probs = model(tokens)
    loss = torch.nn.functional.nll_loss(log_probs[:-1], tokens[1:])
    loss.backward()
    assert out["torch"]["loss"] == pytest.approx(loss.item(), rel=1e-12)
    for name, p in model.named_parameters():
        theirs = p.grad.numpy()
        np.testing.assert_allclose(out["grads"][name], theirs, rtol=1e-9, atol=1e-12)  # atol: attn.k.bias, below
    np.testing.assert_allclose(out["embedding_grad"], kept[0].grad.numpy(), rtol=1e-9, atol=1e-12)
    # the key bias moves every score of a query's row alike, which softmax ignores: no gradient
    assert np.abs(model.attn.k.bias.grad.numpy()).max() < 1e-12

    # tensor level: eight paths from embed.weight, and together they carry its whole gradient
    tensor = out["tensor"]
    embed_grad = model.embed.weight.grad.numpy()
    assert tensor["count"] == len(tensor["every"]) == 8
    np.testing.assert_allclose(sum(c for _, c in tensor["every"]), embed_grad, atol=1e-12)
    norms = sorted((np.linalg.norm(c) for _, c in tensor["every"]), reverse=True)
    assert [np.linalg.norm(c) for _, c in tensor["best"]] == pytest.approx(norms[:module.TOP_TENSOR])
    # the largest: straight up the residual stream, no layer norm, attention or MLP on the way. What it carries,
    # by hand: dL/dlogits = (softmax - next) / 5 per position, back through the unembedding, into the token rows
    nodes, direct = tensor["best"][0]
    assert not any(name.startswith(("layer_norm", "linear_", "gelu", "softmax")) for name in nodes[:4])
    probabilities = np.exp(log_probs.detach().numpy())
    targets = np.zeros((len(tokens), module.VOCAB))
    targets[np.arange(len(tokens) - 1), module.TOKENS[1:]] = 1.0
    dlogits = (probabilities - targets) * targets.sum(axis=1, keepdims=True) / (len(tokens) - 1)
    expected = np.zeros_like(embed_grad)
    np.add.at(expected, module.TOKENS, dlogits @ model.unembed.weight.detach().numpy())
    np.testing.assert_allclose(direct, expected, atol=1e-12)

    # element level: one number of token 7's embedding row; the direct paths by hand, each through one position
    # p where token 7 sits and one unembedding unit c: W_u[c, j] (delta(c, next_p) - softmax_p[c]) (-1/5)
    element = out["element"]
    row, column = element["index"]
    assert row == module.TOKEN and element["grad"] == pytest.approx(embed_grad[row, column], rel=1e-9)
    assert column == np.argmax(np.abs(embed_grad[row]))
    assert element["count"] > 10**9 and len(element["best"]) == module.TOP_ELEMENT
    W_u = model.unembed.weight.detach().numpy()
    direct_paths = {}
    for p in np.flatnonzero(np.array(module.TOKENS) == row):
        if p == len(tokens) - 1:
            continue
        target = module.TOKENS[p + 1]
        for c in range(module.VOCAB):
            direct_paths[(int(p), c)] = W_u[c, column] * ((c == target) - probabilities[p, c]) * -1 / (len(tokens) - 1)
    contributions = [contribution for _, _, contribution in element["best"]]
    assert contributions == sorted(contributions, key=abs, reverse=True)
    for nodes, factors, contribution in element["best"]:
        assert contribution == pytest.approx(np.prod(factors), rel=1e-12)
        assert nodes[0] == f"embed.weight[{row},{column}]" and nodes[-1] == "loss"
    smallest = abs(contributions[-1])
    found = {}
    for nodes, _, contribution in element["best"]:
        if len(nodes) == 9:  # embed.weight, embedding, add, add_1, unembedding, output, picked, sum, loss
            p, c = (int(i) for i in nodes[4][nodes[4].index("[") + 1:-1].split(","))
            found[(p, c)] = contribution
    assert found, "no direct path among the largest element paths"
    for key, contribution in found.items():
        assert contribution == pytest.approx(direct_paths[key], rel=1e-9)
    # top_paths is exact: every direct path larger than the smallest one shown is among those shown
    assert {key for key, value in direct_paths.items() if abs(value) > smallest * (1 + 1e-9)} <= set(found)


# -- a sweep over a Dask cluster -------------------------------------------------------------------------


def test_dask_sweep(tmp_path, monkeypatch):
    import sys

    # the worker processes unpickle train_one by its module's name, so the module must be importable
    # there: from examples/ on the path, which worker processes inherit (a script's __main__ travels by value)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "dask_sweep", raising=False)
    module = importlib.import_module("dask_sweep")
    out = module.main(["-o", str(tmp_path), "--quick"])
    assert_pictures(tmp_path, "best_run.svg")
    assert len(out["losses"]) == len(out["configs"]) == 4
    for config, loss in zip(out["configs"], out["losses"]):  # each run against the same loop run here
        g, loss_node = module.build(config["seed"])
        first = None
        for _ in range(config["steps"]):
            g.zero_grad(); g.forward(); g.backward(loss_node); g.step(config["lr"])
            first = float(loss_node.value) if first is None else first
        g.forward()
        assert loss == pytest.approx(float(loss_node.value), rel=1e-12, abs=1e-15)
        assert loss < first
    assert out["best"] == int(np.argmin(out["losses"]))
    assert out["same_gradients"] and out["edge_difference"] == 0.0
    assert "held by an executor" in out["held"]
