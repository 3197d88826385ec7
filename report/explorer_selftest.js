// The explorer's self-test, run by build.py in headless Chromium (report/browsercheck.py),
// which calls explorerCheck for each of NumPy's references and then explorerResult: the page's
// own cnn.js, on the networks the page loads, against NumPy's answers. Not part of the site.
// For every network (epoch), image and class: the probabilities, every step of
// Grad-CAM at every conv layer, saliency and guided backpropagation; and, for the final network
// and a few images, Grad-CAM++, Score-CAM, integrated gradients and SmoothGrad. Each difference is
// measured relative to the largest magnitude of the NumPy array it belongs to (one map, or
// one image's weights), and absolutely; the largest of each kind is reported.
"use strict";

(function () {
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

  const n = meta.images, k = meta.classes, size = meta.image_size;
  const images = CNN.decodeFloats(meta.pixels);
  let checked = 0, busy = 0;

  // build.py (report/browsercheck.py) hands each tab one reference at a time, as soon as NumPy has
  // written it, to whichever tab is free: kind "methods" or "maps", the network's index in the
  // page's list, and the reference's file. The promise settles when it is checked.
  window.explorerCheck = async function (kind, e, file) {
    await load(file);
    const t0 = performance.now();
    const ref = window.EXPLORER_REFERENCE_EPOCH;
    delete window.EXPLORER_REFERENCE_EPOCH;
    const net = CNN.load(docs[e]);
    if (kind === "methods") methods(net, images, ref.methods);
    else {
      checkMaps(net, ref);
      checked += 1;
    }
    busy += performance.now() - t0;
  };

  // What this tab found: the largest differences of each kind, how many comparisons and networks,
  // and the seconds it spent checking (loading the references left out).
  window.explorerResult = function () {
    return JSON.stringify(Object.assign(differences.result(), { networks: checked, images: n, classes: k,
                                                                seconds: busy / 1000 }));
  };

  // Every step of Grad-CAM at every conv layer, saliency and guided backpropagation, for every
  // image and class, under one network.
  function checkMaps(net, ref) {
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
})();
