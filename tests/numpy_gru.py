"""Hand-written NumPy GRUs (float64) for the tests: the equations of shared/params.py,
one time step at a time, and central finite differences of their mean cross-entropy."""
import numpy as np

from shared import params as P
from shared.protocol import make_impl


def mean_cross_entropy(logits: np.ndarray, Y: np.ndarray) -> float:
  """mean over (T*B) of -log softmax(logits)[y], y = Y.T flattened."""
  y = np.asarray(Y).T.reshape(-1)
  z = logits.astype(np.float64)
  z = z - z.max(axis=1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return float(-logp[np.arange(len(y)), y].mean())


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def scratch(p, X, H):
  """d2l's scratch model. X int (B, T), H (B, h) -> logits (T*B, V), H."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  outputs = []
  for x in np.asarray(X).T:                       # x (B,): W[x] is one-hot(x) @ W
    Z = sigmoid(p["W_xz"][x] + H @ p["W_hz"] + p["b_z"])
    R = sigmoid(p["W_xr"][x] + H @ p["W_hr"] + p["b_r"])
    H_tilda = np.tanh(p["W_xh"][x] + (R * H) @ p["W_hh"] + p["b_h"])
    H = Z * H + (1 - Z) * H_tilda
    outputs.append(H @ p["W_hq"] + p["b_q"])
  return np.concatenate(outputs), H


def builtin(p, X, H):
  """torch.nn.GRU's equations, six biases. X int (B, T), H (B, h) -> logits (T*B, V), H."""
  p = {k: np.asarray(v, np.float64) for k, v in p.items()}
  outputs = []
  for x in np.asarray(X).T:
    r = sigmoid(p["W_ir"][x] + p["b_ir"] + H @ p["W_hr"] + p["b_hr"])
    z = sigmoid(p["W_iz"][x] + p["b_iz"] + H @ p["W_hz"] + p["b_hz"])
    n = np.tanh(p["W_in"][x] + p["b_in"] + r * (H @ p["W_hn"] + p["b_hn"]))
    H = (1 - z) * n + z * H
    outputs.append(H @ p["W_hq"] + p["b_q"])
  return np.concatenate(outputs), H


MODELS = {"scratch": scratch, "builtin": builtin}


def zeros_state(X, p):
  return np.zeros((len(X), p["W_hq"].shape[0]))


def finite_diff(model, p, X, Y, name, index, eps=1e-6) -> float:
  """d loss / d p[name][index] by central differences in float64."""
  def loss(delta):
    q = {k: np.array(v, np.float64) for k, v in p.items()}
    q[name][index] += delta
    return mean_cross_entropy(model(q, X, zeros_state(X, q))[0], Y)
  return (loss(eps) - loss(-eps)) / (2 * eps)


def random_params(layout_shapes: dict, rng, scale=0.5) -> dict:
  """Random float32 parameters large enough that every gate and bias matters."""
  return {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in layout_shapes.items()}


def random_impl(name, config, seed=0, scale=0.5):
  """(impl, params): implementation `name` on the CPU with random_params set."""
  impl = make_impl(name, config, "cpu")
  shapes = P.shapes(impl.layout, config.vocab_size, config.num_hiddens)
  p = random_params(shapes, np.random.default_rng(seed), scale)
  impl.set_params(p)  # flax-grucell folds the six biases: the same function
  return impl, p
