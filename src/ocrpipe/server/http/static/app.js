// ocrpipe web page: upload -> POST /v1/jobs -> poll the job -> draw the page with boxes and text.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { jobId: null, result: null, page: 0, image: null, polling: null };

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// API key, when the server requires one (401): asked once, kept for this browser tab only.
function authHeaders() {
  const key = sessionStorage.getItem("ocrpipe-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}, retried = false) {
  const sent = sessionStorage.getItem("ocrpipe-key");
  const resp = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (resp.status === 401 && !retried) {
    // requests sent before the key was given (the job list on load, an upload) all come back 401:
    // the first asks, the others retry with the key it stored
    const stored = sessionStorage.getItem("ocrpipe-key");
    const key = stored && stored !== sent ? stored
      : window.prompt("This server needs an API key (from `ocrpipe keys create`):");
    if (key) {
      sessionStorage.setItem("ocrpipe-key", key.trim());
      return api(path, options, true);
    }
  }
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const err = body?.error || { code: "http_" + resp.status, message: resp.statusText };
    throw Object.assign(new Error(err.message), { code: err.code, status: resp.status });
  }
  return body;
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  $("#submit-btn").disabled = true;
  setStatus(`Uploading ${file.name}…`);
  try {
    const job = await api("/v1/jobs", { method: "POST", body: form });
    setStatus(`Job ${job.id.slice(0, 8)} queued`);
    await refreshJobs();
    watch(job.id);
  } catch (e) {
    setStatus(`Upload refused: ${e.message} [${e.code}]`, true);
  } finally {
    $("#submit-btn").disabled = false;
  }
}

function watch(jobId) {
  clearTimeout(state.polling);
  state.jobId = jobId;
  const tick = async () => {
    if (state.jobId !== jobId) return;
    try {
      const job = await api(`/v1/jobs/${jobId}`);
      markSelected();
      if (job.status === "succeeded") {
        setStatus(`Job ${jobId.slice(0, 8)} done: ${job.pages} page(s) in ${Math.round(job.duration_ms)} ms`);
        await refreshJobs();
        await showResult(job);
      } else if (job.status === "failed") {
        setStatus(`Job ${jobId.slice(0, 8)} failed at ${job.error.stage}: ${job.error.message} [${job.error.code}]`, true);
        await refreshJobs();
        clearResult(`Failed: ${job.error.code}`);
      } else {
        setStatus(`Job ${jobId.slice(0, 8)} ${job.status}…`);
        state.polling = setTimeout(tick, 700);
      }
    } catch (e) {
      setStatus(`Cannot read job: ${e.message}`, true);
    }
  };
  tick();
}

async function showResult(job) {
  state.result = await api(`/v1/jobs/${job.id}/result`);
  state.page = 0;
  $("#result-title").textContent = job.filename || job.id.slice(0, 8);
  $("#text").textContent = state.result.text;
  await drawPage();
}

function clearResult(message) {
  state.result = null;
  $("#canvas").hidden = true;
  $("#placeholder").hidden = false;
  $("#placeholder").textContent = message;
  $("#text").textContent = "";
  $("#pager").hidden = true;
}

async function loadImage(src) {
  const resp = await fetch(src, { headers: authHeaders() });  // an <img src> could not send the key
  if (!resp.ok) throw new Error("page image unavailable");
  const url = URL.createObjectURL(await resp.blob());
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("page image unavailable")); };
    img.src = url;
  });
}

async function drawPage() {
  const pages = state.result.pages;
  const page = pages[state.page];
  $("#pager").hidden = pages.length < 2;
  $("#page-label").textContent = `page ${state.page + 1} / ${pages.length}`;
  let img = null;
  try {
    img = await loadImage(`/v1/jobs/${state.jobId}/pages/${state.page}`);
  } catch (e) {
    setStatus(e.message, true);
  }
  const canvas = $("#canvas");
  canvas.width = page.width;
  canvas.height = page.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, page.width, page.height);
  if (img) ctx.drawImage(img, 0, 0, page.width, page.height);
  const showText = $("#show-text").checked;
  const scale = Math.max(1, page.width / 1000);
  ctx.lineWidth = 2 * scale;
  for (const line of page.lines) {
    const b = line.box;
    ctx.strokeStyle = line.confidence >= 0.8 ? "rgba(22,163,74,.9)" : "rgba(234,88,12,.9)";
    ctx.beginPath();
    ctx.moveTo(b[0][0], b[0][1]);
    for (let i = 1; i < 4; i++) ctx.lineTo(b[i][0], b[i][1]);
    ctx.closePath();
    ctx.stroke();
    if (showText) {
      const h = Math.max(10 * scale, Math.min(28 * scale, (b[3][1] - b[0][1]) * 0.8));
      ctx.font = `${h}px "Noto Sans KR", "NanumGothic", sans-serif`;
      const w = ctx.measureText(line.text).width;
      ctx.fillStyle = "rgba(255,255,255,.85)";
      ctx.fillRect(b[0][0], b[0][1] - h - 2, w + 6, h + 2);
      ctx.fillStyle = "#1d4ed8";
      ctx.fillText(line.text, b[0][0] + 3, b[0][1] - 4);
    }
  }
  canvas.hidden = false;
  $("#placeholder").hidden = true;
}

async function refreshJobs() {
  let data;
  try {
    data = await api("/v1/jobs?limit=20");
  } catch (e) {
    return;
  }
  const body = $("#jobs tbody");
  body.replaceChildren();
  for (const job of data.jobs) {
    const tr = document.createElement("tr");
    tr.dataset.id = job.id;
    const cells = [job.filename || job.id.slice(0, 8), null, job.pages ?? "", new Date(job.created_at).toLocaleTimeString()];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      if (i === 0) { td.className = "file"; td.title = job.filename || job.id; }
      if (i === 1) {
        const badge = document.createElement("span");
        badge.className = `badge ${job.status}`;
        badge.textContent = job.status;
        td.appendChild(badge);
      } else {
        td.textContent = value;
      }
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => watch(job.id));
    body.appendChild(tr);
  }
  markSelected();
}

function markSelected() {
  for (const tr of document.querySelectorAll("#jobs tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.id === state.jobId);
  }
}

function init() {
  const input = $("#file-input");
  $("#upload-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (input.files.length) upload(input.files[0]);
    else setStatus("Choose a file first", true);
  });
  input.addEventListener("change", () => {
    $("#drop-text").textContent = input.files.length ? input.files[0].name : "Choose or drop an image or PDF";
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files.length) upload(ev.dataTransfer.files[0]);
  });
  $("#prev").addEventListener("click", () => { if (state.page > 0) { state.page--; drawPage(); } });
  $("#next").addEventListener("click", () => {
    if (state.result && state.page < state.result.pages.length - 1) { state.page++; drawPage(); }
  });
  $("#show-text").addEventListener("change", () => { if (state.result) drawPage(); });
  clearResult("Upload a file or pick a job to see its pages with the recognised lines.");
  refreshJobs();
  setInterval(refreshJobs, 5000);
}

init();
