// The explorer: any test image, any class, any conv layer, any epoch, explained in the page by
// the JavaScript network of cnn.js. The state lives in the URL fragment
// (#image=1234&class=7&layer=conv3&epoch=4&method=gradcam), so a link opens a view and the
// browser's back and forward buttons step through the views.
"use strict";

(function () {
  const root = document.getElementById("explorer");
  if (!root || !window.CNN_MODEL || !window.CNN_TEST) return;
  const $ = function (id) { return document.getElementById(id); };
  const started = performance.now();
  const colormap = CNN.decodeBytes(window.CNN_MODEL.colormap);
  // #...&net=lab: the network the reader trained in the lab (lab.js keeps it in sessionStorage),
  // in place of the site's; it has no snapshots, so there is no epoch to choose.
  const labDoc = /(^#|&)net=lab(&|$)/.test(location.hash) ? readLab() : null;
  const final = CNN.load(labDoc || window.CNN_MODEL);
  const snapshotDocs = labDoc ? [null] : (window.CNN_SNAPSHOTS || []).concat([null]);  // null: the final network
  const EPOCHS = snapshotDocs.length - 1;
  const nets = [];  // decoded on first use
  const names = final.classes, K = names.length;
  const [C, H, W] = final.inputShape, P = H * W;
  const METHODS = { gradcam: "Grad-CAM", gradcampp: "Grad-CAM++", scorecam: "Score-CAM", saliency: "saliency",
                    smoothgrad: "SmoothGrad", "ig-black": "integrated gradients, black baseline",
                    "ig-blurred": "integrated gradients, blurred baseline", guided: "guided backpropagation",
                    "guided-gradcam": "guided Grad-CAM", occlusion: "occlusion" };
  const SETTINGS = window.CNN_MODEL.method_settings;  // the trust chapter's: IG steps, blur, SmoothGrad samples, noise
  const PER_PAGE = 50;
  let test = null;  // {pixels, labels, pred, confidence, count}
  let state = null, page = 0, cacheKey = null, cached = null;

  function readLab() {
    try { return JSON.parse(sessionStorage.getItem("cnn-lab-network")); } catch (e) { return null; }
  }

  function net(epoch) {
    if (!nets[epoch]) nets[epoch] = snapshotDocs[epoch] ? CNN.load(snapshotDocs[epoch]) : final;
    return nets[epoch];
  }

  // ------------------------------------------------------------ data

  async function unpack(doc) {
    const bytes = CNN.decodeBytes(doc.deflate);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    const raw = new Uint8Array(await new Response(stream).arrayBuffer());
    const n = doc.count, size = doc.shape.reduce(function (a, b) { return a * b; }, 1);
    let at = 0;
    const take = function (len) { const part = raw.subarray(at, at + len); at += len; return part; };
    return { count: n, pixels: take(n * size), labels: take(n), pred: take(n),
             confidence: new Float32Array(take(4 * n).slice().buffer) };
  }

  function image(i) {
    const out = new Float32Array(C * P);
    const px = test.pixels.subarray(i * C * P, (i + 1) * C * P);
    for (let j = 0; j < out.length; j++) out[j] = px[j] / 255;
    return out;
  }

  // ------------------------------------------------------------ state in the URL

  function parse(hash) {
    const q = new URLSearchParams(hash.replace(/^#/, ""));
    const int = function (key, lo, hi, fallback) {
      const v = parseInt(q.get(key), 10);
      return Number.isFinite(v) && v >= lo && v <= hi ? v : fallback;
    };
    const layer = final.convLayers.includes(q.get("layer")) ? q.get("layer") : final.gradcamLayer;
    const method = METHODS[q.get("method")] ? q.get("method") : "gradcam";
    return { image: int("image", 0, test.count - 1, 0), cls: int("class", 0, K - 1, null), layer: layer,
             epoch: int("epoch", 0, EPOCHS, EPOCHS), method: method };
  }

  function encode(s) {
    const parts = ["image=" + s.image];
    if (s.cls !== null) parts.push("class=" + s.cls);
    parts.push("layer=" + s.layer, "epoch=" + s.epoch, "method=" + s.method);
    if (labDoc) parts.push("net=lab");
    return "#" + parts.join("&");
  }

  function go(change) {
    const next = Object.assign({}, state, change);
    if ("image" in change && !("cls" in change)) next.cls = null;  // a new image: explain its prediction
    const hash = encode(next);
    if (hash === location.hash) render(); else location.hash = hash;  // hashchange renders
  }

  // ------------------------------------------------------------ drawing

  // Fill a w x h canvas pixel by pixel: colour(i, rgb, o) writes pixel i's red, green and blue
  // into rgb[o], rgb[o + 1] and rgb[o + 2] (the image's bytes, written in place: no array per
  // pixel). The canvas is resized only when its size changes (a resize clears and reallocates it).
  function paint(canvas, w, h, colour) {
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), rgb = img.data;
    for (let i = 0, o = 0; i < w * h; i++, o += 4) {
      colour(i, rgb, o);
      rgb[o + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function grey(canvas, data, w, h, hi) {  // 0 white .. hi black, as the site's figures show digits
    const top = hi || 1;
    paint(canvas, w, h, function (i, rgb, o) {
      rgb[o] = rgb[o + 1] = rgb[o + 2] = Math.round(255 * (1 - Math.min(1, data[i] / top)));
    });
  }

  function heat(canvas, data, w, h) {  // 0..1 through the site's heat colour map
    paint(canvas, w, h, function (i, rgb, o) {
      const k = 3 * Math.max(0, Math.min(255, Math.round(255 * data[i])));
      rgb[o] = colormap[k]; rgb[o + 1] = colormap[k + 1]; rgb[o + 2] = colormap[k + 2];
    });
  }

  function diverging(canvas, data, w, h, lim) {  // blue negative, white zero, red positive
    const l = lim || 1;
    paint(canvas, w, h, function (i, rgb, o) {
      const t = Math.max(-1, Math.min(1, data[i] / l)), v = Math.round(255 * (1 - Math.abs(t) * 0.85));
      rgb[o] = t >= 0 ? 255 : v; rgb[o + 1] = v; rgb[o + 2] = t >= 0 ? v : 255;
    });
  }

  function overlay(canvas, input, map) {  // the digit in grey, the map over it
    paint(canvas, W, H, function (i, rgb, o) {
      const g = 1 - 0.6 * input[i], h = map[i], a = 0.75 * h;
      const k = 3 * Math.max(0, Math.min(255, Math.round(h * 255)));
      for (let ch = 0; ch < 3; ch++) rgb[o + ch] = Math.round(255 * ((1 - a) * g + a * colormap[k + ch] / 255));
    });
  }

  function peakAbs(a) { let m = 0; for (const v of a) if (Math.abs(v) > m) m = Math.abs(v); return m; }
  function peak(a) { let m = 0; for (const v of a) if (v > m) m = v; return m; }
  const pct = function (p) { return (100 * p).toFixed(1) + " %"; };
  const fmt = function (v, d) { return (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(d === undefined ? 4 : d); };
  // a signed number short enough for a caption under a 56-pixel map, small ones in powers of ten
  const short = function (v) {
    const a = Math.abs(v);
    return (v >= 0 ? "+" : "\u2212") + (a === 0 || a >= 0.01 ? a.toFixed(3) : a.toExponential(1));
  };

  // A grid of small maps, canvases reused while the count stays the same.
  function mapGrid(el, count, label) {
    if (el.children.length !== count) {
      el.textContent = "";
      for (let k = 0; k < count; k++) {
        const fig = document.createElement("figure");
        const canvas = document.createElement("canvas");
        canvas.className = "pixelated";
        canvas.setAttribute("role", "img");
        const cap = document.createElement("figcaption");
        fig.append(canvas, cap);
        el.append(fig);
      }
    }
    return Array.from(el.children).map(function (fig, k) {
      fig.querySelector("canvas").setAttribute("aria-label", label(k));
      return fig;
    });
  }

  // ------------------------------------------------------------ the view

  function compute(s) {
    const key = [s.image, s.epoch].join("/");
    if (key !== cacheKey) {
      const x = image(s.image);
      cached = { x: x, result: CNN.forward(net(s.epoch), x), grads: {} };
      cacheKey = key;
    }
    return cached;
  }

  function render() {
    const t0 = performance.now();
    const look = weightsLook($("ex-weights"));  // before anything changes
    state = parse(location.hash);
    const s = state, network = net(s.epoch), here = compute(s);
    const p = here.result.probabilities;
    let top = 0;
    for (let k = 1; k < K; k++) if (p[k] > p[top]) top = k;
    const c = s.cls === null ? top : s.cls;
    if (!here.grads[c]) here.grads[c] = CNN.backward(network, here.result, c, false);
    const grads = here.grads[c];

    // the picker
    $("ex-index").value = s.image;
    const label = test.labels[s.image];
    const epochWords = labDoc ? "you trained in the lab (" + labDoc.trained + ")"
      : s.epoch === 0 ? "at initialisation (random weights)" : "after epoch " + s.epoch + " of " + EPOCHS;
    $("ex-summary").textContent = "Test image #" + s.image + ", labelled " + names[label] + ". The network " +
      epochWords + " says " + names[top] + " (" + pct(p[top]) + ")" + (top === label ? "." : ": wrong.");
    $("ex-epoch").value = s.epoch;
    $("ex-epoch-out").textContent = s.epoch === 0 ? "start" : String(s.epoch);
    $("ex-layer").value = s.layer;
    $("ex-method").value = s.method;
    root.querySelectorAll("input[name=ex-class]").forEach(function (r) {
      r.checked = Number(r.value) === c;
      r.parentElement.classList.toggle("top", Number(r.value) === top);
    });

    // input and probabilities
    grey($("ex-input"), here.x, W, H);
    $("ex-bars").querySelectorAll("li").forEach(function (li, k) {
      li.classList.toggle("top", k === top);
      li.querySelector(".bar-fill").style.width = (100 * p[k]).toFixed(1) + "%";
      li.querySelector(".bar-value").textContent = pct(p[k]);
    });

    // the chosen explanation
    const cam = CNN.gradcam(network, here.result, c, s.layer, grads);
    let map = cam.map, words;
    if (s.method === "saliency") {
      map = CNN.normalized(CNN.saliency(network, here.result, c, grads));
      words = "Saliency: how much the score of " + names[c] + " changes per unit change of each pixel (|dy/dx|).";
    } else if (s.method === "guided" || s.method === "guided-gradcam") {
      const g = CNN.guidedBackprop(network, here.result, c);
      if (s.method === "guided-gradcam") for (let i = 0; i < P; i++) g[i] *= cam.map[i];
      map = CNN.normalized(g);
      words = s.method === "guided" ? "Guided backpropagation: the input gradient with negative gradients stopped at every ReLU."
        : "Guided Grad-CAM: guided backpropagation times the Grad-CAM map of " + s.layer + ".";
    } else if (s.method === "gradcampp") {
      map = CNN.gradcamPlusPlus(network, here.result, c, s.layer, grads);
      words = "Grad-CAM++ of " + s.layer + " for " + names[c] + ": each position of a feature map's gradient weighted, instead of their plain average.";
    } else if (s.method === "scorecam") {
      map = CNN.scoreCam(network, here.result, c, s.layer);
      words = "Score-CAM of " + s.layer + " for " + names[c] + ": each of its " + cam.shape[0] + " feature maps used as a mask on the image, weighted by the probability of " + names[c] + " the masked image keeps (one forward pass each).";
    } else if (s.method === "smoothgrad") {
      const noise = CNN.gaussian(1 + s.image * K + c);
      map = CNN.normalized(CNN.smoothGrad(network, here.x, c, SETTINGS.samples, SETTINGS.noise, function (_, n) { return noise(n); }));
      words = "SmoothGrad: saliency averaged over " + SETTINGS.samples + " copies of the image with Gaussian noise (" + Math.round(100 * SETTINGS.noise) + " % of its range; the page draws its own noise, so the map differs a little from NumPy's).";
    } else if (s.method === "ig-black" || s.method === "ig-blurred") {
      const black = s.method === "ig-black";
      const baseline = black ? new Float32Array(here.x.length) : CNN.blur(here.x, network.inputShape, SETTINGS.sigma);
      map = CNN.normalized(CNN.integratedGradients(network, here.x, c, baseline, SETTINGS.steps).map);
      words = "Integrated gradients for " + names[c] + ": the gradient averaged over " + SETTINGS.steps + " points on the straight path from " +
        (black ? "a black image" : "the image blurred (a Gaussian of " + SETTINGS.sigma + " pixels)") + " to this one, times the difference; positive part shown.";
    } else if (s.method === "occlusion") {
      const o = CNN.occlusion(network, here.x, c);
      map = CNN.normalized(o.map(function (v) { return Math.max(v, 0); }));
      words = "Occlusion: how much the probability of " + names[c] + " drops when a 7 \u00d7 7 patch over each pixel is blanked (positive drops shown).";
    } else {
      words = "Grad-CAM of " + s.layer + " for " + names[c] + (cam.empty ? ": no positive evidence anywhere; the map is empty." : ".");
    }
    overlay($("ex-overlay"), here.x, map);
    heat($("ex-map"), map, W, H);
    $("ex-map-note").textContent = words;

    // the Grad-CAM breakdown
    const [Kc, h, w] = cam.shape;
    const where = s.layer + " (" + Kc + " maps of " + h + " \u00d7 " + w + ")";
    $("ex-layer-name").textContent = where;
    const actPeak = peak(cam.activations);
    mapGrid($("ex-features"), Kc, function (k) { return "Feature map " + k + " of " + s.layer; }).forEach(function (fig, k) {
      grey(fig.firstChild, cam.activations.subarray(k * h * w, (k + 1) * h * w), w, h, actPeak);
      fig.lastChild.textContent = String(k);
    });
    const gradLim = peakAbs(cam.gradients) || 1;
    mapGrid($("ex-gradients"), Kc, function (k) { return "Gradient of the " + names[c] + " score on map " + k; }).forEach(function (fig, k) {
      diverging(fig.firstChild, cam.gradients.subarray(k * h * w, (k + 1) * h * w), w, h, gradLim);
      fig.lastChild.textContent = "\u03b1 " + short(cam.weights[k]);
    });
    $("ex-grad-scale").textContent = "one colour scale for all maps, \u00b1" + gradLim.toExponential(2);

    const order = Array.from(cam.weights.keys()).sort(function (a, b) { return cam.weights[b] - cam.weights[a]; });
    const k0 = order[0], g0 = cam.gradients.subarray(k0 * h * w, (k0 + 1) * h * w);
    let sum = 0;
    for (const v of g0) sum += v;
    $("ex-worked").textContent = "Map " + k0 + " has the largest weight. Its " + (h * w) + " gradients add up to " +
      fmt(sum, 5) + "; divided by " + (h * w) + " that is \u03b1" + k0 + " = " + fmt(cam.weights[k0], 5) + ".";
    const table = $("ex-worked-table");
    table.textContent = "";
    if (h * w <= 49) {
      for (let i = 0; i < h; i++) {
        const tr = table.insertRow();
        for (let j = 0; j < w; j++) tr.insertCell().textContent = g0[i * w + j].toFixed(4);
      }
    }
    table.hidden = h * w > 49;
    drawWeights($("ex-weights"), cam.weights, order, look);
    $("ex-weights-note").textContent = "Largest: " + order.slice(0, 3).map(function (k) { return "map " + k + " (" + short(cam.weights[k]) + ")"; }).join(", ") +
      ". Smallest: " + order.slice(-3).reverse().map(function (k) { return "map " + k + " (" + short(cam.weights[k]) + ")"; }).join(", ") +
      ". " + cam.weights.filter(function (v) { return v > 0; }).length + " of " + Kc + " are positive.";
    const lim = peakAbs(cam.weightedSum) || 1;
    diverging($("ex-sum"), cam.weightedSum, w, h, lim);
    heat($("ex-cam"), CNN.normalized(cam.cam), w, h);
    heat($("ex-up"), cam.map, W, H);
    overlay($("ex-cam-overlay"), here.x, cam.map);
    $("ex-sum-note").textContent = "Weighted sum from " + fmt(Math.min.apply(null, cam.weightedSum), 3) + " to " +
      fmt(Math.max.apply(null, cam.weightedSum), 3) + "; the ReLU keeps the positive part" +
      (cam.empty ? ", and here nothing is positive." : ".");

    // what every layer passes on: each conv block's maps, each pooling's, the dense layer's units
    const acts = $("ex-acts");
    const blockOutputs = Object.values(network.blocks);
    const shown = network.layers.filter(function (l, i) {
      const before = network.layers[i - 1];
      return blockOutputs.includes(l.name) || l.type === "maxpool" || (l.type === "relu" && before && before.type === "dense");
    });
    if (acts.children.length !== 2 * shown.length) {
      acts.textContent = "";
      for (let n = 0; n < shown.length; n++) {
        const p = document.createElement("p"), grid = document.createElement("div");
        p.className = "ex-step"; grid.className = "ex-maps";
        acts.append(p, grid);
      }
    }
    shown.forEach(function (layer, n) {
      const A = here.result.acts[layer.name], top2 = peak(A.data);
      const block = Object.keys(network.blocks).find(function (c) { return network.blocks[c] === layer.name; });
      const title = block ? block + " (after batch norm and ReLU)" : layer.type === "maxpool" ? layer.name : "the dense layer's units (after ReLU)";
      acts.children[2 * n].textContent = title + ": " + A.shape.join(" \u00d7 ");
      if (A.shape.length === 3) {
        const [m, hh, ww] = A.shape;
        mapGrid(acts.children[2 * n + 1], m, function (k) { return title + ", map " + k; }).forEach(function (fig, k) {
          grey(fig.firstChild, A.data.subarray(k * hh * ww, (k + 1) * hh * ww), ww, hh, top2);
          fig.lastChild.textContent = String(k);
        });
      } else {
        const strip = mapGrid(acts.children[2 * n + 1], 1, function () { return title + ", " + A.data.length + " values"; })[0];
        strip.classList.add("ex-strip");
        grey(strip.firstChild, A.data, A.data.length, 1, top2);
        strip.lastChild.textContent = A.data.length + " units, white 0 to black at the largest";
      }
    });
    root.dataset.redrawMs = (performance.now() - t0).toFixed(1);
  }

  // The channel weights as horizontal bars, largest at the top, every channel named (11 px words, on
  // the page's own colours: the canvas is transparent, so it reads in light and dark mode alike).
  // look: the width it may take and the page's colours, read by weightsLook before the redraw
  // changes anything (a read after a change would make the browser lay the page out again first).
  function drawWeights(canvas, weights, order, look) {
    const n = weights.length, row = 14, left = 30, ht = n * row + 8;
    const wd = Math.max(200, Math.min(look.width || 320, 440)), ink = look.ink, muted = look.muted;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(wd * dpr); canvas.height = Math.round(ht * dpr);
    canvas.style.width = wd + "px"; canvas.style.height = ht + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, wd, ht);
    const lim = peakAbs(weights) || 1, zero = left + (wd - left) / 2, half = (wd - left) / 2 - 6;
    ctx.fillStyle = muted; ctx.fillRect(zero, 2, 1, ht - 4);
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    order.forEach(function (k, i) {
      const v = weights[k], len = (v / lim) * half, y = 4 + i * row;
      const marked = i < 3 || i >= n - 3;
      ctx.fillStyle = v >= 0 ? (marked ? "#b2182b" : "#ef8a62") : (marked ? "#2166ac" : "#67a9cf");
      const bar = [Math.min(zero, zero + len), y + 1, Math.abs(len), row - 3];
      ctx.fillRect(...bar);
      if (marked) { ctx.strokeStyle = ink; ctx.lineWidth = 1; ctx.strokeRect(...bar); }
      ctx.fillStyle = marked ? ink : muted;
      ctx.fillText(String(k), left - 6, y + row / 2);
    });
  }

  function weightsLook(canvas) {
    const style = getComputedStyle(document.body), ink = style.color;
    return { width: canvas.parentElement.clientWidth, ink: ink, muted: style.getPropertyValue("--muted").trim() || ink };
  }

  // ------------------------------------------------------------ the browser of test images

  function matches() {
    const t = $("ex-true").value, pr = $("ex-pred").value, right = $("ex-right").value, sort = $("ex-sort").value;
    const out = [];
    for (let i = 0; i < test.count; i++) {
      if (t !== "" && test.labels[i] !== Number(t)) continue;
      if (pr !== "" && test.pred[i] !== Number(pr)) continue;
      const ok = test.labels[i] === test.pred[i];
      if ((right === "right" && !ok) || (right === "wrong" && ok)) continue;
      out.push(i);
    }
    if (sort === "confident") out.sort(function (a, b) { return test.confidence[b] - test.confidence[a] || a - b; });
    if (sort === "hesitant") out.sort(function (a, b) { return test.confidence[a] - test.confidence[b] || a - b; });
    return out;
  }

  function renderGrid() {
    const list = matches(), pages = Math.max(1, Math.ceil(list.length / PER_PAGE));
    page = Math.min(page, pages - 1);
    const shown = list.slice(page * PER_PAGE, (page + 1) * PER_PAGE);
    $("ex-count").textContent = list.length.toLocaleString("en") + " test images match; page " + (page + 1) + " of " + pages + ".";
    $("ex-page-prev").disabled = page === 0;
    $("ex-page-next").disabled = page >= pages - 1;
    const grid = $("ex-grid");
    grid.textContent = "";
    for (const i of shown) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ex-thumb" + (test.labels[i] === test.pred[i] ? "" : " wrong");
      b.setAttribute("aria-label", "Test image " + i + ", labelled " + names[test.labels[i]] + ", NumPy says " +
        names[test.pred[i]] + " (" + pct(test.confidence[i]) + ")");
      const canvas = document.createElement("canvas");
      canvas.className = "pixelated";
      const px = test.pixels.subarray(i * P, (i + 1) * P);
      paint(canvas, W, H, function (j, rgb, o) { rgb[o] = rgb[o + 1] = rgb[o + 2] = 255 - px[j]; });
      const cap = document.createElement("span");
      cap.textContent = "#" + i + " " + names[test.pred[i]];
      b.append(canvas, cap);
      b.addEventListener("click", function () { go({ image: i }); $("ex-input").scrollIntoView({ block: "nearest" }); });
      grid.append(b);
    }
  }

  // ------------------------------------------------------------ controls

  function options(select, items) {
    for (const [value, text] of items) {
      const o = document.createElement("option");
      o.value = value; o.textContent = text;
      select.append(o);
    }
  }

  function setup() {
    const classItems = names.map(function (n, k) { return [String(k), n]; });
    options($("ex-true"), [["", "any label"]].concat(classItems));
    options($("ex-pred"), [["", "any answer"]].concat(classItems));
    options($("ex-layer"), final.convLayers.map(function (l) { return [l, l]; }));
    options($("ex-method"), Object.entries(METHODS));
    $("ex-epoch").max = EPOCHS;
    if (labDoc) $("ex-epoch").parentElement.hidden = true;
    const picker = $("ex-classes");
    names.forEach(function (n, k) {
      const label = document.createElement("label");
      const r = document.createElement("input");
      r.type = "radio"; r.name = "ex-class"; r.value = String(k);
      r.addEventListener("change", function () { go({ cls: k }); });
      label.append(r, " " + n);
      picker.append(label);
    });
    const bars = $("ex-bars");
    names.forEach(function (n) {
      const li = document.createElement("li");
      li.innerHTML = '<span class="bar-name"></span><span class="bar"><span class="bar-fill"></span></span><span class="bar-value"></span>';
      li.querySelector(".bar-name").textContent = n;
      bars.append(li);
    });
    $("ex-index").max = test.count - 1;
    $("ex-index").addEventListener("change", function () {
      const v = parseInt(this.value, 10);
      if (Number.isFinite(v)) go({ image: Math.max(0, Math.min(test.count - 1, v)) });
    });
    $("ex-prev").addEventListener("click", function () { go({ image: (state.image + test.count - 1) % test.count }); });
    $("ex-next").addEventListener("click", function () { go({ image: (state.image + 1) % test.count }); });
    $("ex-layer").addEventListener("change", function () { go({ layer: this.value }); });
    $("ex-method").addEventListener("change", function () { go({ method: this.value }); });
    $("ex-epoch").addEventListener("input", function () { go({ epoch: Number(this.value) }); });
    document.addEventListener("keydown", function (e) {
      const tag = (e.target.tagName || "").toLowerCase();
      if (["input", "select", "textarea"].includes(tag) || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === "ArrowLeft") { $("ex-prev").click(); e.preventDefault(); }
      if (e.key === "ArrowRight") { $("ex-next").click(); e.preventDefault(); }
    });
    ["ex-true", "ex-pred", "ex-right", "ex-sort"].forEach(function (id) {
      $(id).addEventListener("change", function () { page = 0; renderGrid(); });
    });
    $("ex-mistakes").addEventListener("click", function () {
      $("ex-true").value = ""; $("ex-pred").value = ""; $("ex-right").value = "wrong"; $("ex-sort").value = "confident";
      page = 0; renderGrid();
      const first = matches()[0];
      if (first !== undefined) go({ image: first });
    });
    $("ex-page-prev").addEventListener("click", function () { page = Math.max(0, page - 1); renderGrid(); });
    $("ex-page-next").addEventListener("click", function () { page += 1; renderGrid(); });
    window.addEventListener("hashchange", render);
  }

  // Timings for build.py's check (explorer.html?bench): redraws when the image, class, layer
  // and epoch change, the median of each, written into data attributes.
  function bench() {
    const times = { image: [], cls: [], layer: [], epoch: [], occlusion: [], scorecam: [], smoothgrad: [], ig: [] };
    const median = function (a) { const b = a.slice().sort(function (x, y) { return x - y; }); return b[Math.floor(b.length / 2)]; };
    const time = function (kind, hash) { history.replaceState(null, "", hash); const t = performance.now(); render(); times[kind].push(performance.now() - t); };
    for (let i = 0; i < 15; i++) {
      const base = { image: 17 * i + 1, cls: null, layer: final.gradcamLayer, epoch: EPOCHS, method: "gradcam" };
      time("image", encode(base));
      time("cls", encode(Object.assign({}, base, { cls: (i * 3) % K })));
      time("layer", encode(Object.assign({}, base, { cls: (i * 3) % K, layer: final.convLayers[i % final.convLayers.length] })));
      time("epoch", encode(Object.assign({}, base, { cls: (i * 3) % K, epoch: i % (EPOCHS + 1) })));
      if (i < 5) {  // the methods that take many passes
        time("occlusion", encode(Object.assign({}, base, { method: "occlusion" })));  // 64 forward passes
        time("scorecam", encode(Object.assign({}, base, { method: "scorecam" })));  // one per feature map
        time("smoothgrad", encode(Object.assign({}, base, { method: "smoothgrad" })));
        time("ig", encode(Object.assign({}, base, { method: "ig-blurred" })));
      }
    }
    for (const k in times) root.dataset["bench" + k[0].toUpperCase() + k.slice(1)] = median(times[k]).toFixed(1);
    root.dataset.bench = "done";
  }

  unpack(window.CNN_TEST).then(function (data) {
    test = data;
    root.hidden = false;
    const off = document.getElementById("explorer-static");
    if (off) off.hidden = true;
    setup();
    render();
    renderGrid();
    root.dataset.readyMs = performance.now().toFixed(0);  // since the navigation began, data unpacked
    root.dataset.unpackMs = (performance.now() - started).toFixed(0);
    root.dataset.status = "ready";
    if (new URLSearchParams(location.search).has("bench")) bench();
  }).catch(function (e) {
    root.dataset.status = "failed";
    const note = document.getElementById("explorer-static");
    if (note) note.insertAdjacentText("afterbegin", "The explorer could not start: " + e.message);
    throw e;
  });
})();
