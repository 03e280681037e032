// The mask painter's browser side (anywidget): the picture on a canvas, the mask over it in translucent
// magenta. Strokes are drawn here, with no round trip to the kernel per mouse move; the mask itself lives
// in a second canvas at the picture's own size (its alpha: painted = repaint) and goes to Python as an
// RGBA PNG (`mask`) when a stroke ends. Python's clear / invert / set_mask send a new PNG back.

const TINT = "rgb(255, 0, 170)";

function loadImage(view) {
  // A DataView of PNG bytes -> a decoded HTMLImageElement (null for no bytes).
  if (!view || view.byteLength === 0) return Promise.resolve(null);
  const url = URL.createObjectURL(new Blob([view], { type: "image/png" }));
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => { URL.revokeObjectURL(url); resolve(image); };
    image.onerror = reject;
    image.src = url;
  });
}

function render({ model, el }) {
  const view = document.createElement("canvas");  // what the user sees and paints on
  const mask = document.createElement("canvas");  // the picture's size; alpha = repaint
  view.className = "kl-mask-canvas";
  view.style.touchAction = "none";
  el.classList.add("kl-mask-painter");
  el.appendChild(view);
  let picture = null;
  let stroke = null;  // {start, last} in picture pixels while the pointer is down
  let sent = null;    // the DataView this side sent last, not to be loaded back

  function zoom() {
    return picture ? model.get("zoom_to") / Math.max(picture.width, picture.height) : 1;
  }

  function redraw(preview) {
    if (!picture) return;
    const ctx = view.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 1;
    ctx.clearRect(0, 0, view.width, view.height);
    ctx.drawImage(picture, 0, 0, view.width, view.height);
    ctx.globalAlpha = 0.55;
    ctx.drawImage(mask, 0, 0, view.width, view.height);
    if (preview) {
      const z = zoom();
      ctx.globalAlpha = 0.9;
      ctx.strokeStyle = TINT;
      ctx.lineWidth = 2;
      ctx.strokeRect(preview.x * z, preview.y * z, preview.w * z, preview.h * z);
    }
  }

  function send() {
    mask.toBlob(async (blob) => {
      sent = new DataView(await blob.arrayBuffer());
      model.set("mask", sent);
      model.set("strokes", model.get("strokes") + 1);
      model.save_changes();
    }, "image/png");
  }

  async function showPicture() {
    picture = await loadImage(model.get("picture"));
    if (!picture) return;
    mask.width = picture.width;
    mask.height = picture.height;
    view.width = Math.round(picture.width * zoom());
    view.height = Math.round(picture.height * zoom());
    await showMask();
  }

  async function showMask() {
    const bytes = model.get("mask");
    if (bytes === sent && sent !== null) return redraw();
    const loaded = await loadImage(bytes);
    const ctx = mask.getContext("2d");
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, mask.width, mask.height);
    if (loaded) {
      ctx.drawImage(loaded, 0, 0, mask.width, mask.height);
      ctx.globalCompositeOperation = "source-in";  // keep the alpha, paint it in the tint
      ctx.fillStyle = TINT;
      ctx.fillRect(0, 0, mask.width, mask.height);
      ctx.globalCompositeOperation = "source-over";
    }
    redraw();
  }

  function at(event) {
    const box = view.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * mask.width,
      y: ((event.clientY - box.top) / box.height) * mask.height,
    };
  }

  function paint(from, to) {
    const ctx = mask.getContext("2d");
    ctx.globalCompositeOperation = model.get("tool") === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = TINT;
    ctx.lineWidth = model.get("brush");
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);  // a click without moving still leaves a dot
    ctx.stroke();
    ctx.globalCompositeOperation = "source-over";
  }

  function box(a, b) {
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  view.addEventListener("pointerdown", (event) => {
    if (!picture || event.button !== 0) return;
    view.setPointerCapture(event.pointerId);
    const p = at(event);
    stroke = { start: p, last: p };
    if (model.get("tool") !== "rectangle") { paint(p, p); redraw(); }
  });
  view.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const p = at(event);
    if (model.get("tool") === "rectangle") redraw(box(stroke.start, p));
    else { paint(stroke.last, p); redraw(); }
    stroke.last = p;
  });
  const finish = (event) => {
    if (!stroke) return;
    if (model.get("tool") === "rectangle") {
      const r = box(stroke.start, at(event));
      const ctx = mask.getContext("2d");
      ctx.fillStyle = TINT;
      ctx.fillRect(r.x, r.y, r.w, r.h);
    }
    stroke = null;
    redraw();
    send();
  };
  view.addEventListener("pointerup", finish);
  view.addEventListener("pointercancel", finish);

  model.on("change:picture", showPicture);
  model.on("change:mask", showMask);
  model.on("change:zoom_to", showPicture);
  showPicture();
  return () => {
    model.off("change:picture", showPicture);
    model.off("change:mask", showMask);
    model.off("change:zoom_to", showPicture);
  };
}

export default { render };
