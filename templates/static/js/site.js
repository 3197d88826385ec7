// Progressive enhancements. Without JavaScript every frame of a series is shown
// one under the other and all code stays readable; nothing here is required.
"use strict";

// A series of figures (one per epoch, say) becomes one figure with a slider.
function setUpFrames(container) {
  const frames = Array.from(container.querySelectorAll(":scope > figure"));
  if (frames.length < 2) return;
  const label = container.dataset.label || "Frame";
  const controls = document.createElement("div");
  controls.className = "frames-controls";

  const prev = document.createElement("button");
  prev.type = "button";
  prev.textContent = "\u2190";
  prev.setAttribute("aria-label", "Previous " + label.toLowerCase());
  const next = document.createElement("button");
  next.type = "button";
  next.textContent = "\u2192";
  next.setAttribute("aria-label", "Next " + label.toLowerCase());

  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = String(frames.length - 1);
  slider.step = "1";
  slider.value = String(frames.length - 1);
  slider.setAttribute("aria-label", label);

  const output = document.createElement("output");
  output.setAttribute("aria-live", "polite");

  function show(index) {
    index = Math.max(0, Math.min(frames.length - 1, index));
    slider.value = String(index);
    frames.forEach(function (frame, i) { frame.hidden = i !== index; });
    const name = frames[index].dataset.frame;
    output.textContent = label + " " + name;
    slider.setAttribute("aria-valuetext", label + " " + name);
    prev.disabled = index === 0;
    next.disabled = index === frames.length - 1;
  }

  slider.addEventListener("input", function () { show(Number(slider.value)); });
  prev.addEventListener("click", function () { show(Number(slider.value) - 1); });
  next.addEventListener("click", function () { show(Number(slider.value) + 1); });
  controls.append(output, prev, slider, next);
  container.before(controls);
  show(frames.length - 1);
}

document.querySelectorAll(".frames").forEach(setUpFrames);

// Printing shows every frame (in CSS) and opens every code block.
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
