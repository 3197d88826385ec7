// The trained network in the browser: forward and backward passes, softmax, and the
// explanations -- Grad-CAM with every step, saliency, guided backpropagation, guided
// Grad-CAM and occlusion. Plain JavaScript, no dependencies, no DOM: the same
// computations as cnn/ in NumPy (cnn/model.py, cnn/gradcam.py, cnn/attribution.py), on
// the weights build.py exported (batch norm folded into each conv). Arrays are flat
// typed arrays in channel, row, column order.
"use strict";

const CNN = (function () {
  // ------------------------------------------------------------ weights

  function decodeBytes(b64) {
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  // IEEE half precision -> number (sign, 5-bit exponent, 10-bit fraction).
  function halfToFloat(h) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    if (exp === 0) return sign * frac * Math.pow(2, -24);  // subnormal
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
  }

  // base64 of little-endian float32 or float16 values -> Float32Array
  function decodeFloats(b64, dtype) {
    const bytes = decodeBytes(b64);
    if (dtype !== "float16") return new Float32Array(bytes.buffer);
    const halves = new Uint16Array(bytes.buffer), out = new Float32Array(halves.length);
    for (let i = 0; i < halves.length; i++) out[i] = halfToFloat(halves[i]);
    return out;
  }

  // The block output of each conv layer, as block_outputs in cnn/gradcam.py: the last layer
  // after the conv (its ReLU) before a pooling, flatten or dense layer.
  function blockOutputs(layers) {
    const out = {};
    let current = null;
    for (const layer of layers) {
      if (layer.type === "conv") current = layer.name;
      else if (["maxpool", "flatten", "dense"].includes(layer.type)) current = null;
      if (current !== null) out[current] = layer.name;
    }
    return out;
  }

  function load(doc) {
    const layers = doc.layers.map(function (l) {
      const out = Object.assign({}, l);
      if (l.weight) {
        out.weight = decodeFloats(l.weight.data, l.weight.dtype);
        out.wshape = l.weight.shape;
        out.bias = decodeFloats(l.bias.data, l.bias.dtype);
      }
      return out;
    });
    const blocks = blockOutputs(layers);
    const convs = Object.keys(blocks);
    return { layers: layers, inputShape: doc.input_shape, classes: doc.classes, blocks: blocks,
             convLayers: convs, gradcamLayer: doc.gradcam_layer };
  }

  // ------------------------------------------------------------ forward

  // The weights of a conv layer [F, C, K, K] rearranged so that the innermost loops of conv and
  // convBackward read them in order: byInput [C, K, K, F], byOutput [F, K, K, C]. Made once per layer.
  function arranged(layer) {
    if (!layer.byInput) {
      const [F, C, K] = layer.wshape, w = layer.weight, KK = K * K;
      layer.byInput = new Float32Array(w.length);
      layer.byOutput = new Float32Array(w.length);
      for (let f = 0; f < F; f++)
        for (let c = 0; c < C; c++)
          for (let k = 0; k < KK; k++) {
            const value = w[(f * C + c) * KK + k];
            layer.byInput[(c * KK + k) * F + f] = value;
            layer.byOutput[(f * KK + k) * C + c] = value;
          }
    }
    return layer;
  }

  // sums kept [position, channel] as a new Type array in [channel, position] order
  function channelsFirst(sums, positions, channels, Type) {
    const out = new Type(positions * channels);
    for (let at = 0; at < positions; at++)
      for (let ch = 0; ch < channels; ch++) out[ch * positions + at] = sums[at * channels + ch];
    return out;
  }

  // acc[at .. at + n) += a * w[wat .. wat + n): the innermost loop of conv and convBackward.
  // Four sums a turn: each sum gets the same additions in the same order as one at a time (the
  // same numbers), with a quarter of the loop's own work. Measured here: the backward pass about
  // 10 % faster in Chromium 156, forward and backward 25-35 % faster in Node 20's older V8.
  function addScaled(acc, at, w, wat, a, n) {
    let i = 0;
    for (; i + 3 < n; i += 4) {
      acc[at + i] += w[wat + i] * a; acc[at + i + 1] += w[wat + i + 1] * a;
      acc[at + i + 2] += w[wat + i + 2] * a; acc[at + i + 3] += w[wat + i + 3] * a;
    }
    for (; i < n; i++) acc[at + i] += w[wat + i] * a;
  }

  // x: [C, H, W] -> [F, H', W'], K x K kernel, stride 1, zero padding `pad`.
  // Written input by input: each nonzero input pixel adds its contribution to the outputs
  // whose windows cover it, out[f, y - u + pad, x - v + pad] += w[f, c, u, v] * x[c, y, x].
  // After a ReLU most inputs are zero, and they cost nothing. The sums are kept in double
  // precision, position by position with the F channels side by side (so the innermost loop
  // reads the weights and writes the sums in order), then stored as float32 [F, H', W'].
  function conv(x, shape, layer) {
    const [F, C, K] = layer.wshape;
    const [, H, W] = shape;
    const pad = layer.pad;
    const OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, OHW = OH * OW, KK = K * K;
    const acc = new Float64Array(OHW * F);  // [position, f]
    const w = arranged(layer).byInput, b = layer.bias;
    for (let at = 0; at < OHW; at++) for (let f = 0; f < F; f++) acc[at * F + f] = b[f];
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        const u0 = Math.max(0, y + pad - OH + 1), u1 = Math.min(K, y + pad + 1);  // output row y - u + pad inside
        for (let xx = 0; xx < W; xx++) {
          const value = x[(c * H + y) * W + xx];
          if (value === 0) continue;
          const v0 = Math.max(0, xx + pad - OW + 1), v1 = Math.min(K, xx + pad + 1);
          for (let u = u0; u < u1; u++) {
            for (let v = v0; v < v1; v++) {
              const at = ((y - u + pad) * OW + xx - v + pad) * F, wat = ((c * K + u) * K + v) * F;
              addScaled(acc, at, w, wat, value, F);
            }
          }
        }
      }
    }
    return [channelsFirst(acc, OHW, F, Float32Array), [F, OH, OW]];
  }

  function relu(x) {
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
    return out;
  }

  // Max over size x size windows; `from` records where each maximum was (its first position in
  // row-major order, as cnn/functional.py routes the gradient), for the backward pass.
  function maxpool(x, shape, size, stride) {
    const [C, H, W] = shape;
    const OH = Math.floor((H - size) / stride) + 1, OW = Math.floor((W - size) / stride) + 1;
    const out = new Float32Array(C * OH * OW), from = new Int32Array(C * OH * OW);
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let m = -Infinity, at = -1;
          for (let u = 0; u < size; u++) {
            for (let v = 0; v < size; v++) {
              const k = (c * H + i * stride + u) * W + j * stride + v;
              if (x[k] > m) { m = x[k]; at = k; }
            }
          }
          out[(c * OH + i) * OW + j] = m;
          from[(c * OH + i) * OW + j] = at;
        }
      }
    }
    return [out, [C, OH, OW], from];
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

  // Run one image [C, H, W]; keep every layer's output by name (and the input).
  function forward(net, image) {
    let x = image, shape = net.inputShape.slice(), from = null;
    const acts = {};
    for (const layer of net.layers) {
      if (layer.type === "conv") [x, shape] = conv(x, shape, layer);
      else if (layer.type === "relu") x = relu(x);
      else if (layer.type === "maxpool") [x, shape, from] = maxpool(x, shape, layer.size, layer.stride);
      else if (layer.type === "flatten") shape = [x.length];
      else if (layer.type === "dense") { x = dense(x, layer); shape = [x.length]; }
      acts[layer.name] = { data: x, shape: shape, from: layer.type === "maxpool" ? from : null };
    }
    return { input: image, scores: x, probabilities: softmax(x), acts: acts };
  }

  // ------------------------------------------------------------ backward

  // dx = dout @ W^T for out = x @ W + b
  function denseBackward(g, layer) {
    const [n, m] = layer.wshape;
    const w = layer.weight, dx = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * m;
      for (let j = 0; j < m; j++) s += w[row + j] * g[j];
      dx[i] = s;
    }
    return dx;
  }

  // Only where the ReLU passed its input on; guided backpropagation also blocks negative gradients.
  function reluBackward(g, out, guided) {
    const dx = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) if (out[i] > 0 && (!guided || g[i] > 0)) dx[i] = g[i];
    return dx;
  }

  // Each window's gradient goes to the input that was its maximum (recorded by the forward pass).
  function maxpoolBackward(g, input, from) {
    const dx = new Float64Array(input.data.length);
    for (let k = 0; k < g.length; k++) dx[from[k]] += g[k];
    return dx;
  }

  // dx of a stride-1 convolution: every output gradient spreads back over the window it read,
  // dx[c, i + u - pad, j + v - pad] += w[f, c, u, v] * g[f, i, j]. The innermost loop runs over
  // the input channels, the longest loop in the later layers, with the sums kept position by
  // position and the C channels side by side (weights and sums read in order), then [C, H, W].
  function convBackward(g, inShape, layer) {
    const [F, C, K] = layer.wshape;
    const [, H, W] = inShape;
    const pad = layer.pad, OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    const w = arranged(layer).byOutput, HW = H * W, acc = new Float64Array(HW * C);  // [position, c]
    for (let f = 0; f < F; f++) {
      for (let i = 0; i < OH; i++) {
        const u0 = Math.max(0, pad - i), u1 = Math.min(K, H + pad - i);
        for (let j = 0; j < OW; j++) {
          const gv = g[(f * OH + i) * OW + j];
          if (gv === 0) continue;
          const v0 = Math.max(0, pad - j), v1 = Math.min(K, W + pad - j);
          for (let u = u0; u < u1; u++) {
            for (let v = v0; v < v1; v++) {
              const at = ((i + u - pad) * W + j + v - pad) * C, wat = ((f * K + u) * K + v) * C;
              addScaled(acc, at, w, wat, gv, C);
            }
          }
        }
      }
    }
    return channelsFirst(acc, HW, C, Float64Array);
  }

  // The gradient of the score of class c (before the softmax) at every layer's output, and at
  // the input, as Sequential.backward_all: grads[name] is d score / d (output of that layer).
  // guided: guided backpropagation's rule at every ReLU. stopAt: a layer name; the pass stops
  // once it has that layer's gradient (Grad-CAM of a late layer needs no more).
  function backward(net, result, c, guided, stopAt) {
    const grads = {};
    let g = new Float64Array(result.scores.length);
    g[c] = 1;
    for (let li = net.layers.length - 1; li >= 0; li--) {
      const layer = net.layers[li];
      grads[layer.name] = g;
      if (layer.name === stopAt) return grads;
      const below = li > 0 ? result.acts[net.layers[li - 1].name] : { data: result.input, shape: net.inputShape };
      if (layer.type === "dense") g = denseBackward(g, layer);
      else if (layer.type === "relu") g = reluBackward(g, result.acts[layer.name].data, guided);
      else if (layer.type === "maxpool") g = maxpoolBackward(g, below, result.acts[layer.name].from);
      else if (layer.type === "conv") g = convBackward(g, below.shape, layer);
      else if (layer.type !== "flatten") throw new Error("no backward pass for " + layer.type);
    }
    grads.input = g;
    return grads;
  }

  // ------------------------------------------------------------ explanations

  // Bilinear resampling of an n x m map to rows x cols, half-pixel centres (as cnn/gradcam.py).
  function bilinear(size, n) {
    const src = new Float64Array(size), lo = new Int32Array(size), hi = new Int32Array(size);
    for (let o = 0; o < size; o++) {
      let s = (o + 0.5) * n / size - 0.5;
      s = Math.min(Math.max(s, 0), n - 1);
      lo[o] = Math.floor(s);
      hi[o] = Math.min(lo[o] + 1, n - 1);
      src[o] = s - lo[o];
    }
    return { frac: src, lo: lo, hi: hi };
  }

  function upsample(map, n, m, rows, cols) {
    const r = bilinear(rows, n), q = bilinear(cols, m);
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const fy = r.frac[i], fx = q.frac[j];
        const a = map[r.lo[i] * m + q.lo[j]], b = map[r.lo[i] * m + q.hi[j]];
        const c = map[r.hi[i] * m + q.lo[j]], d = map[r.hi[i] * m + q.hi[j]];
        out[i * cols + j] = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d);
      }
    }
    return out;
  }

  function normalized(map) {
    let peak = 0;
    for (const v of map) if (v > peak) peak = v;
    const out = new Float64Array(map.length);
    if (peak > 0) for (let i = 0; i < map.length; i++) out[i] = map[i] / peak;
    return out;
  }

  // Grad-CAM of class c at a conv layer, every step (cnn/gradcam.py):
  //   alpha_k = mean of d y^c / d A^k,  weightedSum = sum_k alpha_k A^k,  cam = ReLU(weightedSum),
  //   then upsampled to the input's size and divided by its maximum (map).
  // grads: from backward() for class c, if already computed (they reach every layer).
  function gradcam(net, result, c, convLayer, grads) {
    convLayer = convLayer || net.gradcamLayer;
    const block = net.blocks[convLayer];
    grads = grads || backward(net, result, c, false, block);
    const A = result.acts[block], G = grads[block];
    const [K, H, W] = A.shape, P = H * W;
    const weights = new Float64Array(K), weightedSum = new Float64Array(P), cam = new Float64Array(P);
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let p = 0; p < P; p++) s += G[k * P + p];
      weights[k] = s / P;
      for (let p = 0; p < P; p++) weightedSum[p] += weights[k] * A.data[k * P + p];
    }
    for (let p = 0; p < P; p++) cam[p] = weightedSum[p] > 0 ? weightedSum[p] : 0;
    const [, rows, cols] = net.inputShape;
    const up = upsample(cam, H, W, rows, cols);
    const map = normalized(up);
    return { layer: convLayer, block: block, activations: A.data, gradients: G, shape: [K, H, W],
             weights: weights, weightedSum: weightedSum, cam: cam, upsampled: up, map: map,
             empty: map.every(function (v) { return v === 0; }) };
  }

  // |d y^c / d x|, the largest over input channels (saliency, cnn/attribution.py).
  // guided: guided backpropagation's positive part instead. grads: backward()'s, if at hand.
  function inputMap(net, result, c, guided, grads) {
    const g = (grads || backward(net, result, c, guided)).input;
    const [C, H, W] = net.inputShape, P = H * W;
    const out = new Float64Array(P).fill(guided ? 0 : -Infinity);
    for (let ch = 0; ch < C; ch++) {
      for (let p = 0; p < P; p++) {
        const v = guided ? Math.max(g[ch * P + p], 0) : Math.abs(g[ch * P + p]);
        if (v > out[p]) out[p] = v;
      }
    }
    return out;
  }

  function saliency(net, result, c, grads) { return inputMap(net, result, c, false, grads); }
  function guidedBackprop(net, result, c) { return inputMap(net, result, c, true); }

  // Window starts 0, stride, 2 stride, ... up to the first window that reaches the border.
  function windowStarts(size, patch, stride) {
    const last = Math.ceil(Math.max(size - patch, 0) / stride), starts = [];
    for (let i = 0; i <= last; i++) starts.push(i * stride);
    return starts;
  }

  // The drop in the probability of class c when a patch x patch square is blanked, averaged
  // per pixel over the patches covering it (occlusion in cnn/attribution.py).
  function occlusion(net, image, c, patch, stride) {
    patch = patch || 7; stride = stride || 3;
    const [C, H, W] = net.inputShape, P = H * W;
    const base = forward(net, image).probabilities[c];
    const sum = new Float64Array(P), count = new Float64Array(P);
    for (const y0 of windowStarts(H, patch, stride)) {
      for (const x0 of windowStarts(W, patch, stride)) {
        const x = Float32Array.from(image);
        let changed = false;
        for (let ch = 0; ch < C; ch++)
          for (let y = y0; y < Math.min(y0 + patch, H); y++)
            for (let xx = x0; xx < Math.min(x0 + patch, W); xx++) {
              if (x[ch * P + y * W + xx] !== 0) changed = true;
              x[ch * P + y * W + xx] = 0;
            }
        // a patch over black pixels only leaves the image as it is: no drop, and no pass through the network
        const drop = changed ? base - forward(net, x).probabilities[c] : 0;
        for (let y = y0; y < Math.min(y0 + patch, H); y++)
          for (let xx = x0; xx < Math.min(x0 + patch, W); xx++) { sum[y * W + xx] += drop; count[y * W + xx] += 1; }
      }
    }
    for (let p = 0; p < P; p++) sum[p] /= count[p];
    return sum;
  }

  // Grad-CAM++ of class c at a conv layer (grad_cam_plus_plus in cnn/attribution.py): with
  // g = d y^c / d A^k, each position's weight a = g^2 / (2 g^2 + sum_ab A_ab g^3) (0 where g = 0),
  // w_k = sum_ij a_ij ReLU(g_ij), and the map ReLU(sum_k w_k A^k), upsampled, divided by its maximum.
  function gradcamPlusPlus(net, result, c, convLayer, grads) {
    const cam = gradcam(net, result, c, convLayer, grads);  // for the activations and their gradients
    const [K, H, W] = cam.shape, P = H * W, A = cam.activations, G = cam.gradients;
    const sum = new Float64Array(P);
    for (let k = 0; k < K; k++) {
      let total = 0, wk = 0;
      for (let p = 0; p < P; p++) total += A[k * P + p];
      for (let p = 0; p < P; p++) {
        const g = G[k * P + p];
        if (g === 0) continue;
        const g2 = g * g, d = 2 * g2 + total * g2 * g;
        if (g > 0) wk += (d !== 0 ? g2 / d : g2) * g;  // a zero denominator divides by 1, as NumPy's does
      }
      for (let p = 0; p < P; p++) sum[p] += wk * A[k * P + p];
    }
    for (let p = 0; p < P; p++) if (!(sum[p] > 0)) sum[p] = 0;
    const [, rows, cols] = net.inputShape;
    return normalized(upsample(sum, H, W, rows, cols));
  }

  // Score-CAM of class c at a conv layer (score_cam in cnn/attribution.py): each feature map,
  // upsampled to the input and scaled to [0, 1], masks the input; the probability of c that the
  // masked image keeps is the map's score; the weights are the softmax of the scores, the map
  // ReLU(sum_k w_k A^k), upsampled and divided by its maximum. One forward pass per feature map.
  function scoreCam(net, result, c, convLayer) {
    const A = result.acts[net.blocks[convLayer]];
    const [K, h, w] = A.shape, hw = h * w;
    const [C, H, W] = net.inputShape, P = H * W;
    const scores = new Float64Array(K), masked = new Float32Array(C * P);
    for (let k = 0; k < K; k++) {
      const up = upsample(A.data.subarray(k * hw, (k + 1) * hw), h, w, H, W);
      let lo = Infinity, hi = -Infinity;
      for (const v of up) { if (v < lo) lo = v; if (v > hi) hi = v; }
      for (let ch = 0; ch < C; ch++)
        for (let p = 0; p < P; p++)
          masked[ch * P + p] = result.input[ch * P + p] * (hi > lo ? Math.fround((up[p] - lo) / (hi - lo)) : 0);
      scores[k] = forward(net, masked).probabilities[c];
    }
    const weights = softmax(scores), sum = new Float64Array(hw);
    for (let k = 0; k < K; k++) for (let p = 0; p < hw; p++) sum[p] += weights[k] * A.data[k * hw + p];
    for (let p = 0; p < hw; p++) if (!(sum[p] > 0)) sum[p] = 0;
    return normalized(upsample(sum, h, w, H, W));
  }

  // The image blurred by a Gaussian of sigma pixels, each axis in turn, edges repeated: the
  // blurred baseline of integrated gradients (blur in cnn/attribution.py).
  function blur(image, shape, sigma) {
    const [C, H, W] = shape, r = Math.ceil(3 * sigma), kernel = [];
    let total = 0;
    for (let t = -r; t <= r; t++) { kernel.push(Math.exp(-t * t / (2 * sigma * sigma))); total += kernel[kernel.length - 1]; }
    for (let i = 0; i < kernel.length; i++) kernel[i] /= total;
    const clamp = function (v, n) { return Math.min(Math.max(v, 0), n - 1); };
    const rows = new Float64Array(C * H * W), out = new Float32Array(C * H * W);
    for (let ch = 0; ch < C; ch++) {
      const o = ch * H * W;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          let s = 0;
          for (let i = 0; i < kernel.length; i++) s += kernel[i] * image[o + clamp(y + i - r, H) * W + x];
          rows[o + y * W + x] = s;
        }
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          let s = 0;
          for (let i = 0; i < kernel.length; i++) s += kernel[i] * rows[o + y * W + clamp(x + i - r, W)];
          out[o + y * W + x] = s;
        }
    }
    return out;
  }

  // Integrated gradients of class c from a baseline image (integrated_gradients in
  // cnn/attribution.py): the gradient averaged at the midpoints of `steps` equal pieces of the
  // straight path from the baseline to the image, times (image - baseline). Returns the
  // attributions [C, H, W] and the map: their positive part, summed over the channels.
  function integratedGradients(net, image, c, baseline, steps) {
    const n = image.length, total = new Float64Array(n), point = new Float32Array(n);
    for (let s = 0; s < steps; s++) {
      const t = Math.fround((s + 0.5) / steps);
      for (let i = 0; i < n; i++) point[i] = baseline[i] + Math.fround(t * Math.fround(image[i] - baseline[i]));
      const g = backward(net, forward(net, point), c, false).input;
      for (let i = 0; i < n; i++) total[i] += g[i];
    }
    const attributions = new Float64Array(n);
    for (let i = 0; i < n; i++) attributions[i] = (image[i] - baseline[i]) * total[i] / steps;
    const [C, H, W] = net.inputShape, P = H * W, map = new Float64Array(P);
    for (let ch = 0; ch < C; ch++) for (let p = 0; p < P; p++) map[p] += attributions[ch * P + p];
    for (let p = 0; p < P; p++) if (!(map[p] > 0)) map[p] = 0;
    return { attributions: attributions, map: map };
  }

  // Standard normal numbers from a seed: a 32-bit mulberry generator and the Box-Muller
  // transform. The page's SmoothGrad draws its noise from it, so that a view looks the same
  // every time it is opened; NumPy draws its own (the self-test hands the page NumPy's draws).
  function gaussian(seed) {
    let a = seed >>> 0;
    const uniform = function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
    return function (n) {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i += 2) {
        const r = Math.sqrt(-2 * Math.log(uniform())), th = 2 * Math.PI * uniform();
        out[i] = r * Math.cos(th);
        if (i + 1 < n) out[i + 1] = r * Math.sin(th);
      }
      return out;
    };
  }

  // SmoothGrad of class c (smoothgrad in cnn/attribution.py): saliency averaged over `samples`
  // noisy copies of the image, the noise Gaussian with a standard deviation of `noise` times the
  // image's range of values. draw(s, n): the s-th sample's n standard normal numbers.
  function smoothGrad(net, image, c, samples, noise, draw) {
    let lo = Infinity, hi = -Infinity;
    for (const v of image) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const spread = Math.fround(noise * (hi - lo)), n = image.length, noisy = new Float32Array(n);
    const total = new Float64Array(net.inputShape[1] * net.inputShape[2]);
    for (let s = 0; s < samples; s++) {
      const eps = draw(s, n);
      for (let i = 0; i < n; i++) noisy[i] = image[i] + Math.fround(Math.fround(eps[i]) * spread);
      const map = saliency(net, forward(net, noisy), c);
      for (let p = 0; p < total.length; p++) total[p] += map[p];
    }
    for (let p = 0; p < total.length; p++) total[p] /= samples;
    return total;
  }

  return { load: load, forward: forward, backward: backward, gradcam: gradcam, saliency: saliency,
           guidedBackprop: guidedBackprop, occlusion: occlusion, upsample: upsample, normalized: normalized,
           gradcamPlusPlus: gradcamPlusPlus, scoreCam: scoreCam, blur: blur,
           integratedGradients: integratedGradients, gaussian: gaussian, smoothGrad: smoothGrad,
           decodeFloats: decodeFloats, decodeBytes: decodeBytes };
})();
