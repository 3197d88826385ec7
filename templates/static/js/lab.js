// The lab: the reader sets the hyperparameters, and a network learns in the page, in a Web
// Worker so that the page stays responsive. The worker is built from the source text of
// LabEngine (lab-engine.js) and of labWorker below, in a Blob: a worker script loaded from a
// file:// URL is blocked, a Blob worker is not. The data (window.CNN_LAB, lab-data.js) is
// unpacked with the browser's DecompressionStream, like the explorer's.
"use strict";

// ------------------------------------------------------------ the worker

// Runs in the worker: trains on the batches of one job, reports every ~100 ms, evaluates on
// the validation images every `evalEvery` batches (never if 0), and on the test images at the end.
// A job with `seconds` (build.py's measurement) stops when it has trained that long, if its epochs
// have not ended first: the time counts training steps only, not the evaluations.
function labWorker() {
  const E = LabEngine();
  // A loss this high means the network gives the right class a probability below e^-50: it has
  // exploded (it starts near ln 10 = 2.3). Past it, training stops and the page says why.
  const EXPLODED = 50;
  let job = null, paused = false;

  function images(split, from, n, order) {
    const size = split.size, x = new Float64Array(n * size), y = new Array(n);
    for (let s = 0; s < n; s++) {
      const i = order ? order[from + s] : from + s;
      for (let p = 0; p < size; p++) x[s * size + p] = Math.fround(split.pixels[i * size + p] / 255);
      y[s] = split.labels[i];
    }
    return { x: x, y: y };
  }

  function floatImages(split) {
    const out = new Float32Array(split.count * split.size);
    for (let i = 0; i < out.length; i++) out[i] = split.pixels[i] / 255;
    return out;
  }

  function shuffle(n, uniform) {  // Fisher-Yates with the seed's generator
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(uniform() * (i + 1)), t = order[i];
      order[i] = order[j]; order[j] = t;
    }
    return order;
  }

  function start(m) {
    const s = m.settings, net = E.create(s, s.seed);
    job = { s: s, net: net, opt: E.optimizer(s.optimizer, s.lr), rate: E.schedule(s.schedule, s.lr, s.epochs),
            train: m.train, validation: m.validation,
            test: m.test, validationFloats: m.evalEvery ? floatImages(m.validation) : null, testFloats: floatImages(m.test),
            epoch: 0, at: 0, step: 0, seen: 0, order: null, uniform: E.uniforms(s.seed + 7919),
            limit: m.seconds ? 1000 * m.seconds : null,
            computing: 0, evalEvery: m.evalEvery, count: Math.min(s.train, m.train.count) };
    postMessage({ type: "kernels", kernels: E.kernels(net) });
    if (job.evalEvery) evaluate("validation");
  }

  function evaluate(which) {
    const split = which === "test" ? job.test : job.validation;
    const r = E.evaluate(job.net, which === "test" ? job.testFloats : job.validationFloats, split.labels, split.count);
    postMessage({ type: which, seen: job.seen, step: job.step, accuracy: r.accuracy, confusion: r.confusion,
                  kernels: E.kernels(job.net) });
  }

  function finish(reason) {
    evaluate("test");
    postMessage({ type: "done", reason: reason, seen: job.seen, step: job.step, seconds: job.computing / 1000,
                  imagesPerSecond: job.seen / (job.computing / 1000), state: E.state(job.net) });
    job = null;
  }

  function loop() {
    if (!job || paused) return;
    const t0 = performance.now(), losses = [];
    while (performance.now() - t0 < 100) {
      if (job.order === null || job.at >= job.count) {
        if (job.order !== null) job.epoch += 1;
        if (job.epoch >= job.s.epochs) { job.computing += performance.now() - t0; postProgress(losses); finish("epochs"); return; }
        job.order = shuffle(job.count, job.uniform);
        job.at = 0;
        job.opt.lr = job.rate(job.epoch);
      }
      const n = Math.min(job.s.batch, job.count - job.at);
      const b = images(job.train, job.at, n, job.order);
      const r = E.trainStep(job.net, job.opt, b.x, b.y, n);
      job.at += n; job.seen += n; job.step += 1;
      losses.push(r.loss);
      if (!Number.isFinite(r.loss) || r.loss > EXPLODED) {
        job.computing += performance.now() - t0;
        postProgress(losses);
        postMessage({ type: "diverged", step: job.step, seen: job.seen, loss: r.loss });
        job = null;
        return;
      }
      if (job.evalEvery && job.step % job.evalEvery === 0) { job.computing += performance.now() - t0; postProgress(losses); evaluate("validation"); setTimeout(loop, 0); return; }
      if (job.limit && job.computing + performance.now() - t0 >= job.limit) { job.computing += performance.now() - t0; postProgress(losses); finish("time"); return; }
    }
    job.computing += performance.now() - t0;
    postProgress(losses);
    setTimeout(loop, 0);  // let the pause, resume and stop messages in
  }

  function postProgress(losses) {
    postMessage({ type: "progress", losses: losses, step: job.step, seen: job.seen, epoch: job.epoch, lr: job.opt.lr,
                  imagesPerSecond: job.seen / (job.computing / 1000) });
  }

  onmessage = function (e) {
    const m = e.data;
    if (m.type === "start") { paused = false; start(m); setTimeout(loop, 0); }
    else if (m.type === "pause") paused = true;
    else if (m.type === "resume") { if (paused) { paused = false; setTimeout(loop, 0); } }
  };
}

