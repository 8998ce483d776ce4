// The page: every action is a call to the HTTP API the scripts can use too.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { "X-Deblur-Token": token } : {};
const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url);
let info = null;

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...headers, ...(options.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

async function submit(file, fields) {
  const form = new FormData();
  form.append("image", file, file.name);
  for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== null && v !== undefined) form.append(k, v);
  return api("api/restore", { method: "POST", body: form });
}

// Poll a job until it ends; onProgress(job) on every answer.
async function follow(id, onProgress) {
  for (;;) {
    const job = await api(`api/jobs/${id}`);
    onProgress(job);
    if (["done", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((ok) => setTimeout(ok, 400));
  }
}

function describe(job) {
  if (job.status === "running") {
    const steps = job.steps ? ` step ${job.step}/${job.steps}` : "";
    const eta = job.eta_seconds != null ? `, about ${Math.ceil(job.eta_seconds)} s left` : "";
    return `running${steps}${eta}`;
  }
  return job.status + (job.error ? `: ${job.error}` : "");
}

function addPhoto(file) {
  const card = document.getElementById("card").content.firstElementChild.cloneNode(true);
  const $ = (sel) => card.querySelector(sel);
  $(".name").textContent = file.name;
  document.getElementById("photos").prepend(card);
  const select = $(".preset");
  for (const [name, p] of Object.entries(info.presets)) {
    const o = new Option(`${name}: ${p.help}`, name, false, name === info.recommended);
    select.add(o);
  }
  const showError = (e) => { $(".error").hidden = false; $(".error").textContent = String(e.message || e); };

  // The region: the centre crop unless the user drags a box on the thumbnail.
  let region = "preview";
  const thumb = $(".thumb"), box = $(".box");
  thumb.src = URL.createObjectURL(file);
  thumb.onerror = () => { $(".picker").hidden = true; };
  let start = null;
  thumb.addEventListener("pointerdown", (ev) => { ev.preventDefault(); start = [ev.offsetX, ev.offsetY]; });
  thumb.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const [x0, y0] = start, x1 = ev.offsetX, y1 = ev.offsetY;
    Object.assign(box.style, { left: Math.min(x0, x1) + "px", top: Math.min(y0, y1) + "px",
      width: Math.abs(x1 - x0) + "px", height: Math.abs(y1 - y0) + "px" });
    box.hidden = false;
  });
  window.addEventListener("pointerup", () => {
    if (!start) return;
    start = null;
    const s = thumb.naturalWidth / thumb.clientWidth;
    const x = Math.round(box.offsetLeft * s), y = Math.round(box.offsetTop * s);
    const w = Math.round(box.offsetWidth * s), h = Math.round(box.offsetHeight * s);
    if (w >= 16 && h >= 16) region = `${x},${y},${w},${h}`;
    else { region = "preview"; box.hidden = true; }
  });

  $(".preview").onclick = async () => {
    $(".preview").disabled = true;
    $(".error").hidden = true;
    const grid = $(".previews");
    grid.textContent = "";
    const seed = $(".seed").value;
    try {
      let first = true;
      for (const name of Object.keys(info.presets)) {
        const fig = document.createElement("figure");
        fig.innerHTML = `<img alt="${name}"><figcaption>${name}: waiting</figcaption>`;
        fig.onclick = () => { select.value = name; grid.querySelectorAll("figure").forEach((f) => f.classList.toggle("chosen", f === fig)); };
        if (first) {
          const before = document.createElement("figure");
          before.innerHTML = `<img alt="input"><figcaption>input</figcaption>`;
          grid.append(before);
        }
        grid.append(fig);
        const { id } = await submit(file, { preset: name, region, seed });
        const job = await follow(id, (j) => { fig.querySelector("figcaption").textContent = `${name}: ${describe(j)}`; });
        if (job.status !== "done") continue;
        fig.querySelector("img").src = withToken(`api/jobs/${id}/result`);
        fig.querySelector("figcaption").textContent = `${name} (${job.seconds.toFixed(1)} s)`;
        if (first) grid.querySelector("figure img").src = withToken(`api/jobs/${id}/before`);
        first = false;
      }
    } catch (e) { showError(e); }
    $(".preview").disabled = false;
  };

  $(".full").onclick = async () => {
    $(".full").disabled = true;
    $(".error").hidden = true;
    $(".job").hidden = false;
    const bar = $("progress"), state = $(".state");
    const fields = { preset: select.value };
    for (const k of ["steps", "noise_ceiling", "samples", "seed"]) fields[k] = $("." + k).value;
    if ($(".average").checked) fields.average = "true";
    if ($(".std").checked) fields.std = "true";
    try {
      const { id } = await submit(file, fields);
      const job = await follow(id, (j) => { bar.value = j.progress; state.textContent = describe(j); });
      if (job.status !== "done") throw new Error(describe(job));
      showResult(card, id, job);
    } catch (e) { showError(e); }
    $(".full").disabled = false;
  };
}

function showResult(card, id, job) {
  const $ = (sel) => card.querySelector(sel);
  $(".result").hidden = false;
  const before = $(".before"), after = $(".after"), clip = $(".after-clip");
  const fit = () => { after.style.width = before.clientWidth + "px"; };
  before.onload = fit;
  window.addEventListener("resize", fit);
  before.src = withToken(`api/jobs/${id}/before`);
  after.src = withToken(`api/jobs/${id}/result`);
  $(".split").oninput = (ev) => { clip.style.width = ev.target.value + "%"; };
  const link = $(".download");
  link.href = withToken(`api/jobs/${id}/result`);
  link.download = job.results[0];
  $(".info").textContent = `${job.results[0]}, ${job.size[0]}x${job.size[1]}, seed ${job.seed}, ${job.seconds.toFixed(1)} s`;
  if (job.std) { $(".stdfig").hidden = false; $(".stdmap").src = withToken(`api/jobs/${id}/std`); }
}

async function main() {
  info = await api("api/info");
  document.getElementById("model").textContent = `model ${info.model}, deblur ${info.version}`;
  const input = document.getElementById("files"), drop = document.getElementById("drop");
  input.onchange = () => { for (const f of input.files) addPhoto(f); input.value = ""; };
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    for (const f of ev.dataTransfer.files) addPhoto(f);
  });
}
main();
