// The "Try it" page: draw a digit, prepare it the way MNIST's digits were prepared,
// run the trained network (cnn.js) and show its probabilities and Grad-CAM map.
// Everything runs here, in this page: no server, no network.
"use strict";

(function () {
  const page = document.getElementById("demo");
  if (!page || !window.CNN_MODEL) return;
  const net = CNN.load(window.CNN_MODEL);
  const samples = window.CNN_SAMPLES;
  const colormap = Uint8Array.from(atob(window.CNN_MODEL.colormap), function (c) { return c.charCodeAt(0); });
  const SIZE = net.inputShape[1];  // 28
  const BOX = 20;  // MNIST: the digit scaled into a 20 x 20 box, then centred by its centre of mass
  // MNIST's strokes are a few pixels wide in 28 x 28. A drawing is scaled by BOX over its size, so
  // its stroke would be as thin or as thick as the reader drew it small or large: the strokes are
  // drawn again, for the network, with a pen 1/PEN_RATIO of the size of the path it follows, which
  // after scaling is BOX / (PEN_RATIO + 1) = 2.5 px whatever the size of the drawing.
  const PEN_RATIO = 7;
  const REDRAWN = 196;  // the path's longer side when it is drawn again, in pixels

  // ------------------------------------------------------------ the preprocessing

  // Weights of an area-averaging resize from n to m samples: each output sample is the
  // mean of the input it covers, fractional overlaps included (anti-aliased).
  function areaMatrix(n, m) {
    const w = new Float64Array(m * n);
    const step = n / m;
    for (let t = 0; t < m; t++) {
      const a = t * step, b = (t + 1) * step;
      for (let s = Math.floor(a); s < Math.min(Math.ceil(b), n); s++) {
        const overlap = Math.min(b, s + 1) - Math.max(a, s);
        if (overlap > 0) w[t * n + s] = overlap / step;
      }
    }
    return w;
  }

  // ink: Float64Array of side x side in [0, 1] -> Float32Array of 28 x 28, or null if empty.
  function prepare(ink, side) {
    let top = side, bottom = -1, left = side, right = -1;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        if (ink[y * side + x] > 0.05) {
          if (y < top) top = y;
          if (y > bottom) bottom = y;
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
    }
    if (bottom < 0) return null;
    const h = bottom - top + 1, w = right - left + 1;
    const scale = BOX / Math.max(h, w);
    const th = Math.max(1, Math.round(h * scale)), tw = Math.max(1, Math.round(w * scale));
    const rows = areaMatrix(h, th), cols = areaMatrix(w, tw);
    const tmp = new Float64Array(th * w);  // rows resampled
    for (let t = 0; t < th; t++) {
      for (let s = 0; s < h; s++) {
        const r = rows[t * h + s];
        if (r === 0) continue;
        for (let x = 0; x < w; x++) tmp[t * w + x] += r * ink[(top + s) * side + left + x];
      }
    }
    const box = new Float64Array(th * tw);  // then columns
    for (let y = 0; y < th; y++) {
      for (let t = 0; t < tw; t++) {
        let sum = 0;
        for (let s = 0; s < w; s++) sum += cols[t * w + s] * tmp[y * w + s];
        box[y * tw + t] = sum;
      }
    }
    let mass = 0, cy = 0, cx = 0;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) { const v = box[y * tw + x]; mass += v; cy += v * y; cx += v * x; }
    }
    const oy = Math.round(SIZE / 2 - 0.5 - cy / mass), ox = Math.round(SIZE / 2 - 0.5 - cx / mass);
    const out = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const yy = y + oy, xx = x + ox;
        if (yy >= 0 && yy < SIZE && xx >= 0 && xx < SIZE) out[yy * SIZE + xx] = Math.min(1, box[y * tw + x]);
      }
    }
    return out;
  }

  // The reader's strokes (lists of [x, y] points on the pad) drawn again, the longer side of their
  // path scaled to REDRAWN pixels, with a pen of REDRAWN / PEN_RATIO: {ink, side} for prepare().
  function redrawn(strokes) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    strokes.forEach(function (line) {
      line.forEach(function (p) { x0 = Math.min(x0, p[0]); y0 = Math.min(y0, p[1]); x1 = Math.max(x1, p[0]); y1 = Math.max(y1, p[1]); });
    });
    const extent = Math.max(x1 - x0, y1 - y0);
    const scale = extent > 0 ? REDRAWN / extent : 1, width = REDRAWN / PEN_RATIO;
    const side = Math.ceil(REDRAWN + 2 * width);
    const at = function (p) { return [width + (p[0] - x0) * scale, width + (p[1] - y0) * scale]; };
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = side;
    const c = canvas.getContext("2d", { willReadFrequently: true });
    c.fillStyle = "#ffffff";
    c.fillRect(0, 0, side, side);
    c.strokeStyle = "#000000";
    c.lineWidth = width;
    c.lineCap = "round";
    c.lineJoin = "round";
    strokes.forEach(function (line) {
      c.beginPath();
      c.moveTo(...at(line[0]));
      // to each next point; a lone point to itself: a dot, with the round cap
      (line.length > 1 ? line.slice(1) : line).forEach(function (p) { c.lineTo(...at(p)); });
      c.stroke();
    });
    return { ink: inkOf(c, side), side: side };
  }

  // ------------------------------------------------------------ drawing

  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const view = document.getElementById("input-view");
  const camView = document.getElementById("cam-view");
  const said = document.getElementById("prediction");
  const bars = document.getElementById("bars");
  const camButtons = document.getElementById("cam-classes");
  const camNote = document.getElementById("cam-note");
  let drawing = false, last = null, pending = false, chosen = null, current = null;
  // what is on the pad: the reader's strokes, or null once a test digit is shown there (drawing on
  // it then changes that picture, which is prepared as it is)
  let strokes = [];

  function clear() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    strokes = [];
    current = null;
    chosen = null;
    const choose = document.getElementById("samples");
    if (choose) choose.value = "";  // so that picking the same test digit again loads it again
    const link = document.getElementById("demo-explore");
    if (link) link.hidden = true;
    render();
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }

  function stroke(from, to) {
    ctx.strokeStyle = "#000000";
    ctx.lineWidth = pad.width / 15;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }

  let pen = null;  // the one pointer that draws: a second finger does not join the stroke
  pad.addEventListener("pointerdown", function (e) {
    e.preventDefault();
    if (drawing) return;
    pad.setPointerCapture(e.pointerId);
    pen = e.pointerId;
    drawing = true;
    last = point(e);
    if (strokes) strokes.push([last]);
    stroke(last, last);
    schedule();
  });
  pad.addEventListener("pointermove", function (e) {
    if (!drawing || e.pointerId !== pen) return;
    e.preventDefault();
    const p = point(e);
    stroke(last, p);
    if (strokes) strokes[strokes.length - 1].push(p);
    last = p;
    schedule();
  });
  function stop(e) {
    if (e.pointerId !== pen) return;
    drawing = false; pen = null; chosen = null; schedule();
  }
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);

  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; classify(); });
  }

  function inkOf(c, side) {
    const img = c.getImageData(0, 0, side, side).data;
    const ink = new Float64Array(side * side);
    for (let i = 0; i < ink.length; i++) ink[i] = 1 - img[4 * i] / 255;  // dark ink = 1
    return ink;
  }

  // ------------------------------------------------------------ classifying and showing

  function classify() {
    // nothing drawn yet: no input; otherwise the strokes drawn again, or the picture on the pad as it is
    const drawn = !strokes ? { ink: inkOf(ctx, pad.width), side: pad.width } : strokes.length ? redrawn(strokes) : null;
    const input = drawn && prepare(drawn.ink, drawn.side);
    if (!input) { current = null; render(); return; }
    const result = CNN.forward(net, input);
    current = { input: input, result: result };
    render();
  }

  function paint(canvas, rgb) {
    const c = canvas.getContext("2d");
    const img = c.createImageData(SIZE, SIZE);
    for (let i = 0; i < SIZE * SIZE; i++) {
      img.data[4 * i] = rgb[3 * i];
      img.data[4 * i + 1] = rgb[3 * i + 1];
      img.data[4 * i + 2] = rgb[3 * i + 2];
      img.data[4 * i + 3] = 255;
    }
    c.putImageData(img, 0, 0);
  }

  // The colour channel ch of a pixel with this much ink, under a heat-map value h in [0, 1]:
  // the ink in grey, the map's colour over it, as the site's figures draw it.
  function shade(ink, h, ch) {
    const grey = 1 - 0.6 * ink, a = 0.75 * h, k = Math.min(255, Math.max(0, Math.round(h * 255)));
    return Math.round(255 * ((1 - a) * grey + a * colormap[3 * k + ch] / 255));
  }

  function overlay(input, heat) {
    const rgb = new Uint8ClampedArray(SIZE * SIZE * 3);
    for (let i = 0; i < SIZE * SIZE; i++) {
      for (let ch = 0; ch < 3; ch++) rgb[3 * i + ch] = shade(input[i], heat ? heat[i] : 0, ch);
    }
    return rgb;
  }

  function render() {
    const names = net.classes;
    if (!current) {
      said.textContent = page.dataset.prompt;
      paint(view, overlay(new Float32Array(SIZE * SIZE), null));
      paint(camView, overlay(new Float32Array(SIZE * SIZE), null));
      bars.querySelectorAll(".bar-fill").forEach(function (b) { b.style.width = "0%"; });
      bars.querySelectorAll(".bar-value").forEach(function (v) { v.textContent = ""; });
      bars.querySelectorAll("li").forEach(function (li) { li.classList.remove("top"); });
      camNote.textContent = "";
      camButtons.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      return;
    }
    const p = current.result.probabilities;
    let top = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[top]) top = k;
    said.textContent = "The network says " + names[top] + ", with " + (100 * p[top]).toFixed(1) + " % confidence.";
    bars.querySelectorAll("li").forEach(function (li, k) {
      li.classList.toggle("top", k === top);
      li.querySelector(".bar-fill").style.width = (100 * p[k]).toFixed(1) + "%";
      li.querySelector(".bar-value").textContent = (100 * p[k]).toFixed(1) + " %";
    });
    const grey = new Uint8ClampedArray(SIZE * SIZE * 3);
    for (let i = 0; i < SIZE * SIZE; i++) grey[3 * i] = grey[3 * i + 1] = grey[3 * i + 2] = Math.round(255 * (1 - current.input[i]));
    paint(view, grey);
    const c = chosen === null ? top : chosen;
    const cam = CNN.gradcam(net, current.result, c);
    paint(camView, overlay(current.input, cam.map));
    camNote.textContent = "Grad-CAM for class " + names[c] + (cam.empty ? ": no positive evidence anywhere, the map is empty." : ".");
    camButtons.querySelectorAll("button").forEach(function (b, k) { b.setAttribute("aria-pressed", String(k === c)); });
  }

  // ------------------------------------------------------------ controls

  document.getElementById("clear").addEventListener("click", clear);
  net.classes.forEach(function (name, k) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="bar-label"></span><span class="bar"><span class="bar-fill"></span></span><span class="bar-value"></span>';
    li.querySelector(".bar-label").textContent = name;
    bars.append(li);
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", function () { chosen = k; render(); });
    camButtons.append(b);
  });

  const sampleImages = Uint8Array.from(atob(samples.images), function (c) { return c.charCodeAt(0); });
  const picker = document.getElementById("samples");
  samples.indices.forEach(function (index, i) {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = "test image #" + index + " (" + net.classes[samples.labels[i]] + ")";
    picker.append(o);
  });
  picker.addEventListener("change", function () {
    if (picker.value === "") return;
    const i = Number(picker.value);
    const small = document.createElement("canvas");
    small.width = small.height = SIZE;
    const sc = small.getContext("2d");
    const img = sc.createImageData(SIZE, SIZE);
    for (let p = 0; p < SIZE * SIZE; p++) {
      const v = 255 - sampleImages[i * SIZE * SIZE + p];
      img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = v;
      img.data[4 * p + 3] = 255;
    }
    sc.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, pad.width, pad.height);  // shown in the box, scaled up
    strokes = null;
    chosen = null;
    // ...but the network gets the test image itself, as NumPy did: not the scaled-up copy prepared again
    const input = new Float32Array(SIZE * SIZE);
    for (let p = 0; p < SIZE * SIZE; p++) input[p] = sampleImages[i * SIZE * SIZE + p] / 255;
    current = { input: input, result: CNN.forward(net, input) };
    render();
    explore.href = explore.dataset.base + "#image=" + samples.indices[i];
    explore.textContent = "Test image #" + samples.indices[i] + " in the explorer, every step";
    explore.hidden = false;
  });
  const explore = document.getElementById("demo-explore");

  // The heat map's colour key: each value as the map shows it where there is no ink (over white).
  (function drawKey() {
    const key = document.getElementById("cam-key");
    if (!key) return;
    const c = key.getContext("2d"), img = c.createImageData(key.width, 1);
    for (let x = 0; x < key.width; x++) {
      for (let ch = 0; ch < 3; ch++) img.data[4 * x + ch] = shade(0, x / (key.width - 1), ch);
      img.data[4 * x + 3] = 255;
    }
    c.putImageData(img, 0, 0);
  })();

  page.hidden = false;
  document.getElementById("demo-static").hidden = true;
  clear();

  // ------------------------------------------------------------ the self-test against NumPy

  (function selfTest() {
    const out = document.getElementById("selftest");
    try {
      const camRef = CNN.decodeFloats(samples.cam), probRef = CNN.decodeFloats(samples.proba);
      const k = net.classes.length, px = SIZE * SIZE;
      let probDiff = 0, camDiff = 0, sameClass = 0;
      for (let i = 0; i < samples.count; i++) {
        const image = new Float32Array(px);
        for (let p = 0; p < px; p++) image[p] = sampleImages[i * px + p] / 255;
        const r = CNN.forward(net, image);
        let top = 0;
        for (let c = 0; c < k; c++) {
          probDiff = Math.max(probDiff, Math.abs(r.probabilities[c] - probRef[i * k + c]));
          if (r.probabilities[c] > r.probabilities[top]) top = c;
        }
        if (top === samples.pred[i]) sameClass++;
        const cam = CNN.gradcam(net, r, samples.pred[i]).map;
        for (let p = 0; p < px; p++) camDiff = Math.max(camDiff, Math.abs(cam[p] - camRef[i * px + p]));
      }
      const image = new Float32Array(px);
      for (let p = 0; p < px; p++) image[p] = sampleImages[p] / 255;
      const times = [];
      for (let run = 0; run < 40; run++) {
        const t0 = performance.now();
        const r = CNN.forward(net, image);
        CNN.gradcam(net, r, samples.pred[0]);
        times.push(performance.now() - t0);
      }
      times.splice(0, 5);  // warm-up
      times.sort(function (a, b) { return a - b; });
      const ms = times[Math.floor(times.length / 2)];
      Object.assign(out.dataset, {
        status: "done", images: String(samples.count), maxProbDiff: probDiff.toExponential(2),
        maxCamDiff: camDiff.toExponential(2), sameClass: String(sameClass), ms: ms.toFixed(2),
      });
      out.querySelector(".result").textContent =
        "On " + samples.count + " test images, this page's probabilities differ from NumPy's by at most " +
        probDiff.toExponential(1) + " and its Grad-CAM maps by at most " + camDiff.toExponential(1) +
        "; the predicted class agrees on " + sameClass + " of " + samples.count +
        ". One forward pass plus Grad-CAM took " + ms.toFixed(1) + " ms in this browser (median of 35 runs).";
    } catch (err) {
      out.dataset.status = "error";
      out.querySelector(".result").textContent = "The self-test failed: " + err;
      throw err;
    }
  })();
})();
