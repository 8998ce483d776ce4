// The page: every action is a call to the HTTP API the scripts can use too. No build step
// and nothing from elsewhere: this file, the style sheet and the icon are the whole page.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const authHeaders = token ? { "X-Deblur-Token": token } : {};
const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url);
const ENDED = ["done", "failed", "cancelled", "deleted"];
const live = (job) => !ENDED.includes(job.status);
const dpr = () => window.devicePixelRatio || 1; // 1:1 is one photo pixel per screen pixel
let info = null;
const photos = []; // in the order added
const allJobs = []; // every job started on this visit, with its server state (job.data)
let selected = null; // the photo shown
let viewer = null; // the one compare view, moved into the shown photo's panel

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...authHeaders, ...(options.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

// POST the photo and the job's fields (XMLHttpRequest: it reports the upload's progress).
function upload(job, fields) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("image", job.photo.file, job.photo.file.name);
    for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== null && v !== undefined) form.append(k, v);
    const xhr = new XMLHttpRequest();
    job.abort = () => xhr.abort();
    job.sending = true;
    xhr.open("POST", "api/restore");
    for (const [k, v] of Object.entries(authHeaders)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) { job.uploaded = ev.loaded / ev.total; render(job); } };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: the status says it */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body.error || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the upload failed (is the server still running?)"));
    xhr.onabort = () => reject(new Error("cancelled"));
    xhr.send(form);
  });
}