// ------------------------------------------------------------ the page

(function () {
  const root = document.getElementById("lab");
  if (!root) return;
  const $ = function (id) { return document.getElementById(id); };
  const LAB = window.CNN_LAB, D = LAB.defaults, names = LAB.classes, K = names.length;
  const WIDTHS = { "4-8": [4, 8], "8-16": [8, 16], "16-32": [16, 32] };
  let data = null, worker = null, state = "idle", run = null, compare = false;
  const engine = LabEngine();  // the engine the worker runs: here, for the kernels a run starts from

  async function unpack(doc) {
    const text = atob(doc.deflate), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    const raw = new Uint8Array(await new Response(stream).arrayBuffer());
    const size = doc.shape.reduce(function (a, b) { return a * b; }, 1);
    return { count: doc.count, size: size, pixels: raw.subarray(0, doc.count * size), labels: raw.slice(doc.count * size) };
  }

  // ---- the controls

  function lrFromSlider(v) { return Math.pow(10, Number(v)); }
  function fmtLr(lr) { return lr >= 0.01 ? String(Number(lr.toPrecision(2))) : lr.toExponential(0); }

  function settings() {
    return { lr: lrFromSlider($("lab-lr").value), optimizer: $("lab-opt").value, batch: Number($("lab-batch").value),
             epochs: Number($("lab-epochs").value), schedule: $("lab-schedule").value, train: Number($("lab-train").value),
             batchnorm: $("lab-bn").checked,
             dropout: Number($("lab-dropout").value), widths: WIDTHS[$("lab-widths").value],
             seed: Math.max(0, Math.floor(Number($("lab-seed").value) || 0)) };
  }

  function apply(s) {
    $("lab-lr").value = Math.log10(s.lr).toFixed(2);
    $("lab-opt").value = s.optimizer;
    $("lab-batch").value = String(s.batch);
    $("lab-epochs").value = String(s.epochs);
    $("lab-schedule").value = s.schedule;
    $("lab-train").value = String(s.train);
    $("lab-bn").checked = s.batchnorm;
    $("lab-dropout").value = String(s.dropout);
    $("lab-widths").value = s.widths.join("-");
    $("lab-seed").value = String(s.seed);
    showLr();
  }

  function trainingImages(s) { return Math.min(s.train, data.train.count); }  // the images a run of s trains on
  function planned(s) { return trainingImages(s) * s.epochs; }  // the images a run of s will show

  function showLr() { $("lab-lr-out").textContent = fmtLr(lrFromSlider($("lab-lr").value)); }

  function fill(select, values, label) {
    for (const v of values) {
      const o = document.createElement("option");
      o.value = String(v); o.textContent = label ? label(v) : String(v);
      select.append(o);
    }
  }

  // ---- drawing

  function colour(name) { return getComputedStyle(root).getPropertyValue(name).trim() || "#333"; }

  function chart(canvas, series, xmax, ymax, ylabel, log) {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 320, h = canvas.clientHeight || 180;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 40, bottom = 22, top = 8, right = 8, pw = w - left - right, ph = h - top - bottom;
    const ink = colour("--lab-ink");
    g.strokeStyle = ink; g.fillStyle = ink; g.lineWidth = 1; g.font = "11px system-ui, sans-serif";
    g.beginPath(); g.moveTo(left, top); g.lineTo(left, top + ph); g.lineTo(left + pw, top + ph); g.stroke();
    const ylo = log ? Math.log10(0.01) : 0, yhi = log ? Math.log10(ymax) : ymax;
    const Y = function (v) { const t = log ? Math.log10(Math.max(v, 0.01)) : v; return top + ph * (1 - (Math.min(t, yhi) - ylo) / (yhi - ylo)); };
    const X = function (v) { return left + pw * Math.min(v / xmax, 1); };
    g.textAlign = "right";
    const ticks = log ? [0.01, 0.1, 1, 10].filter(function (v) { return v <= ymax; }) : [0, 0.25, 0.5, 0.75, 1].map(function (v) { return v * ymax; });
    for (const t of ticks) { g.fillText(log ? String(t) : (100 * t / (ymax > 1 ? 100 : 1)).toFixed(0) + (ymax > 1 ? "" : " %"), left - 4, Y(t) + 4); }
    g.textAlign = "center";
    g.fillText("images seen: 0 to " + Math.round(xmax).toLocaleString("en"), left + pw / 2, h - 6);
    canvas.setAttribute("aria-label", ylabel + " against images seen, 0 to " + Math.round(xmax).toLocaleString("en"));
    for (const s of series) {
      if (!s.points.length) continue;
      g.strokeStyle = s.colour; g.lineWidth = s.width || 1.5; g.setLineDash(s.dash || []);
      g.beginPath();
      s.points.forEach(function (p, i) { const x = X(p[0]), y = Y(p[1]); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
      g.stroke();
      g.setLineDash([]);
      if (s.dots) for (const p of s.points) { g.beginPath(); g.arc(X(p[0]), Y(p[1]), 2.5, 0, 2 * Math.PI); g.fillStyle = s.colour; g.fill(); }
    }
  }

  // The charts of the run, or before one (run null) their axes over the images the settings will
  // show the network, with the NumPy run's curves if "compare" is on.
  function drawCharts() {
    const xmax = Math.max(run ? Math.max(run.planned, run.seen) : planned(settings()), 1);
    const loss = [{ points: run ? run.loss : [], colour: colour("--lab-line"), width: 1 }];
    const acc = [{ points: run ? run.accuracy : [], colour: colour("--lab-line"), dots: true }];
    if (compare) {
      const n = LAB.numpy, per = n.train;
      loss.push({ points: n.steps.map(function (s) { return [s[0] * per, s[1]]; }).filter(function (p) { return p[0] <= xmax; }),
                  colour: colour("--lab-numpy"), width: 2, dash: [5, 3] });
      acc.push({ points: n.epochs.map(function (e) { return [e[0] * per, e[1]]; }).filter(function (p) { return p[0] <= xmax; }),
                 colour: colour("--lab-numpy"), dash: [5, 3], dots: true });
    }
    chart($("lab-loss"), loss, xmax, 4, "training loss (log scale)", true);
    chart($("lab-acc"), acc, xmax, 1, "validation accuracy", false);
  }

  function drawKernels(k) {
    const box = $("lab-kernels");
    const lim = k.weights.reduce(function (m, v) { return Math.max(m, Math.abs(v)); }, 0) || 1;
    while (box.children.length < k.count) {
      const c = document.createElement("canvas");
      c.width = 3; c.height = 3; c.className = "pixelated";
      c.setAttribute("role", "img");
      box.append(c);
    }
    while (box.children.length > k.count) box.lastChild.remove();
    Array.from(box.children).forEach(function (c, f) {
      const g = c.getContext("2d"), img = g.createImageData(3, 3);
      for (let p = 0; p < 9; p++) {
        const v = k.weights[f * 9 + p] / lim;  // blue negative, red positive, white 0
        img.data[4 * p] = v > 0 ? 255 : Math.round(255 * (1 + v));
        img.data[4 * p + 1] = Math.round(255 * (1 - Math.abs(v)));
        img.data[4 * p + 2] = v < 0 ? 255 : Math.round(255 * (1 - v));
        img.data[4 * p + 3] = 255;
      }
      g.putImageData(img, 0, 0);
      c.setAttribute("aria-label", "Kernel " + f + " of conv1, largest weight " + (Math.max.apply(null, k.weights.slice(f * 9, f * 9 + 9))).toFixed(2));
    });
    root.dataset.kernelDraws = String(Number(root.dataset.kernelDraws || 0) + 1);
  }

  function drawConfusion(m, caption) {
    const t = $("lab-confusion");
    t.textContent = "";
    const head = t.createTHead().insertRow();
    const corner = Object.assign(document.createElement("th"), { scope: "col" });
    corner.append(Object.assign(document.createElement("span"), { className: "visually-hidden", textContent: "true class, by the network's answer" }));
    head.append(corner);
    for (const n of names) head.append(Object.assign(document.createElement("th"), { textContent: n, scope: "col" }));
    const body = t.createTBody();
    let peak = 0;
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (i !== j) peak = Math.max(peak, m[i * K + j]);
    for (let i = 0; i < K; i++) {
      const row = body.insertRow();
      row.append(Object.assign(document.createElement("th"), { textContent: names[i], scope: "row" }));
      for (let j = 0; j < K; j++) {
        const cell = row.insertCell(), v = m[i * K + j];
        cell.textContent = String(v);
        if (i === j) cell.className = "diag";
        else if (v > 0) cell.style.setProperty("--lab-err", (0.15 + 0.6 * v / (peak || 1)).toFixed(2));
      }
    }
    $("lab-confusion-note").textContent = caption + " Rows: the true class; columns: the network's answer.";
  }

  function say(text) { $("lab-status").textContent = text; }

  // Before Start, and after Reset: the empty charts, and the first layer's kernels as the settings'
  // seed and widths draw them -- where the training will start from.
  function preview() {
    if (state !== "idle") return;
    const s = settings();
    drawKernels(engine.kernels(engine.create(s, s.seed)));
    drawCharts();
  }

  // The reader's network as the explorer loads a network (trained-model.js's format): each batch
  // norm folded into the conv before it, as cnn.model.fold_batchnorm does, weights in float32.
  function explorerDoc(state, s, trained) {
    const tensor = function (values, shape) {
      const bytes = new Uint8Array(Float32Array.from(values).buffer);
      let text = "";
      for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
      return { data: btoa(text), dtype: "float32", shape: shape };
    };
    const layers = [];
    let c = 1;
    s.widths.forEach(function (f, i) {
      const n = i + 1, w = Float64Array.from(state["conv" + n + ".weight"]);
      const b = state["conv" + n + ".bias"] ? Float64Array.from(state["conv" + n + ".bias"]) : new Float64Array(f);
      if (s.batchnorm) {
        const g = state["bn" + n + ".gamma"], beta = state["bn" + n + ".beta"];
        const rm = state["bn" + n + ".running_mean"], rv = state["bn" + n + ".running_var"];
        for (let k = 0; k < f; k++) {
          const scale = g[k] / Math.sqrt(rv[k] + 1e-5);
          for (let j = 0; j < c * 9; j++) w[k * c * 9 + j] *= scale;
          b[k] = scale * (b[k] - rm[k]) + beta[k];
        }
      }
      layers.push({ type: "conv", name: "conv" + n, pad: 1, weight: tensor(w, [f, c, 3, 3]), bias: tensor(b, [f]) },
                  { type: "relu", name: "relu" + n }, { type: "maxpool", name: "maxpool" + n, size: 2, stride: 2 });
      c = f;
    });
    const dense = state["dense1.weight"];
    layers.push({ type: "flatten", name: "flatten1" },
                { type: "dense", name: "dense1", pad: 0, weight: tensor(dense, [dense.length / K, K]), bias: tensor(state["dense1.bias"], [K]) });
    return { input_shape: [1, 28, 28], classes: names, gradcam_layer: "conv" + s.widths.length, layers: layers,
             trained: trained };
  }

  function pct(v) { return (100 * v).toFixed(1) + " %"; }

  // ---- running

  function buttons() {
    $("lab-start").disabled = state === "running" || state === "paused";
    $("lab-pause").disabled = !(state === "running" || state === "paused");
    $("lab-pause").textContent = state === "paused" ? "Resume" : "Pause";
    root.dataset.state = state;
    for (const el of root.querySelectorAll(".lab-settings input, .lab-settings select, .lab-presets button"))
      el.disabled = state === "running" || state === "paused";
  }

  function makeWorker() {
    const source = "\"use strict\";\n" + LabEngine.toString() + "\n(" + labWorker.toString() + ")();\n";
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const w = new Worker(url);
    URL.revokeObjectURL(url);
    w.onmessage = function (e) { message(e.data); };
    w.onerror = function (e) { state = "failed"; buttons(); say("The training stopped with an error: " + e.message); };
    return w;
  }

  function startRun(s, seconds) {
    if (worker) worker.terminate();
    worker = makeWorker();
    const count = trainingImages(s);
    run = { settings: s, loss: [], accuracy: [], seen: 0, planned: planned(s) };
    state = "running";
    buttons();
    $("lab-result").textContent = "";
    say("Starting: " + count.toLocaleString("en") + " training images, " + s.epochs + " epoch" + (s.epochs > 1 ? "s" : "") + ".");
    // build.py's measurement (seconds) skips the live validation passes: they change nothing in the training,
    // and nobody watches the charts. A reader's run validates after every ~2,000 training images.
    worker.postMessage({ type: "start", settings: s, train: data.train, validation: data.validation, test: data.test,
                         evalEvery: seconds ? 0 : Math.max(10, Math.round(2000 / s.batch)), seconds: seconds || 0 });
  }

  function message(m) {
    if (!run) return;
    if (m.type === "progress") {
      let seen = m.seen - m.losses.length * run.settings.batch;
      for (const l of m.losses) { seen += run.settings.batch; run.loss.push([Math.min(seen, m.seen), Number.isFinite(l) ? l : 1e9]); }
      run.seen = m.seen;
      run.speed = m.imagesPerSecond;
      const mean = function (a) { return a.reduce(function (x, y) { return x + y; }, 0) / a.length; };
      if (run.loss.length) {  // for the tests: has the loss fallen?
        root.dataset.lossFirst = mean(run.loss.slice(0, 10).map(function (p) { return p[1]; })).toFixed(4);
        root.dataset.lossLast = mean(run.loss.slice(-10).map(function (p) { return p[1]; })).toFixed(4);
      }
      root.dataset.imagesPerSecond = m.imagesPerSecond.toFixed(0);
      root.dataset.steps = String(m.step);
      root.dataset.lr = String(m.lr);
      if (m.losses.length) run.lastLoss = m.losses[m.losses.length - 1];
      const last = run.lastLoss;
      say("Epoch " + Math.min(m.epoch + 1, run.settings.epochs) + " of " + run.settings.epochs + ": " + m.seen.toLocaleString("en") +
          " images seen, " + m.step + " steps, learning rate " + fmtLr(m.lr) + ", last batch loss " +
          (Number.isFinite(last) ? last.toFixed(3) : "NaN") + ", " +
          Math.round(m.imagesPerSecond) + " images per second." + (state === "paused" ? " Paused." : ""));
      drawCharts();
    } else if (m.type === "kernels") {
      drawKernels(m.kernels);
    } else if (m.type === "validation") {
      run.accuracy.push([m.seen, m.accuracy]);
      drawKernels(m.kernels);
      drawConfusion(m.confusion, "On the " + data.validation.count.toLocaleString("en") + " validation images after " +
                    m.seen.toLocaleString("en") + " training images: " + pct(m.accuracy) + " right.");
      drawCharts();
    } else if (m.type === "test") {
      run.test = m.accuracy;
      drawKernels(m.kernels);
      drawConfusion(m.confusion, "On the " + data.test.count.toLocaleString("en") + " test images, at the end: " + pct(m.accuracy) + " right.");
    } else if (m.type === "diverged") {
      state = "diverged";
      buttons();
      root.dataset.diverged = String(m.step);
      say("");
      $("lab-result").textContent = (Number.isFinite(m.loss)
        ? "The loss exploded to " + (m.loss < 1e6 ? m.loss.toFixed(0) : m.loss.toExponential(1)) + " at step " + m.step +
          " (it starts near 2.3): the network now gives the right class a probability below e⁻⁵⁰. "
        : "The loss became NaN (not a number) at step " + m.step + ": the weights grew until the arithmetic overflowed. ") +
        "Each update overshot so far that the next one had an even bigger gradient to follow. The learning rate is too " +
        "high for this network; training stopped. Reset, lower the learning rate, and start again.";
      drawCharts();
    } else if (m.type === "done") {
      state = "done";
      buttons();
      run.speed = m.imagesPerSecond;
      root.dataset.testAccuracy = String(run.test);
      root.dataset.imagesPerSecond = m.imagesPerSecond.toFixed(0);
      root.dataset.stopped = m.reason;  // "epochs", or "time" when a time limit (build.py's measurement) came first
      root.dataset.seconds = m.seconds.toFixed(1);
      $("lab-result").textContent = "Done: " + m.seen.toLocaleString("en") + " images in " + m.step + " steps, " +
        Math.round(m.imagesPerSecond) + " images per second; " + pct(run.test) + " of the " +
        data.test.count.toLocaleString("en") + " test images right. The network this site trained in NumPy, a larger " +
        "one, on " + LAB.numpy.train.toLocaleString("en") + " images, got " + pct(LAB.numpy.test_accuracy) +
        " of all the test images right.";
      try {
        sessionStorage.setItem("cnn-lab-network", JSON.stringify(explorerDoc(m.state, run.settings,
          m.seen.toLocaleString("en") + " images, " + pct(run.test) + " of the lab's test images right")));
        $("lab-explain").hidden = false;
      } catch (e) {  // storage refused (a private window, say): the explorer cannot have it
        $("lab-explain").hidden = true;
      }
      root.dataset.status = "done";
    }
  }

  function reset() {
    if (worker) { worker.terminate(); worker = null; }
    run = null; state = "idle";
    buttons();
    say("Ready. Choose the settings, or a preset, and press Start. The kernels below are the first layer's before " +
        "any training, as the seed draws them.");
    $("lab-result").textContent = "";
    $("lab-confusion").textContent = "";
    $("lab-confusion-note").textContent = "";
    $("lab-explain").hidden = true;
    for (const key of ["diverged", "lossFirst", "lossLast", "steps", "lr", "imagesPerSecond", "testAccuracy", "stopped", "seconds"])
      delete root.dataset[key];
    root.dataset.kernelDraws = "0";
    preview();
  }

  function setup() {
    fill($("lab-opt"), ["sgd", "momentum", "adam"], function (v) { return { sgd: "SGD", momentum: "SGD with momentum 0.9", adam: "Adam" }[v]; });
    fill($("lab-batch"), [8, 16, 32, 64, 128]);
    fill($("lab-schedule"), ["cosine", "constant"], function (v) { return { cosine: "cosine decay", constant: "constant" }[v]; });
    fill($("lab-train"), [1000, 2000, 5000, 10000].filter(function (v) { return v <= data.train.count; }).concat(
      data.train.count < 1000 ? [data.train.count] : []), function (v) { return v.toLocaleString("en"); });
    fill($("lab-dropout"), [0, 0.1, 0.25, 0.5]);
    fill($("lab-widths"), Object.keys(WIDTHS), function (v) { return v.replace("-", " and ") + " channels"; });
    const presets = $("lab-presets");
    const add = function (title, s, lesson) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = title;
      b.addEventListener("click", function () { apply(s); $("lab-lesson").textContent = lesson; preview(); });
      presets.append(b);
    };
    add("Default", D, "The defaults: Adam, its learning rate decaying over the epochs, batch norm, a little dropout.");
    for (const p of LAB.presets) add(p.title, Object.assign({}, D, p.settings), p.lesson);
    apply(Object.assign({}, D, { train: trainingImages(D) }));
    $("lab-lr").addEventListener("input", showLr);
    root.querySelector(".lab-settings").addEventListener("change", preview);  // a new seed, width or number of images
    $("lab-start").addEventListener("click", function () { startRun(settings()); });
    $("lab-pause").addEventListener("click", function () {
      if (state === "running") { worker.postMessage({ type: "pause" }); state = "paused"; say($("lab-status").textContent + " Paused."); }
      else if (state === "paused") { worker.postMessage({ type: "resume" }); state = "running"; }
      buttons();
    });
    $("lab-reset").addEventListener("click", reset);
    $("lab-compare").addEventListener("click", function () {
      compare = !compare;
      this.setAttribute("aria-pressed", String(compare));
      drawCharts();
    });
    $("lab-split").textContent = "Training on up to " + data.train.count.toLocaleString("en") + " training images, measured every few steps on " +
      data.validation.count.toLocaleString("en") + " validation images and at the end on " + data.test.count.toLocaleString("en") +
      " test images: stratified, seeded subsets of the site's splits.";
    window.addEventListener("resize", drawCharts);
    reset();
  }

  Promise.all([unpack(LAB.train), unpack(LAB.validation), unpack(LAB.test)]).then(function (splits) {
    data = { train: splits[0], validation: splits[1], test: splits[2] };
    root.hidden = false;
    const off = $("lab-static");
    if (off) off.hidden = true;
    setup();
    root.dataset.status = "ready";
    const bench = new URLSearchParams(location.search).get("bench");
    if (bench) startRun(D, Number(bench) || 60);  // build.py's measurement: the defaults, stopped at the time limit if need be
  }).catch(function (e) {
    root.dataset.status = "failed";
    const note = $("lab-static");
    if (note) note.insertAdjacentText("afterbegin", "The lab could not start: " + e.message);
    throw e;
  });
})();
