// The trained network in the browser: forward pass, softmax and Grad-CAM.
// Plain JavaScript, no dependencies, no DOM: the same computation as cnn/ in
// NumPy, on the weights build.py exported (batch norm folded into each conv).
// Arrays are flat Float32Arrays in channel, row, column order.
"use strict";

const CNN = (function () {
  function decodeFloats(b64) {
    const bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    return new Float32Array(bytes.buffer);  // little-endian, as exported
  }

  function load(doc) {
    const layers = doc.layers.map(function (l) {
      const out = Object.assign({}, l);
      if (l.weight) {
        out.weight = decodeFloats(l.weight.data);
        out.wshape = l.weight.shape;
        out.bias = decodeFloats(l.bias.data);
      }
      return out;
    });
    return { layers: layers, inputShape: doc.input_shape, classes: doc.classes, gradcamLayer: doc.gradcam_layer };
  }

  // x: [C, H, W] -> [F, H', W'], K x K kernel, stride 1, zero padding `pad`.
  function conv(x, shape, layer) {
    const [F, C, K] = layer.wshape;
    const [, H, W] = shape;
    const pad = layer.pad;
    const OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    const out = new Float32Array(F * OH * OW);
    const w = layer.weight, b = layer.bias;
    for (let f = 0; f < F; f++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let sum = b[f];
          for (let c = 0; c < C; c++) {
            for (let u = 0; u < K; u++) {
              const y = i + u - pad;
              if (y < 0 || y >= H) continue;
              const xrow = (c * H + y) * W;
              const wrow = ((f * C + c) * K + u) * K;
              for (let v = 0; v < K; v++) {
                const xx = j + v - pad;
                if (xx < 0 || xx >= W) continue;
                sum += w[wrow + v] * x[xrow + xx];
              }
            }
          }
          out[(f * OH + i) * OW + j] = sum;
        }
      }
    }
    return [out, [F, OH, OW]];
  }

  function relu(x) {
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
    return out;
  }

  function maxpool(x, shape, size, stride) {
    const [C, H, W] = shape;
    const OH = Math.floor((H - size) / stride) + 1, OW = Math.floor((W - size) / stride) + 1;
    const out = new Float32Array(C * OH * OW);
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let m = -Infinity;
          for (let u = 0; u < size; u++) {
            for (let v = 0; v < size; v++) {
              const val = x[(c * H + i * stride + u) * W + j * stride + v];
              if (val > m) m = val;
            }
          }
          out[(c * OH + i) * OW + j] = m;
        }
      }
    }
    return [out, [C, OH, OW]];
  }

  // out = x @ W + b with W of shape (in, out), as in cnn/layers.py
  function dense(x, layer) {
    const [n, m] = layer.wshape;
    const out = new Float32Array(m);
    const w = layer.weight;
    for (let j = 0; j < m; j++) out[j] = layer.bias[j];
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const row = i * m;
      for (let j = 0; j < m; j++) out[j] += xi * w[row + j];
    }
    return out;
  }

  function softmax(z) {
    let max = -Infinity;
    for (const v of z) if (v > max) max = v;
    let sum = 0;
    const p = new Float64Array(z.length);
    for (let k = 0; k < z.length; k++) { p[k] = Math.exp(z[k] - max); sum += p[k]; }
    for (let k = 0; k < z.length; k++) p[k] /= sum;
    return p;
  }

  // Run one image [1, 28, 28]; keep every layer's output by name.
  function forward(net, image) {
    let x = image, shape = net.inputShape.slice();
    const acts = {};
    for (const layer of net.layers) {
      if (layer.type === "conv") [x, shape] = conv(x, shape, layer);
      else if (layer.type === "relu") x = relu(x);
      else if (layer.type === "maxpool") [x, shape] = maxpool(x, shape, layer.size, layer.stride);
      else if (layer.type === "flatten") shape = [x.length];
      else if (layer.type === "dense") { x = dense(x, layer); shape = [x.length]; }
      acts[layer.name] = { data: x, shape: shape };
    }
    return { scores: x, probabilities: softmax(x), acts: acts };
  }

  // Bilinear resampling of an n x n map to size x size, half-pixel centres (as cnn/gradcam.py).
  function upsample(map, n, size) {
    const src = new Float64Array(size), lo = new Int32Array(size), hi = new Int32Array(size);
    for (let o = 0; o < size; o++) {
      let s = (o + 0.5) * n / size - 0.5;
      s = Math.min(Math.max(s, 0), n - 1);
      lo[o] = Math.floor(s);
      hi[o] = Math.min(lo[o] + 1, n - 1);
      src[o] = s - lo[o];
    }
    const out = new Float32Array(size * size);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const fy = src[i], fx = src[j];
        const a = map[lo[i] * n + lo[j]], b = map[lo[i] * n + hi[j]];
        const c = map[hi[i] * n + lo[j]], d = map[hi[i] * n + hi[j]];
        out[i * size + j] = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d);
      }
    }
    return out;
  }

  // Grad-CAM for class c: the gradient of score c flows back through the layers after
  // the explained one (flatten, dense, relu), then alpha_k = mean gradient of map k,
  // map = ReLU(sum_k alpha_k A^k), upsampled and divided by its maximum.
  function gradcam(net, result, c) {
    const names = net.layers.map(function (l) { return l.name; });
    const start = names.indexOf(net.gradcamLayer);
    let grad = new Float64Array(result.scores.length);
    grad[c] = 1;
    for (let li = net.layers.length - 1; li > start; li--) {
      const layer = net.layers[li];
      if (layer.type === "dense") {
        const [n, m] = layer.wshape;
        const w = layer.weight;
        const down = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          let s = 0;
          const row = i * m;
          for (let j = 0; j < m; j++) s += w[row + j] * grad[j];
          down[i] = s;
        }
        grad = down;
      } else if (layer.type === "relu") {
        const out = result.acts[layer.name].data;
        for (let i = 0; i < grad.length; i++) if (!(out[i] > 0)) grad[i] = 0;
      } else if (layer.type !== "flatten") {
        throw new Error("Grad-CAM in the browser cannot pass back through " + layer.type);
      }
    }
    const A = result.acts[net.gradcamLayer];
    const [K, H, W] = A.shape;
    const weights = new Float64Array(K);
    const cam = new Float64Array(H * W);
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let p = 0; p < H * W; p++) s += grad[k * H * W + p];
      weights[k] = s / (H * W);
      for (let p = 0; p < H * W; p++) cam[p] += weights[k] * A.data[k * H * W + p];
    }
    for (let p = 0; p < H * W; p++) if (cam[p] < 0) cam[p] = 0;
    const size = net.inputShape[1];
    const up = upsample(cam, H, size);
    let peak = 0;
    for (const v of up) if (v > peak) peak = v;
    if (peak > 0) for (let i = 0; i < up.length; i++) up[i] /= peak;
    return { map: up, weights: weights, empty: peak === 0 };
  }

  return { load: load, forward: forward, gradcam: gradcam, decodeFloats: decodeFloats };
})();