function seconds(s) {
  if (s == null) return "";
  if (s < 60) return `${Math.max(1, Math.ceil(s))} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

// What a job is doing, in words: `long` for the photo's progress line, else the job list's.
function describe(job, long) {
  const d = job.data || {};
  switch (job.status) {
    case "uploading":
      if (!job.sending) return job.cancelling ? "cancelling" : "waiting";
      return `uploading${job.uploaded != null ? " " + Math.round(100 * job.uploaded) + "%" : ""}`;
    case "queued": return job.cancelling ? "cancelling" : "waiting in the queue";
    case "running": {
      if (job.cancelling) return "cancelling (at the next step)";
      const phase = {
        reading: "reading the photo",
        "first pass": d.kernel ? (long ? "estimating the blur kernel, then the first network pass" : "kernel, first pass")
          : (long ? "first network pass" : "first pass"),
        refining: `refining, step ${d.step} of ${d.steps}`,
        writing: "writing the result",
      }[d.phase] || "running";
      const left = d.eta_seconds != null ? `, about ${seconds(d.eta_seconds)} left` : "";
      return long ? `${phase} (${seconds(d.seconds)}${left})` : phase + left;
    }
    case "done": return `done in ${seconds(d.seconds)}`;
    case "failed": return long ? `failed: ${job.error || d.error || "unknown error"}` : "failed";
    case "cancelled": return "cancelled";
    case "deleted": return "deleted";
  }
  return job.status;
}

// The fraction for a progress bar, or null where it cannot be told yet (the bar then moves on its own).
function fraction(job) {
  if (job.status === "uploading") return job.uploaded != null ? 0.02 * job.uploaded : null;
  if (job.status === "done") return 1;
  if (job.status !== "running") return 0;
  const p = job.data ? job.data.progress : 0;
  return p > 0 ? p : null;
}

function setBar(bar, f) {
  if (f == null) bar.removeAttribute("value");
  else bar.value = f;
}

// -- a photo: its panel and its entry in the list ------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

async function addPhoto(file) {
  const panel = document.getElementById("panel").content.firstElementChild.cloneNode(true);
  const photo = { file, name: file.name, size: null, region: "preview", jobs: [], current: null, shown: null,
                  batch: null, centre: null, panel };
  photo.$ = (sel) => panel.querySelector(sel);
  photos.push(photo);
  document.getElementById("photos").append(panel);
  photo.$(".name").textContent = file.name;

  // The list entry: the photo, then its jobs.
  const entry = el("li", "photo-entry");
  const row = el("button", "photo-row");
  row.type = "button";
  const mini = el("img", "mini");
  mini.alt = "";
  const label = el("span", "pname", file.name);
  const dims = el("span", "pdims muted small");
  row.append(mini, label, dims);
  row.onclick = () => select(photo);
  const list = el("ul", "job-rows");
  entry.append(row, list);
  document.getElementById("jobs").append(entry);
  document.getElementById("nojobs").hidden = true;
  Object.assign(photo, { entry, row, list, mini, dimsLabel: dims });

  const select_ = photo.$(".preset");
  for (const [name, p] of Object.entries(info.presets)) select_.add(new Option(name, name, false, name === info.recommended));
  const help = () => { photo.$(".preset-help").textContent = info.presets[select_.value].help; markChosen(photo); };
  select_.onchange = help;
  help();
  photo.$(".preview").onclick = () => startPreviews(photo);
  photo.$(".full").onclick = () => startFull(photo);
  photo.$(".cancel").onclick = () => { if (photo.current) cancel(photo.current); };
  setupPicker(photo);
  showThumbnail(photo);
  return photo;
}

function select(photo) {
  selected = photo;
  document.getElementById("welcome").hidden = true;
  for (const p of photos) {
    p.panel.hidden = p !== photo;
    p.row.setAttribute("aria-current", p === photo ? "true" : "false");
  }
  markRows();
  if (photo.shown) show(photo.shown);
  else if (viewer) viewer.el.hidden = true;
}

function selectJob(job) {
  job.photo.current = job;
  select(job.photo);
  if (job.status === "done") show(job);
  if (job.kind === "preview" && job.status === "done") choosePreset(job.photo, job.preset, false);
  progressLine(job.photo);
  markRows();
}

function markRows() {
  for (const job of allJobs) {
    const on = job.photo === selected && (job === job.photo.shown || (job === job.photo.current && !job.photo.shown));
    job.row.setAttribute("aria-current", on ? "true" : "false");
  }
}

function showError(photo, e) {
  const p = photo.$(".error");
  p.hidden = !e;
  p.textContent = e ? String(e.message || e) : "";
}

// The thumbnail: the browser's own decoding where it can (PNG, JPEG, WebP, BMP), else the
// server's PNG of it (TIFF, 16-bit and the rest).
async function showThumbnail(photo) {
  const url = URL.createObjectURL(photo.file);
  const decoded = await new Promise((ok) => {
    const im = new Image();
    im.onload = () => ok(im.naturalWidth ? im : null);
    im.onerror = () => ok(null);
    im.src = url;
  });
  let src = url;
  if (decoded) {
    photo.size = [decoded.naturalWidth, decoded.naturalHeight];
  } else {
    URL.revokeObjectURL(url);
    try {
      const form = new FormData();
      form.append("image", photo.file, photo.file.name);
      const r = await fetch("api/thumbnail", { method: "POST", body: form, headers: authHeaders });
      if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `${r.status} ${r.statusText}`);
      photo.size = [Number(r.headers.get("X-Image-Width")), Number(r.headers.get("X-Image-Height"))];
      src = URL.createObjectURL(await r.blob());
    } catch (e) {
      photo.$(".picker .thumb").hidden = true;
      const note = photo.$(".no-thumb");
      note.hidden = false;
      note.textContent = `No picture of it: ${e.message}`;
      return;
    }
  }
  photo.$(".thumb").src = src;
  photo.mini.src = src;
  if (photo.size[0] <= 512 && photo.size[1] <= 512) {
    photo.$(".hint").textContent = "Previews restore the whole photo (it is under 512\u202fpx); drag a box on it to restore only a region.";
  }
  const dims = `${photo.size[0]} × ${photo.size[1]} px`;
  photo.$(".dims").textContent = dims;
  photo.dimsLabel.textContent = dims;
}

// The region: the centre crop unless the user drags a box on the thumbnail.
function setupPicker(photo) {
  const thumb = photo.$(".thumb"), box = photo.$(".box");
  let start = null;
  const at = (ev) => { const r = thumb.getBoundingClientRect(); return [Math.min(Math.max(ev.clientX - r.left, 0), r.width), Math.min(Math.max(ev.clientY - r.top, 0), r.height)]; };
  thumb.addEventListener("pointerdown", (ev) => { ev.preventDefault(); thumb.setPointerCapture(ev.pointerId); start = at(ev); });
  thumb.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const [x0, y0] = start, [x1, y1] = at(ev);
    Object.assign(box.style, { left: Math.min(x0, x1) + "px", top: Math.min(y0, y1) + "px",
      width: Math.abs(x1 - x0) + "px", height: Math.abs(y1 - y0) + "px" });
    box.hidden = false;
  });
  const end = () => {
    if (!start) return;
    start = null;
    const s = (photo.size ? photo.size[0] : thumb.naturalWidth) / thumb.clientWidth;
    const x = Math.round(box.offsetLeft * s), y = Math.round(box.offsetTop * s);
    const w = Math.round(box.offsetWidth * s), h = Math.round(box.offsetHeight * s);
    if (!box.hidden && w >= 16 && h >= 16) {
      photo.region = `${x},${y},${w},${h}`;
      photo.$(".hint").textContent = `Previews restore the region ${w} × ${h} px at (${x}, ${y}); click the photo to go back to the centre crop.`;
    } else {
      photo.region = "preview";
      box.hidden = true;
      photo.$(".hint").textContent = photo.size && photo.size[0] <= 512 && photo.size[1] <= 512
        ? "Previews restore the whole photo (it is under 512\u202fpx); drag a box on it to restore only a region."
        : "Previews restore a 512\u202fpx crop at the centre; drag a box on the photo to choose another region.";
    }
  };
  thumb.addEventListener("pointerup", end);
  thumb.addEventListener("pointercancel", end);
}

// -- jobs ----------------------------------------------------------------------------------------

function newJob(photo, kind, preset) {
  const job = { id: null, photo, kind, preset, status: "uploading", data: null, uploaded: null, cancelling: false,
                batch: null, tile: null, error: null };
  job.row = el("button", "job-row");
  job.row.type = "button";
  job.row.append(el("span", "what", `${preset} · ${kind === "preview" ? "preview" : "full size"}`),
                 el("span", "jstate muted small"), el("progress", "mini-bar"));
  job.row.querySelector("progress").max = 1;
  job.row.onclick = () => selectJob(job);
  const li = el("li");
  li.append(job.row);
  photo.list.append(li);
  photo.jobs.push(job);
  allJobs.push(job);
  render(job);
  return job;
}

// Everything that shows a job: its row in the list, its preview tile, the photo's progress line.
function render(job) {
  job.row.dataset.status = job.status;
  job.row.querySelector(".jstate").textContent = describe(job, false);
  job.row.title = describe(job, true);
  const bar = job.row.querySelector("progress");
  bar.hidden = !live(job);
  setBar(bar, fraction(job));
  if (job.tile) job.tile.querySelector(".pv-state").textContent = job.status === "done" ? seconds(job.data.seconds) : describe(job, false);
  if (job.photo.current === job) progressLine(job.photo);
}

function progressLine(photo) {
  const job = photo.current, line = photo.$(".job");
  line.hidden = !job;
  if (!job) return;
  line.dataset.status = job.status;
  const what = `${job.preset} ${job.kind === "preview" ? "preview" : "full size"}`;
  photo.$(".state").textContent = `${what}: ${describe(job, true)}`;
  const bar = line.querySelector("progress");
  setBar(bar, fraction(job));
  bar.hidden = !live(job) && job.status !== "done";
  const cancel = photo.$(".cancel");
  cancel.hidden = !live(job);
  cancel.disabled = job.cancelling;
  cancel.textContent = job.batch ? "Cancel the previews" : "Cancel";
}

async function launch(job, fields) {
  try {
    const answer = await upload(job, fields);
    job.id = answer.id;
    job.row.dataset.job = answer.id;
    job.status = answer.status;
    job.data = { ...answer, phase: answer.status, progress: 0, seconds: 0 };
    if (job.cancelling) { job.cancelling = false; await cancel(job); }
  } catch (e) {
    job.status = job.cancelling ? "cancelled" : "failed";
    job.error = e.message;
    if (!job.cancelling) showError(job.photo, e);
  }
  render(job);
  if (!live(job)) ended(job);
}

function fieldsOf(photo) {
  const $ = photo.$;
  const fields = { preset: $(".preset").value, seed: $(".seed").value };
  for (const k of ["steps", "noise_ceiling", "samples"]) fields[k] = $("." + k).value;
  if ($(".average").checked) fields.average = "true";
  if ($(".std").checked) fields.std = "true";
  if ($(".kernel").checked) fields.kernel = "auto";
  return fields;
}

function startFull(photo) {
  showError(photo, null);
  const fields = fieldsOf(photo);
  const job = newJob(photo, "full", fields.preset);
  photo.current = job;
  progressLine(photo);
  markRows();
  launch(job, fields);
}

async function startPreviews(photo) {
  showError(photo, null);
  const button = photo.$(".preview");
  button.disabled = true;
  const grid = photo.$(".grid");
  grid.textContent = "";
  photo.$(".previews").hidden = false;
  photo.centre = null;
  grid.append(tile(photo, null));
  const batch = [];
  for (const name of Object.keys(info.presets)) {
    const job = newJob(photo, "preview", name);
    job.batch = batch;
    job.tile = tile(photo, job);
    grid.append(job.tile);
    batch.push(job);
    render(job);
  }
  photo.batch = batch;
  photo.current = batch[0];
  progressLine(photo);
  markRows();
  markChosen(photo);
  const { seed } = fieldsOf(photo);
  const kernel = photo.$(".kernel").checked ? "auto" : "";
  for (const job of batch) { // one after another: the queue runs them in this order
    if (job.cancelling) { job.status = "cancelled"; render(job); ended(job); continue; }
    await launch(job, { preset: job.preset, region: photo.region, seed, kernel });
  }
}

// One cell of the previews grid: the crop at 1:1 in a window that every cell pans together.
function tile(photo, job) {
  const fig = el("figure", "pv" + (job ? "" : " input"));
  const view = el("div", "pv-view");
  const img = el("img");
  img.alt = job ? `${job.preset} preview` : "input";
  img.draggable = false;
  img.onload = () => layoutTiles(photo);
  view.append(img);
  const cap = el("figcaption");
  cap.append(el("b", null, job ? job.preset : "input"), " ", el("span", "pv-state muted small", job ? "waiting" : ""));
  fig.append(view, cap);
  let drag = null, moved = false;
  view.addEventListener("pointerdown", (ev) => {
    if (ev.button > 0) return;
    ev.preventDefault();
    view.setPointerCapture(ev.pointerId);
    drag = { x: ev.clientX, y: ev.clientY, centre: photo.centre ? [...photo.centre] : null };
    moved = false;
  });
  view.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
    const size = tileSize(photo);
    if (!size || !moved) return;
    const c = drag.centre || [size[0] / 2, size[1] / 2];
    photo.centre = [c[0] - dx * dpr(), c[1] - dy * dpr()];
    layoutTiles(photo);
  });
  const up = () => { drag = null; };
  view.addEventListener("pointerup", up);
  view.addEventListener("pointercancel", up);
  if (job) {
    fig.dataset.preset = job.preset;
    fig.tabIndex = 0;
    fig.setAttribute("role", "button");
    fig.setAttribute("aria-pressed", "false");
    fig.addEventListener("click", () => { if (!moved) choosePreset(photo, job.preset, true); moved = false; });
    fig.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); choosePreset(photo, job.preset, true); }
    });
  }
  return fig;
}

function tileSize(photo) {
  const img = [...photo.$(".grid").querySelectorAll("img")].find((i) => i.naturalWidth);
  return img ? [img.naturalWidth, img.naturalHeight] : null;
}

function layoutTiles(photo) {
  const size = tileSize(photo);
  if (!size) return;
  const [w, h] = size, r = dpr();
  const [cx, cy] = photo.centre || [w / 2, h / 2];
  for (const img of photo.$(".grid").querySelectorAll("img")) {
    if (!img.naturalWidth) continue;
    const view = img.parentElement, bw = view.clientWidth, bh = view.clientHeight;
    const iw = img.naturalWidth / r, ih = img.naturalHeight / r;
    const place = (box, size_, c) => (size_ <= box ? (box - size_) / 2 : Math.min(0, Math.max(box - size_, box / 2 - c / r)));
    Object.assign(img.style, { width: iw + "px", height: ih + "px", left: place(bw, iw, cx) + "px", top: place(bh, ih, cy) + "px" });
  }
}

function choosePreset(photo, preset, showIt) {
  photo.$(".preset").value = preset;
  photo.$(".preset-help").textContent = info.presets[preset].help;
  markChosen(photo);
  if (!showIt) return;
  const job = (photo.batch || []).find((j) => j.preset === preset);
  if (job && job.status === "done") { photo.current = job; progressLine(photo); show(job); }
  else if (job) { photo.current = job; progressLine(photo); markRows(); }
}

function markChosen(photo) {
  const preset = photo.$(".preset").value;
  for (const fig of photo.$(".grid").querySelectorAll("figure[data-preset]")) {
    const on = fig.dataset.preset === preset;
    fig.classList.toggle("chosen", on);
    fig.setAttribute("aria-pressed", on ? "true" : "false");
  }
}

async function cancel(job) {
  const targets = job.batch ? job.batch.filter(live) : [job];
  for (const j of targets) {
    j.cancelling = true;
    render(j);
    if (!j.id) { if (j.abort) j.abort(); continue; } // still uploading (or not yet sent): stopped here
    try {
      const answer = await api(`api/jobs/${j.id}`, { method: "DELETE" });
      if (answer.status === "cancelled" && live(j)) {
        j.status = "cancelled";
        j.data = { ...j.data, status: "cancelled", phase: "cancelled" };
        render(j);
        ended(j);
      }
    } catch (e) { showError(j.photo, e); }
  }
}

// Every job not yet ended is asked about, a few times a second.
async function poll() {
  const asking = allJobs.filter((j) => j.id && live(j) && !j.asking);
  await Promise.all(asking.map(async (job) => {
    job.asking = true;
    try {
      const data = await api(`api/jobs/${job.id}`);
      const before = job.status;
      job.data = data;
      job.status = data.status;
      if (job.status !== "running" && job.status !== "queued") job.cancelling = false;
      render(job);
      if (before !== job.status && !live(job)) ended(job);
    } catch (e) {
      if (/no job/.test(e.message)) { job.status = "deleted"; render(job); ended(job); }
    } finally {
      job.asking = false;
    }
  }));
  setTimeout(poll, 400);
}

function ended(job) {
  const photo = job.photo;
  job.cancelling = false;
  if (job.status === "done" && job.kind === "preview") {
    const img = job.tile.querySelector("img");
    img.src = withToken(`api/jobs/${job.id}/result`);
    const input = photo.$(".grid .pv.input img");
    if (!input.getAttribute("src")) input.src = withToken(`api/jobs/${job.id}/before`);
    if (job.preset === photo.$(".preset").value && (!photo.shown || photo.shown.kind === "preview")) show(job);
  } else if (job.status === "done") {
    show(job);
  }
  if (job.batch) { // the progress line follows the previews as they run
    const next = job.batch.find(live);
    if (photo.current === job && next) photo.current = next;
    if (!next) { // all ended: the line tells of the preview chosen (or the last)
      photo.$(".preview").disabled = false;
      if (job.batch.includes(photo.current)) {
        photo.current = job.batch.find((j) => j.preset === photo.$(".preset").value && j.status === "done") || photo.current;
      }
    }
  }
  render(job);
  progressLine(photo);
  markRows();
}

// -- the compare view: input and result under one zoom and pan, a divider between them ----------

function makeViewer() {
  const root = document.getElementById("viewer").content.firstElementChild.cloneNode(true);
  const $ = (sel) => root.querySelector(sel);
  const v = { el: root, view: $(".view"), before: $(".before"), after: $(".after"), afterLayer: $(".after-layer"),
              divider: $(".divider"), split: 50, scale: 1, tx: 0, ty: 0, w: 0, h: 0, mode: "fit", job: null };
  const view = v.view;
  const size = () => [view.clientWidth, view.clientHeight];
  const fitScale = () => { const [vw, vh] = size(); return v.w ? Math.min(vw / v.w, vh / v.h) : 1; };
  const limits = () => [Math.min(fitScale(), 1 / dpr()) / 2, 32 / dpr()];

  v.apply = () => {
    const [vw, vh] = size();
    const iw = v.w * v.scale, ih = v.h * v.scale;
    v.tx = iw <= vw ? (vw - iw) / 2 : Math.min(0, Math.max(vw - iw, v.tx));
    v.ty = ih <= vh ? (vh - ih) / 2 : Math.min(0, Math.max(vh - ih, v.ty));
    const t = `translate(${v.tx}px, ${v.ty}px) scale(${v.scale})`;
    v.before.style.transform = t;
    v.after.style.transform = t;
    // The labels sit at the top corners of the picture where it shows (not of an emptier view).
    const top = Math.max(0, v.ty) + 10 + "px";
    Object.assign($(".tag-before").style, { left: Math.max(0, v.tx) + 10 + "px", top });
    Object.assign($(".tag-after").style, { right: Math.max(0, vw - v.tx - iw) + 10 + "px", top });
    view.dataset.scale = String(v.scale);
    view.classList.toggle("pixels", v.scale * dpr() >= 2);
    $(".zoom-level").textContent = `${Math.round(v.scale * dpr() * 100)}%`;
  };
  v.zoomAt = (s, x, y) => {
    const [lo, hi] = limits();
    s = Math.min(hi, Math.max(lo, s));
    v.tx = x - (x - v.tx) * (s / v.scale);
    v.ty = y - (y - v.ty) * (s / v.scale);
    v.scale = s;
    v.mode = "free";
    v.apply();
  };
  const centre = () => { const [vw, vh] = size(); return [vw / 2, vh / 2]; };
  v.zoomBy = (f) => v.zoomAt(v.scale * f, ...centre());
  v.oneToOne = () => v.zoomAt(1 / dpr(), ...centre());
  v.fit = () => { v.scale = fitScale(); v.mode = "fit"; v.apply(); };
  v.setSplit = (p) => {
    v.split = Math.min(100, Math.max(0, p));
    v.afterLayer.style.clipPath = `inset(0 0 0 ${v.split}%)`;
    v.divider.style.left = `${v.split}%`;
    const n = Math.round(v.split);
    v.divider.setAttribute("aria-valuenow", String(n));
    v.divider.setAttribute("aria-valuetext", `${n}% input, ${100 - n}% restored`);
    $(".tag-before").classList.toggle("faded", v.split < 8);
    $(".tag-after").classList.toggle("faded", v.split > 92);
  };

  $(".zoom-in").onclick = () => v.zoomBy(1.25);
  $(".zoom-out").onclick = () => v.zoomBy(0.8);
  $(".zoom-1").onclick = () => v.oneToOne();
  $(".zoom-fit").onclick = () => v.fit();

  // Wheel: zoom about the pointer.
  view.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = view.getBoundingClientRect();
    const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaMode === 2 ? ev.deltaY * 400 : ev.deltaY;
    v.zoomAt(v.scale * Math.exp(-dy * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });

  // Pointers (mouse, pen, fingers): one drags the view, two pinch to zoom.
  const points = new Map();
  let gesture = null;
  const begin = () => {
    const p = [...points.values()];
    if (p.length === 1) gesture = { x: p[0].x, y: p[0].y, tx: v.tx, ty: v.ty };
    else if (p.length >= 2) {
      const mid = { x: (p[0].x + p[1].x) / 2, y: (p[0].y + p[1].y) / 2 };
      gesture = { pinch: true, dist: Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y) || 1, scale: v.scale,
                  ix: (mid.x - v.tx) / v.scale, iy: (mid.y - v.ty) / v.scale };
    } else gesture = null;
    view.classList.toggle("grabbing", !!gesture);
  };
  const at = (ev) => { const r = view.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; };
  view.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".divider") || ev.button > 0) return;
    ev.preventDefault();
    view.focus({ preventScroll: true });
    view.setPointerCapture(ev.pointerId);
    points.set(ev.pointerId, at(ev));
    begin();
  });
  view.addEventListener("pointermove", (ev) => {
    if (!points.has(ev.pointerId) || !gesture) return;
    points.set(ev.pointerId, at(ev));
    const p = [...points.values()];
    if (gesture.pinch && p.length >= 2) {
      const [lo, hi] = limits();
      const s = Math.min(hi, Math.max(lo, gesture.scale * Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y) / gesture.dist));
      const mid = { x: (p[0].x + p[1].x) / 2, y: (p[0].y + p[1].y) / 2 };
      Object.assign(v, { scale: s, tx: mid.x - gesture.ix * s, ty: mid.y - gesture.iy * s, mode: "free" });
    } else if (!gesture.pinch) {
      v.tx = gesture.tx + p[0].x - gesture.x;
      v.ty = gesture.ty + p[0].y - gesture.y;
    }
    v.apply();
  });
  const lift = (ev) => { points.delete(ev.pointerId); begin(); };
  view.addEventListener("pointerup", lift);
  view.addEventListener("pointercancel", lift);

  // The divider: dragged (any pointer), or moved with the arrow keys when it has the focus.
  let sliding = false;
  v.divider.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    v.divider.setPointerCapture(ev.pointerId);
    v.divider.focus({ preventScroll: true });
    sliding = true;
  });
  v.divider.addEventListener("pointermove", (ev) => {
    if (!sliding) return;
    const r = view.getBoundingClientRect();
    v.setSplit((100 * (ev.clientX - r.left)) / r.width);
  });
  const stop = () => { sliding = false; };
  v.divider.addEventListener("pointerup", stop);
  v.divider.addEventListener("pointercancel", stop);
  v.divider.addEventListener("keydown", (ev) => {
    const big = ev.shiftKey ? 10 : 2;
    const to = { ArrowLeft: v.split - big, ArrowDown: v.split - big, ArrowRight: v.split + big, ArrowUp: v.split + big,
                 PageDown: v.split - 10, PageUp: v.split + 10, Home: 0, End: 100 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    ev.stopPropagation();
    v.setSplit(to);
  });

  // Keys on the view: + and - zoom, 1 is 1:1, 0 fits, arrows pan.
  view.addEventListener("keydown", (ev) => {
    if (ev.target !== view) return;
    const pan = { ArrowLeft: [60, 0], ArrowRight: [-60, 0], ArrowUp: [0, 60], ArrowDown: [0, -60] }[ev.key];
    if (ev.key === "+" || ev.key === "=") v.zoomBy(1.25);
    else if (ev.key === "-" || ev.key === "_") v.zoomBy(0.8);
    else if (ev.key === "1") v.oneToOne();
    else if (ev.key === "0") v.fit();
    else if (pan) { v.tx += pan[0]; v.ty += pan[1]; v.apply(); }
    else return;
    ev.preventDefault();
  });
  window.addEventListener("resize", () => { if (v.mode === "fit") v.fit(); else v.apply(); });

  $(".sample").onchange = () => showSample(v, Number($(".sample").value));
  v.setSplit(50);
  return v;
}

function showSample(v, index) {
  const job = v.job;
  const url = withToken(`api/jobs/${job.id}/result?index=${index}`);
  v.after.src = url;
  const link = v.el.querySelector(".download");
  link.href = url;
  link.download = job.data.results[index];
}

// Show a finished job in the compare view (in its photo's panel, if that photo is shown).
function show(job) {
  const photo = job.photo;
  photo.shown = job;
  if (selected !== photo) return;
  if (!viewer) viewer = makeViewer();
  const v = viewer, $ = (sel) => v.el.querySelector(sel);
  photo.$(".viewer-slot").append(v.el);
  v.el.hidden = false;
  markRows();
  if (v.job === job) return;
  const keep = v.job && v.job.photo === photo && v.job.kind === job.kind; // same crop: keep the zoom and pan
  v.job = job;
  const d = job.data;
  $(".viewer-title").textContent = job.kind === "preview" ? `${job.preset} preview (a crop at full resolution)` : `${job.preset}, full size`;
  v.before.onload = () => {
    const fresh = v.w !== v.before.naturalWidth || v.h !== v.before.naturalHeight || !keep;
    v.w = v.before.naturalWidth;
    v.h = v.before.naturalHeight;
    for (const img of [v.before, v.after]) { img.style.width = v.w + "px"; img.style.height = v.h + "px"; }
    const width = v.view.clientWidth || 800;
    const natural = v.h * Math.min(1 / dpr(), width / v.w);
    v.view.style.height = Math.round(Math.min(window.innerHeight * 0.75, Math.max(300, natural))) + "px";
    if (!fresh) { v.apply(); return; }
    v.scale = 1 / dpr();
    const fits = Math.min(v.view.clientWidth / v.w, v.view.clientHeight / v.h);
    if (job.kind === "full" && fits < v.scale) v.fit(); // a large photo whole; a crop or a small one at 1:1
    else { v.mode = "one"; v.tx = (v.view.clientWidth - v.w * v.scale) / 2; v.ty = (v.view.clientHeight - v.h * v.scale) / 2; v.apply(); }
  };
  v.before.src = withToken(`api/jobs/${job.id}/before`);
  const sample = $(".sample");
  sample.textContent = "";
  sample.hidden = d.results.length < 2;
  d.results.forEach((name, i) => sample.add(new Option(`sample ${i + 1} of ${d.results.length}`, String(i))));
  showSample(v, 0);
  $(".download").textContent = job.kind === "preview" ? "Download this preview" : "Download the result";
  const s = d.settings;
  const recipe = s.steps ? `${s.steps} step${s.steps > 1 ? "s" : ""}, ${s.samples} sample${s.samples > 1 ? "s" : ""}${s.average && s.samples > 1 ? " averaged" : ""}` : "one network pass";
  $(".info").textContent = `${d.results[0]} · ${recipe} · seed ${d.seed} · ${seconds(d.seconds)}`;
  const notes = $(".notes");
  notes.textContent = "";
  for (const n of d.notes || []) notes.append(el("li", null, n));
  const kfig = $(".kernelfig");
  kfig.hidden = !d.kernel;
  if (d.kernel) {
    const kimg = $(".kernel-img");
    kimg.hidden = !d.kernel.image;
    if (d.kernel.image) kimg.src = withToken(`api/jobs/${job.id}/kernel`);
    kfig.querySelector("figcaption").textContent = d.kernel.image
      ? `The blur kernel found (${d.kernel.path === "kernel" ? "used" : "not used"}): ${d.kernel.reason || ""}`
      : `No blur kernel: ${d.kernel.reason || "none found"}`;
  }
  $(".stdfig").hidden = !d.std;
  if (d.std) $(".stdmap").src = withToken(`api/jobs/${job.id}/std`);
}

// -- start -------------------------------------------------------------------------------------

async function main() {
  info = await api("api/info");
  document.getElementById("model").textContent = `model ${info.model}, deblur ${info.version}`;
  const input = document.getElementById("files"), drop = document.getElementById("drop");
  const add = async (files) => {
    let first = null;
    for (const f of files) { const p = await addPhoto(f); first = first || p; }
    if (first) select(first);
  };
  input.onchange = () => { add([...input.files]); input.value = ""; };
  // Photos dropped anywhere on the page are added.
  document.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (ev) => { if (!ev.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    add([...ev.dataTransfer.files]);
  });
  poll();
}
main();
