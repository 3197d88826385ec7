// The explorer's self-test, run by build.py in headless Chromium (report/browsercheck.py):
// the page's own cnn.js, on the networks the page loads, against NumPy's answers. Not part
// of the site. For every network (epoch), image and class: the probabilities, every step of
// Grad-CAM at every conv layer, saliency and guided backpropagation; and, for the final network
// and a few images, Grad-CAM++, Score-CAM, integrated gradients and SmoothGrad. Each difference is
// measured relative to the largest magnitude of the NumPy array it belongs to (one map, or
// one image's weights), and absolutely; the largest of each kind is reported.
"use strict";

(function () {
  const out = document.getElementById("result");
  const docs = (window.CNN_SNAPSHOTS || []).concat([window.CNN_MODEL]);
  const meta = window.EXPLORER_REFERENCE;
  const differences = Differences(), compare = differences.compare;

  function load(src) {
    return new Promise(function (resolve, reject) {
      const s = document.createElement("script");
      s.src = src;
      s.onload = function () { s.remove(); resolve(); };  // a reference is let go once it is read
      s.onerror = function () { s.remove(); reject(new Error("cannot load " + src)); };
      document.head.append(s);
    });
  }

  // build.py writes each network's reference while the page checks the one before (whole, by a
  // rename): until it is there, try again every 20 ms. Returns the milliseconds spent waiting.
  async function loadWhenWritten(src) {
    const start = performance.now();
    for (;;) {
      try {
        await load(src);
        return performance.now() - start;
      } catch (e) {
        await new Promise(function (done) { setTimeout(done, 20); });
      }
    }
  }

  // Integrated gradients and SmoothGrad add up 25 or 32 gradients: at one of those points a ReLU or
  // a max pool whose input sits within rounding of a tie can send one pixel's gradient elsewhere
  // under any other rounding (NumPy in float32 and in float64 differed so), which moves a pixel or
  // two by ~1e-4 and the map as a whole by far less. Their maps are compared whole
  // (differences.compareWhole), the largest pixel reported beside.
  const compareMap = differences.compareWhole;

  // The methods that take many passes, for the first few images and the class NumPy predicts:
  // Grad-CAM++ and Score-CAM at every conv layer, integrated gradients from a black and a blurred
  // image, and SmoothGrad on NumPy's own standard normal draws.
  function methods(net, images, m) {
    const P = meta.image_size, classes = CNN.decodeFloats(m.classes), draws = CNN.decodeFloats(m.draws);
    const n = classes.length, maps = {};
    for (const kind of ["ig_black", "ig_blurred", "smoothgrad"]) maps[kind] = CNN.decodeFloats(m[kind]);
    for (let i = 0; i < n; i++) {
      const x = images.subarray(i * P, (i + 1) * P), c = classes[i], at = function (a) { return a.subarray(i * P, (i + 1) * P); };
      const result = CNN.forward(net, x);
      for (const name of net.convLayers) {
        compare("gradcampp", CNN.gradcamPlusPlus(net, result, c, name), at(CNN.decodeFloats(m.gradcampp[name])));
        compare("scorecam", CNN.scoreCam(net, result, c, name), at(CNN.decodeFloats(m.scorecam[name])));
      }
      const black = new Float32Array(P), blurred = CNN.blur(x, net.inputShape, m.sigma);
      compareMap("ig_black", CNN.integratedGradients(net, x, c, black, m.steps).map, at(maps.ig_black));
      compareMap("ig_blurred", CNN.integratedGradients(net, x, c, blurred, m.steps).map, at(maps.ig_blurred));
      const draw = function (s) { return draws.subarray((s * n + i) * P, (s * n + i + 1) * P); };
      compareMap("smoothgrad", CNN.smoothGrad(net, x, c, m.samples, m.noise, draw), at(maps.smoothgrad));
    }
  }

  async function run() {
    const t0 = performance.now();
    const n = meta.images, k = meta.classes, size = meta.image_size;
    const images = CNN.decodeFloats(meta.pixels);
    let waited = 0;
    // selftest.html?part=k&parts=P: this tab checks every P-th reference from the k-th, the
    // other tabs the rest, side by side; build.py writes them in meta.files's order
    const query = new URLSearchParams(location.search);
    const part = Number(query.get("part") || 0), parts = Number(query.get("parts") || 1);
    const mine = meta.files.filter(function (f, i) { return i % parts === part; });
    for (const [kind, e, file] of mine) {  // ["methods" or "maps", network index, reference file]
      waited += await loadWhenWritten(file);
      const ref = window.EXPLORER_REFERENCE_EPOCH;
      delete window.EXPLORER_REFERENCE_EPOCH;
      if (typeof ref !== "object") throw new Error(file + ": NumPy's side stopped before it wrote this reference");
      const net = CNN.load(docs[e]);
      if (kind === "methods") {
        methods(net, images, ref.methods);
        continue;
      }
      const probs = CNN.decodeFloats(ref.probabilities), sal = CNN.decodeFloats(ref.saliency),
            guided = CNN.decodeFloats(ref.guided);
      const layers = {};
      for (const name of net.convLayers) {
        const r = ref.layers[name];
        layers[name] = { weights: CNN.decodeFloats(r.weights), sum: CNN.decodeFloats(r.weighted_sum),
                         cam: CNN.decodeFloats(r.cam), up: CNN.decodeFloats(r.upsampled), shape: r.shape };
      }
      const P = size;
      for (let i = 0; i < n; i++) {
        const x = images.subarray(i * P, (i + 1) * P);
        const result = CNN.forward(net, x);
        compare("probabilities", result.probabilities, probs.subarray(i * k, (i + 1) * k));
        for (let c = 0; c < k; c++) {
          const pair = i * k + c;
          const grads = CNN.backward(net, result, c, false);
          for (const name of net.convLayers) {
            const r = layers[name], [K, h, w] = r.shape, hw = h * w;
            const cam = CNN.gradcam(net, result, c, name, grads);
            compare("alpha", cam.weights, r.weights.subarray(pair * K, (pair + 1) * K));
            compare("weighted_sum", cam.weightedSum, r.sum.subarray(pair * hw, (pair + 1) * hw));
            compare("cam", cam.cam, r.cam.subarray(pair * hw, (pair + 1) * hw));
            compare("upsampled", cam.upsampled, r.up.subarray(pair * P, (pair + 1) * P));
          }
          compare("saliency", CNN.saliency(net, result, c, grads), sal.subarray(pair * P, (pair + 1) * P));
          compare("guided", CNN.guidedBackprop(net, result, c), guided.subarray(pair * P, (pair + 1) * P));
        }
      }
    }
    const networks = mine.filter(function (f) { return f[0] === "maps"; }).length;
    out.textContent = JSON.stringify(Object.assign(differences.result(), { networks: networks, images: n,
                                                                           classes: k, seconds: (performance.now() - t0 - waited) / 1000 }));
    out.dataset.status = "done";
  }

  run().catch(function (e) { out.textContent = String(e && e.stack || e); out.dataset.status = "failed"; });
})();
