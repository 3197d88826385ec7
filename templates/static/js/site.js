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

// The class picker: without JavaScript all ten maps are shown; with it, buttons pick one.
function setUpClassPicker(picker) {
  const figures = Array.from(picker.querySelectorAll(":scope > figure[data-class]"));
  if (figures.length < 2) return;
  const buttons = document.createElement("div");
  buttons.className = "picker-buttons";
  buttons.setAttribute("role", "group");
  buttons.setAttribute("aria-label", "Show the Grad-CAM map for class");
  const byClass = new Map();
  function show(cls) {
    figures.forEach(function (f) { f.classList.toggle("shown", f.dataset.class === cls); });
    byClass.forEach(function (b, c) { b.setAttribute("aria-pressed", String(c === cls)); });
  }
  figures.forEach(function (f) {
    const b = document.createElement("button");
    b.type = "button";
    const caption = f.querySelector("figcaption");
    b.textContent = caption ? caption.textContent.replace(/^class\s+/, "").split(" (")[0] : f.dataset.class;
    b.title = caption ? caption.textContent : "";
    b.addEventListener("click", function () { show(f.dataset.class); });
    byClass.set(f.dataset.class, b);
    buttons.append(b);
  });
  picker.before(buttons);
  picker.classList.add("js");
  show(picker.dataset.default || figures[0].dataset.class);
}

document.querySelectorAll(".class-picker").forEach(setUpClassPicker);

// A row of class buttons is one Tab stop: Tab reaches the pressed button, the arrow keys (and
// Home, End) move along the row and press the button they reach.
function setUpButtonRow(row) {
  const buttons = function () { return Array.from(row.querySelectorAll(":scope > button")); };
  function settle() {
    const all = buttons();
    const current = all.find(function (b) { return b.getAttribute("aria-pressed") === "true"; }) || all[0];
    all.forEach(function (b) { b.tabIndex = b === current ? 0 : -1; });
  }
  row.addEventListener("keydown", function (e) {
    const all = buttons(), at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = all[(to + all.length) % all.length];
    next.click();
    next.focus();
    settle();
  });
  row.addEventListener("click", settle);
  new MutationObserver(settle).observe(row, { subtree: true, attributes: true, attributeFilter: ["aria-pressed"], childList: true });
  settle();
}

document.querySelectorAll(".picker-buttons").forEach(setUpButtonRow);

// A table or an equation wider than the page scrolls inside its own box (site.css); a box that
// scrolls must be reachable by the keyboard, so while it overflows it is a focusable, named region.
// The explorer fills its tables after the page loads: boxes are looked at again when main changes.
function scrollBoxName(box) {
  const table = box.matches("table") ? box : box.querySelector("table");
  if (table) {
    const heads = Array.from(table.querySelectorAll("th")).slice(0, 3).map(function (th) { return th.textContent.trim(); }).filter(Boolean);
    return "Table" + (heads.length ? ": " + heads.join(", ") : "") + " (scrolls sideways)";
  }
  return "Equation (scrolls sideways)";
}

function markScrollingBoxes() {
  document.querySelectorAll("main table, main .math-display").forEach(function (el) {
    const box = el.matches("table") && el.parentElement.classList.contains("table-scroll") ? el.parentElement : el;
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.dataset.madeFocusable = box.hasAttribute("aria-label") ? "" : "named";
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      if (box.dataset.madeFocusable) box.setAttribute("aria-label", scrollBoxName(box));
    } else if (!scrolls && "madeFocusable" in box.dataset) {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      if (box.dataset.madeFocusable) box.removeAttribute("aria-label");
      delete box.dataset.madeFocusable;
    }
  });
}
markScrollingBoxes();
window.addEventListener("resize", markScrollingBoxes);
window.addEventListener("load", markScrollingBoxes);  // once the equations' images have their widths
let scrollBoxesPending = false;
const mainElement = document.querySelector("main");
if (mainElement) {
  new MutationObserver(function () {
    if (scrollBoxesPending) return;
    scrollBoxesPending = true;
    requestAnimationFrame(function () { scrollBoxesPending = false; markScrollingBoxes(); });
  }).observe(mainElement, { childList: true, subtree: true });
}

// A chart links to its full-size image (on a phone: to zoom in); in dark mode, open the dark variant shown.
document.addEventListener("click", function (e) {
  const link = e.target.closest && e.target.closest("a.figure-open");
  const img = link && link.querySelector("img");
  if (img && img.currentSrc && img.currentSrc !== link.href) link.href = img.currentSrc;
});
