// The lab's network, and how it learns: the same algorithms as cnn/ in NumPy, in plain
// JavaScript with no DOM, so that one function can run both in the page (its self-test) and in
// a Web Worker (the training). A worker script loaded from a file:// URL is blocked; the page
// builds its worker from LabEngine's own source text, in a Blob (see lab.js).
//
// The network: conv 3x3 (pad 1) -> [batch norm] -> ReLU -> max pool 2x2, twice, then flatten,
// dropout and one dense layer to the ten classes. Arrays are flat Float64Arrays in (image,
// channel, row, column) order; a batch of n images is n x 1 x 28 x 28.
"use strict";

function LabEngine() {
  // ------------------------------------------------------------ random numbers

  // A 32-bit mulberry generator: uniform numbers in (0, 1) from a seed.
  function uniforms(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
  }

  function normal(uniform) {  // Box-Muller
    return Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }

  // ------------------------------------------------------------ the network

  // spec: {widths: [c1, c2], batchnorm: bool, dropout: p, size: 28, classes: 10}
  function layout(spec) {
    const size = spec.size || 28, classes = spec.classes || 10, [c1, c2] = spec.widths;
    const out = [];
    let c = 1, h = size;
    [c1, c2].forEach(function (f, i) {
      out.push({ type: "conv", name: "conv" + (i + 1), C: c, F: f, H: h, W: h });
      if (spec.batchnorm) out.push({ type: "bn", name: "bn" + (i + 1), C: f, HW: h * h });
      out.push({ type: "relu", name: "relu" + (i + 1) });
      out.push({ type: "maxpool", name: "maxpool" + (i + 1), C: f, H: h, W: h });
      c = f; h = Math.floor(h / 2);
    });
    out.push({ type: "flatten", name: "flatten1" });
    out.push({ type: "dropout", name: "dropout1", p: spec.dropout || 0 });
    out.push({ type: "dense", name: "dense1", D: c * h * h, O: classes });
    return out;
  }

  // Initial weights as cnn/init.py draws them: He normal for the conv layers (each followed by a
  // ReLU), Glorot uniform for the output layer; biases and batch norm's beta 0, gamma 1. spec: as
  // layout's; the page passes its settings whole (the fields layout does not read are ignored).
  function create(spec, seed) {
    const uniform = uniforms(seed), layers = layout(spec);
    for (const L of layers) {
      L.params = {}; L.grads = {}; L.buffers = {};
      if (L.type === "conv") {
        const n = L.F * L.C * 9, std = Math.sqrt(2 / (L.C * 9));
        L.params.weight = new Float64Array(n).map(function () { return Math.fround(normal(uniform) * std); });
        if (!spec.batchnorm) L.params.bias = new Float64Array(L.F);  // batch norm's beta does a bias's job
      } else if (L.type === "bn") {
        L.params.gamma = new Float64Array(L.C).fill(1);
        L.params.beta = new Float64Array(L.C);
        L.buffers.running_mean = new Float64Array(L.C);
        L.buffers.running_var = new Float64Array(L.C).fill(1);
      } else if (L.type === "dense") {
        const limit = Math.sqrt(6 / (L.D + L.O));
        L.params.weight = new Float64Array(L.D * L.O).map(function () { return Math.fround((2 * uniform() - 1) * limit); });
        L.params.bias = new Float64Array(L.O);
      }
    }
    return { spec: spec, layers: layers, uniform: uniform };
  }

  // ------------------------------------------------------------ layers, forward and backward

  function convForward(L, x, n) {
    const C = L.C, F = L.F, H = L.H, W = L.W, HW = H * W, w = L.params.weight, b = L.params.bias;
    const out = new Float64Array(n * F * HW);
    for (let s = 0; s < n; s++) {
      for (let f = 0; f < F; f++) {
        const o = (s * F + f) * HW;
        if (b) out.fill(b[f], o, o + HW);
        for (let c = 0; c < C; c++) {
          const xo = (s * C + c) * HW;
          for (let u = 0; u < 3; u++) {
            const i0 = Math.max(0, 1 - u), i1 = Math.min(H, H + 1 - u);
            for (let v = 0; v < 3; v++) {
              const wv = w[((f * C + c) * 3 + u) * 3 + v], j0 = Math.max(0, 1 - v), j1 = Math.min(W, W + 1 - v);
              for (let i = i0; i < i1; i++) {
                const oi = o + i * W, xi = xo + (i + u - 1) * W + v - 1;
                for (let j = j0; j < j1; j++) out[oi + j] += wv * x[xi + j];
              }
            }
          }
        }
      }
    }
    L.cache = x;
    return out;
  }

  // dx[c, i+u-1, j+v-1] += w[f, c, u, v] g[f, i, j];  dw[f, c, u, v] += g[f, i, j] x[c, i+u-1, j+v-1];  db[f] += g
  function convBackward(L, g, n, needDx) {
    const C = L.C, F = L.F, H = L.H, W = L.W, HW = H * W, w = L.params.weight, x = L.cache;
    const dw = new Float64Array(w.length), db = new Float64Array(F), dx = needDx ? new Float64Array(x.length) : null;
    for (let s = 0; s < n; s++) {
      for (let f = 0; f < F; f++) {
        const go = (s * F + f) * HW;
        let sum = 0;
        for (let p = 0; p < HW; p++) sum += g[go + p];
        db[f] += sum;
        for (let c = 0; c < C; c++) {
          const xo = (s * C + c) * HW;
          for (let u = 0; u < 3; u++) {
            const i0 = Math.max(0, 1 - u), i1 = Math.min(H, H + 1 - u);
            for (let v = 0; v < 3; v++) {
              const k = ((f * C + c) * 3 + u) * 3 + v, wv = w[k], j0 = Math.max(0, 1 - v), j1 = Math.min(W, W + 1 - v);
              let acc = 0;
              for (let i = i0; i < i1; i++) {
                const gi = go + i * W, xi = xo + (i + u - 1) * W + v - 1;
                for (let j = j0; j < j1; j++) acc += g[gi + j] * x[xi + j];
                if (dx) for (let j = j0; j < j1; j++) dx[xi + j] += wv * g[gi + j];
              }
              dw[k] += acc;
            }
          }
        }
      }
    }
    L.grads.weight = dw;
    if (L.params.bias) L.grads.bias = db;
    return dx;
  }

  // Batch norm of each channel (cnn/functional.py batchnorm_forward): in training the batch's
  // mean and biased variance, and running = (1 - 0.1) running + 0.1 batch (unbiased variance);
  // in evaluation the running statistics.
  const BN_MOMENTUM = 0.1, BN_EPS = 1e-5;

  function bnForward(L, x, n, training) {
    const C = L.C, HW = L.HW, m = n * HW, out = new Float64Array(x.length);
    const mean = new Float64Array(C), rstd = new Float64Array(C), xc = new Float64Array(x.length);
    for (let c = 0; c < C; c++) {
      let mu, variance;
      if (training) {
        let s = 0;
        for (let k = 0; k < n; k++) for (let p = 0, o = (k * C + c) * HW; p < HW; p++) s += x[o + p];
        mu = s / m;
        let q = 0;
        for (let k = 0; k < n; k++) for (let p = 0, o = (k * C + c) * HW; p < HW; p++) { const d = x[o + p] - mu; q += d * d; }
        variance = q / m;
        const rm = L.buffers.running_mean, rv = L.buffers.running_var;
        rm[c] = Math.fround((1 - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * mu);
        rv[c] = Math.fround((1 - BN_MOMENTUM) * rv[c] + BN_MOMENTUM * variance * m / Math.max(m - 1, 1));
      } else {
        mu = L.buffers.running_mean[c]; variance = L.buffers.running_var[c];
      }
      mean[c] = mu; rstd[c] = 1 / Math.sqrt(variance + BN_EPS);
      const scale = L.params.gamma[c] * rstd[c], beta = L.params.beta[c];
      for (let k = 0; k < n; k++) {
        for (let p = 0, o = (k * C + c) * HW; p < HW; p++) {
          const d = x[o + p] - mu;
          xc[o + p] = d;
          out[o + p] = d * scale + beta;
        }
      }
    }
    L.cache = { xc: xc, rstd: rstd, m: m, training: training };
    return out;
  }

  // dx = gamma rstd (dout - mean(dout) - xhat mean(dout xhat)), per channel
  function bnBackward(L, g, n) {
    const C = L.C, HW = L.HW, k = L.cache, dx = new Float64Array(g.length);
    const dgamma = new Float64Array(C), dbeta = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let sb = 0, sg = 0;
      for (let s = 0; s < n; s++) for (let p = 0, o = (s * C + c) * HW; p < HW; p++) { sb += g[o + p]; sg += g[o + p] * k.xc[o + p]; }
      dbeta[c] = sb; dgamma[c] = sg * k.rstd[c];
      const scale = L.params.gamma[c] * k.rstd[c];
      const a = k.training ? scale * k.rstd[c] * dgamma[c] / k.m : 0, b = k.training ? scale * sb / k.m : 0;
      for (let s = 0; s < n; s++) for (let p = 0, o = (s * C + c) * HW; p < HW; p++) dx[o + p] = g[o + p] * scale - k.xc[o + p] * a - b;
    }
    L.grads.gamma = dgamma; L.grads.beta = dbeta;
    return dx;
  }

  function reluForward(L, x) {
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
    L.cache = out;
    return out;
  }

  function reluBackward(L, g) {
    const dx = new Float64Array(g.length), out = L.cache;
    for (let i = 0; i < g.length; i++) if (out[i] > 0) dx[i] = g[i];
    return dx;
  }

  // 2x2 windows, stride 2; the gradient goes back to each window's first maximum in row-major
  // order, as cnn/functional.py routes it.
  function poolForward(L, x, n) {
    const C = L.C, H = L.H, W = L.W, OH = H >> 1, OW = W >> 1;
    const out = new Float64Array(n * C * OH * OW), from = new Int32Array(out.length);
    let k = 0;
    for (let sc = 0; sc < n * C; sc++) {
      const o = sc * H * W;
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++, k++) {
          let best = o + 2 * i * W + 2 * j, value = x[best];
          for (const d of [1, W, W + 1]) {
            const at = o + 2 * i * W + 2 * j + d;
            if (x[at] > value) { value = x[at]; best = at; }
          }
          out[k] = value; from[k] = best;
        }
      }
    }
    L.cache = { from: from, size: x.length };
    return out;
  }

  function poolBackward(L, g) {
    const dx = new Float64Array(L.cache.size), from = L.cache.from;
    for (let k = 0; k < g.length; k++) dx[from[k]] += g[k];
    return dx;
  }

  // Inverted dropout (cnn/layers.py Dropout): keep a value where uniform >= p, scaled by 1/(1-p)
  // in float32. mask: the 0/1 keep mask to use instead of drawing one (the self-test's).
  function dropoutForward(L, x, n, training, uniform, mask) {
    if (!training || L.p === 0) { L.cache = null; return x; }
    const scale = Math.fround(1 / (1 - L.p)), keep = new Float64Array(x.length), out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      keep[i] = (mask ? mask[i] : uniform() >= L.p) ? scale : 0;
      out[i] = x[i] * keep[i];
    }
    L.cache = keep;
    return out;
  }

  function dropoutBackward(L, g) {
    if (!L.cache) return g;
    const dx = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) dx[i] = g[i] * L.cache[i];
    return dx;
  }

  function denseForward(L, x, n) {
    const D = L.D, O = L.O, w = L.params.weight, b = L.params.bias, out = new Float64Array(n * O);
    for (let s = 0; s < n; s++) {
      const xo = s * D, oo = s * O;
      for (let o = 0; o < O; o++) out[oo + o] = b[o];
      for (let d = 0; d < D; d++) {
        const xv = x[xo + d];
        if (xv === 0) continue;
        const wo = d * O;
        for (let o = 0; o < O; o++) out[oo + o] += xv * w[wo + o];
      }
    }
    L.cache = x;
    return out;
  }

  function denseBackward(L, g, n) {
    const D = L.D, O = L.O, w = L.params.weight, x = L.cache;
    const dw = new Float64Array(w.length), db = new Float64Array(O), dx = new Float64Array(n * D);
    for (let s = 0; s < n; s++) {
      const xo = s * D, go = s * O;
      for (let o = 0; o < O; o++) db[o] += g[go + o];
      for (let d = 0; d < D; d++) {
        const xv = x[xo + d], wo = d * O;
        let acc = 0;
        for (let o = 0; o < O; o++) { dw[wo + o] += xv * g[go + o]; acc += w[wo + o] * g[go + o]; }
        dx[xo + d] = acc;
      }
    }
    L.grads.weight = dw; L.grads.bias = db;
    return dx;
  }

  // The scores of n images; training: batch statistics and dropout. masks: {layer name: keep mask}.
  function forward(net, x, n, training, masks) {
    let a = x;
    for (const L of net.layers) {
      if (L.type === "conv") a = convForward(L, a, n);
      else if (L.type === "bn") a = bnForward(L, a, n, training);
      else if (L.type === "relu") a = reluForward(L, a);
      else if (L.type === "maxpool") a = poolForward(L, a, n);
      else if (L.type === "dropout") a = dropoutForward(L, a, n, training, net.uniform, masks && masks[L.name]);
      else if (L.type === "dense") a = denseForward(L, a, n);
    }
    return a;
  }

  function backward(net, g, n) {
    for (let i = net.layers.length - 1; i >= 0; i--) {
      const L = net.layers[i];
      if (L.type === "conv") g = convBackward(L, g, n, i > 0);
      else if (L.type === "bn") g = bnBackward(L, g, n);
      else if (L.type === "relu") g = reluBackward(L, g);
      else if (L.type === "maxpool") g = poolBackward(L, g);
      else if (L.type === "dropout") g = dropoutBackward(L, g);
      else if (L.type === "dense") g = denseBackward(L, g, n);
    }
  }

  // Softmax cross-entropy, mean over the batch (cnn/losses.py): the loss, d loss / d scores, and
  // how many of the batch the scores got right.
  function softmaxCrossEntropy(scores, labels, n, k) {
    const grad = new Float64Array(scores.length);
    let loss = 0, correct = 0;
    for (let s = 0; s < n; s++) {
      const o = s * k;
      let top = 0, max = -Infinity;
      for (let c = 0; c < k; c++) if (scores[o + c] > max) { max = scores[o + c]; top = c; }
      let sum = 0;
      for (let c = 0; c < k; c++) { grad[o + c] = Math.exp(scores[o + c] - max); sum += grad[o + c]; }
      loss -= scores[o + labels[s]] - max - Math.log(sum);
      for (let c = 0; c < k; c++) grad[o + c] = (grad[o + c] / sum - (c === labels[s] ? 1 : 0)) / n;
      if (top === labels[s]) correct++;
    }
    return { loss: loss / n, grad: grad, correct: correct };
  }

  // ------------------------------------------------------------ optimisers (cnn/optim.py)

  function parameters(net) {
    const out = [];
    for (const L of net.layers) for (const name in L.params) out.push({ key: L.name + "." + name, p: L.params[name], g: L.grads[name] });
    return out;
  }

  // SGD: w <- w - lr g; with momentum m: v <- m v + g, w <- w - lr v.
  function sgd(lr, momentum) {
    const velocity = {};
    return {
      lr: lr,
      step: function (net) {
        for (const { key, p, g } of parameters(net)) {
          if (momentum) {
            const v = velocity[key] || (velocity[key] = new Float64Array(p.length));
            for (let i = 0; i < p.length; i++) { v[i] = Math.fround(momentum * v[i] + g[i]); p[i] = Math.fround(p[i] - this.lr * v[i]); }
          } else {
            for (let i = 0; i < p.length; i++) p[i] = Math.fround(p[i] - this.lr * g[i]);
          }
        }
      },
    };
  }

  // Adam with bias correction: m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
  // w <- w - (lr / (1 - b1^t)) m / (sqrt(v / (1 - b2^t)) + eps).
  function adam(lr, b1, b2, eps) {
    b1 = b1 || 0.9; b2 = b2 || 0.999; eps = eps || 1e-8;
    const m = {}, v = {};
    let t = 0;
    return {
      lr: lr,
      step: function (net) {
        t += 1;
        const c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(b2, t);
        for (const { key, p, g } of parameters(net)) {
          const mk = m[key] || (m[key] = new Float64Array(p.length)), vk = v[key] || (v[key] = new Float64Array(p.length));
          for (let i = 0; i < p.length; i++) {
            mk[i] = Math.fround(b1 * mk[i] + (1 - b1) * g[i]);
            vk[i] = Math.fround(b2 * vk[i] + (1 - b2) * g[i] * g[i]);
            p[i] = Math.fround(p[i] - (this.lr / c1) * mk[i] / (Math.sqrt(vk[i] / c2) + eps));
          }
        }
      },
    };
  }

  function optimizer(kind, lr) {
    if (kind === "adam") return adam(lr);
    if (kind === "momentum") return sgd(lr, 0.9);
    return sgd(lr, 0);
  }

  // The learning rate of each epoch, as cnn/optim.py's schedules, applied per epoch: "constant", or
  // "cosine", annealed from lr in the first epoch towards 0: lr (1 + cos(pi e / epochs)) / 2 in epoch e
  // (counted from 0), so the last epoch still learns, slowly.
  function schedule(kind, lr, epochs) {
    if (kind === "cosine") return function (e) { return lr * (1 + Math.cos(Math.PI * e / epochs)) / 2; };
    return function () { return lr; };
  }

  // One step on a batch: forward in training mode, loss, backward, update.
  function trainStep(net, opt, x, labels, n, masks) {
    const scores = forward(net, x, n, true, masks);
    const r = softmaxCrossEntropy(scores, labels, n, net.layers[net.layers.length - 1].O);
    backward(net, r.grad, n);
    opt.step(net);
    return r;
  }

  // Accuracy and confusion matrix (rows: true class) on images in evaluation mode, `batch` at a time.
  function evaluate(net, images, labels, count, batch) {
    batch = batch || 100;
    const size = images.length / count, k = net.layers[net.layers.length - 1].O;
    const confusion = new Array(k * k).fill(0);
    let correct = 0;
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const x = new Float64Array(images.subarray(start * size, (start + n) * size));
      const scores = forward(net, x, n, false);
      for (let s = 0; s < n; s++) {
        let top = 0;
        for (let c = 1; c < k; c++) if (scores[s * k + c] > scores[s * k + top]) top = c;
        confusion[labels[start + s] * k + top] += 1;
        if (top === labels[start + s]) correct++;
      }
    }
    return { accuracy: correct / count, confusion: confusion };
  }

  function state(net) {
    const out = {};
    for (const L of net.layers) {
      for (const name in L.params) out[L.name + "." + name] = L.params[name];
      for (const name in L.buffers) out[L.name + "." + name] = L.buffers[name];
    }
    return out;
  }

  function setState(net, values) {
    for (const L of net.layers) {
      for (const group of [L.params, L.buffers]) {
        for (const name in group) {
          const v = values[L.name + "." + name];
          if (!v || v.length !== group[name].length) throw new Error("no fitting values for " + L.name + "." + name);
          group[name].set(v);
        }
      }
    }
  }

  // The first layer's kernels, as the page draws them: their weights, kernel after kernel, and how many.
  function kernels(net) {
    const L = net.layers[0];
    return { weights: Array.from(L.params.weight), count: L.F };
  }

  return { uniforms: uniforms, layout: layout, create: create, forward: forward, backward: backward,
           softmaxCrossEntropy: softmaxCrossEntropy, optimizer: optimizer, schedule: schedule, trainStep: trainStep,
           evaluate: evaluate, state: state, setState: setState, kernels: kernels };
}
