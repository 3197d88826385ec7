"""The losses: softmax with cross-entropy, and the mean squared error.

Softmax and cross-entropy are fused so that the gradient is simply (p - y) / N.

For logits z of one image and its label y, p = softmax(z) and
    loss = -log p_y = -z_y + log sum_k exp(z_k),
computed with the largest logit subtracted first (log-sum-exp) so that exp never
overflows. Its gradient with respect to z is p - onehot(y); averaged over a batch
of N images, (p - onehot(y)) / N.
"""

import numpy as np


def log_softmax(logits):
    """Stable log-softmax along the last axis (log-sum-exp with the max subtracted)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits: (N, K), labels: (N,)  ->  loss (float), dlogits (N, K) = (p - onehot(y)) / N
    """
    n = len(logits)
    logp = log_softmax(logits)
    rows = np.arange(n)
    loss = -logp[rows, labels].mean()
    dlogits = np.exp(logp)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(loss), dlogits


def mean_squared_error(pred, target):
    """Mean over every entry of (pred - target)^2, and its gradient.

    pred, target: same shape (N, ...)  ->  loss (float), dpred = 2 (pred - target) / pred.size
    For classification, pass target = one-hot rows (np.eye(K)[labels]).
    """
    diff = pred - target
    return float(np.mean(diff * diff)), diff * (pred.dtype.type(2) / diff.size)
