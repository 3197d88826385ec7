// What the self-test harnesses (explorer_selftest.js, lab_selftest.js) share: NumPy's arrays
// decoded, and each difference between the page's numbers and NumPy's measured and kept, the
// largest of each kind. Loaded before the harness; not part of the site.
"use strict";

function Differences() {
  const worst = {};
  let compared = 0;

  function keep(kind, values) {  // the largest of each value so far; NaN counts as worst
    const w = worst[kind] || (worst[kind] = Object.fromEntries(Object.keys(values).map(function (k) { return [k, 0]; })));
    for (const k in values) if (!(values[k] <= w[k])) w[k] = values[k];
    compared += 1;
  }

  function sameLength(kind, js, numpy) {
    if (js.length !== numpy.length) throw new Error(kind + ": " + js.length + " values against NumPy's " + numpy.length);
  }

  return {
    // base64 of little-endian float32 -> Float32Array
    decode: function (b64) {
      const text = atob(b64), bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      return new Float32Array(bytes.buffer);
    },
    // The largest absolute difference, and that relative to the largest magnitude of NumPy's array.
    compare: function (kind, js, numpy) {
      sameLength(kind, js, numpy);
      let scale = 0, diff = 0;
      for (let i = 0; i < numpy.length; i++) {
        scale = Math.max(scale, Math.abs(numpy[i]));
        diff = Math.max(diff, Math.abs(js[i] - numpy[i]));
      }
      keep(kind, { abs: diff, rel: scale > 0 ? diff / scale : diff });
    },
    // A whole map's difference: the summed absolute difference over the summed absolute map (as
    // abs and rel), and the largest single-pixel difference beside it (pixel).
    compareWhole: function (kind, js, numpy) {
      sameLength(kind, js, numpy);
      let diff = 0, size = 0, peak = 0;
      for (let i = 0; i < numpy.length; i++) {
        const d = Math.abs(js[i] - numpy[i]);
        diff += d; size += Math.abs(numpy[i]); peak = Math.max(peak, d);
      }
      const whole = size > 0 ? diff / size : diff;
      keep(kind, { abs: whole, rel: whole, pixel: peak });
    },
    result: function () { return { worst: worst, compared: compared }; },
  };
}
