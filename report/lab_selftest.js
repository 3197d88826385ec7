// The lab's self-test, run by build.py in headless Chromium (report/browsercheck.py): the page's
// own engine (static/js/lab-engine.js) takes three steps of SGD with momentum and three of Adam
// from NumPy's initial weights, on NumPy's batch and with the dropout masks NumPy drew, and every
// loss, gradient, parameter and batch-norm statistic is compared with NumPy's (report/lab.py).
// Each difference is measured absolutely and relative to the largest magnitude of the NumPy
// array it belongs to; the largest of each kind is reported. Not part of the site.
"use strict";

(function () {
  const out = document.getElementById("result");
  const ref = window.LAB_REFERENCE;
  const differences = Differences(), compare = differences.compare, decode = differences.decode;

  try {
    const t0 = performance.now();
    const E = LabEngine();
    const x = Float64Array.from(decode(ref.x)), y = Array.from(decode(ref.y)), n = ref.n;
    const initial = {};
    for (const key in ref.initial) initial[key] = decode(ref.initial[key]);
    for (const kind in ref.runs) {
      const run = ref.runs[kind];
      const net = E.create(ref.spec, 1);
      E.setState(net, initial);
      const opt = E.optimizer(kind, run.lr);
      run.steps.forEach(function (step) {
        const masks = {};
        masks[ref.dropout_layer] = decode(step.mask);
        const r = E.trainStep(net, opt, x, y, n, masks);
        compare("loss", [r.loss], [step.loss]);
        const grads = {};
        for (const L of net.layers) for (const name in L.grads) grads[L.name + "." + name] = L.grads[name];
        for (const key in step.grads) compare("gradient", grads[key], decode(step.grads[key]));
      });
      const state = E.state(net);
      for (const key in run.after) compare(key.indexOf("running") >= 0 ? "running statistics" : "parameters after 3 steps",
                                           state[key], decode(run.after[key]));
    }
    out.textContent = JSON.stringify(Object.assign(differences.result(), { seconds: (performance.now() - t0) / 1000 }));
    out.dataset.status = "done";
  } catch (e) {
    out.textContent = String(e && e.stack || e);
    out.dataset.status = "failed";
  }
})();
