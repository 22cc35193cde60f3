// ocrpipe template editor: reference + values -> POST /v1/admin/templates/drafts (the fields `ocrpipe template new`
// proposes) -> move, resize, rename and retype them over the reference -> try on other pages -> save into the
// server's --templates folder (POST /v1/admin/templates), served at once. Uses api() and loadImage() of app.js.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const FIELD_NAME = /^[\p{L}_][\p{L}\p{N}_]*$/u;
const tpl = { draft: null, template: null, selected: null, drag: null, width: 0, height: 0 };

function tplStatus(text, isError = false) {
  const el = $("#tpl-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function svgEl(name, attrs = {}) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function el(name, attrs = {}, text = null) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// ---- values ------------------------------------------------------------------------------------------

function addValueRow(name = "", value = "") {
  const tr = document.createElement("tr");
  const nameIn = el("input", { class: "v-name", placeholder: "R_S" });
  const valueIn = el("input", { class: "v-value", placeholder: "-2.25" });
  nameIn.value = name;
  valueIn.value = value;
  const del = el("button", { type: "button", title: "remove" }, "×");
  del.addEventListener("click", () => tr.remove());
  for (const c of [nameIn, valueIn, del]) { const td = document.createElement("td"); td.appendChild(c); tr.appendChild(td); }
  $("#tpl-values tbody").appendChild(tr);
  return tr;
}

function readValues() {
  const values = {};
  for (const tr of document.querySelectorAll("#tpl-values tbody tr")) {
    const name = tr.querySelector(".v-name").value.trim();
    const value = tr.querySelector(".v-value").value.trim();
    if (name || value) values[name] = value;
  }
  return values;
}

// ---- proposing -------------------------------------------------------------------------------------

async function propose() {
  const file = $("#tpl-ref").files[0];
  const name = $("#tpl-name").value.trim();
  const values = readValues();
  if (!file) return tplStatus("Choose a reference image first", true);
  if (!name) return tplStatus("Give the template a name", true);
  if (!Object.keys(values).length) return tplStatus("Enter at least one value printed on the reference", true);
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("values", JSON.stringify(values));
  form.append("name", name);
  if ($("#tpl-device").value.trim()) form.append("device", $("#tpl-device").value.trim());
  $("#tpl-propose").disabled = true;
  tplStatus(`Reading ${file.name} and locating ${Object.keys(values).length} values…`);
  try {
    const draft = await api("/v1/admin/templates/drafts", { method: "POST", body: form });
    // the previous unsaved draft (its reference may show a patient's data) is not kept for a day
    if (tpl.draft) api(`/v1/admin/templates/drafts/${tpl.draft.id}`, { method: "DELETE" }).catch(() => {});
    tpl.draft = draft;
    tpl.template = draft.template;
    tpl.values = { ...draft.values };  // the printed values by field name, renamed with their fields
    tpl.width = draft.width;
    tpl.height = draft.height;
    tpl.selected = null;
    const img = await loadImage(draft.reference_url);
    tpl.imageUrl = await blobUrl(img);
    drawReference();
    renderFields();
    $("#tpl-editing").hidden = false;
    $("#tpl-results").replaceChildren();
    const missing = draft.missing.length ? ` Not found: ${draft.missing.join(", ")}.` : "";
    const problems = draft.check.problems.length ? ` Not read back: ${draft.check.problems.join("; ")}.` : "";
    tplStatus(`${tpl.template.fields.length} fields proposed.${missing}${problems}`,
              Boolean(draft.missing.length || draft.check.problems.length));
  } catch (e) {
    tplStatus(`Refused: ${e.message} [${e.code}]`, true);
  } finally {
    $("#tpl-propose").disabled = false;
  }
}

// loadImage() revokes its object URL once loaded: keep a URL of our own for the SVG <image>.
async function blobUrl(img) {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  if (tpl.imageUrl) URL.revokeObjectURL(tpl.imageUrl);
  return URL.createObjectURL(blob);
}

// ---- the reference with its fields -------------------------------------------------------------------

function drawReference() {
  const svg = $("#tpl-svg");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${tpl.width} ${tpl.height}`);
  svg.appendChild(svgEl("image", { href: tpl.imageUrl, x: 0, y: 0, width: tpl.width, height: tpl.height }));
  const boxes = svgEl("g", { id: "tpl-boxes" });
  svg.appendChild(boxes);
  svg.removeAttribute("hidden");  // an SVG element has no .hidden property
  $("#tpl-placeholder").hidden = true;
  $("#tpl-view-title").textContent = `Reference: ${tpl.template.name} (${tpl.width}×${tpl.height})`;
  drawBoxes();
}

function px(region) {
  const [x0, y0, x1, y1] = region;
  return { x: x0 * tpl.width, y: y0 * tpl.height, w: (x1 - x0) * tpl.width, h: (y1 - y0) * tpl.height };
}

function drawBoxes() {
  const g = $("#tpl-boxes");
  if (!g) return;
  g.replaceChildren();
  tpl.template.fields.forEach((f, i) => {
    for (const lab of [f.label, f.column]) {
      if (!lab) continue;
      const b = px(lab.region);
      g.appendChild(svgEl("rect", { class: "label-box", x: b.x, y: b.y, width: b.w, height: b.h }));
    }
    const b = px(f.region);
    const group = svgEl("g", { "data-field": i });
    group.appendChild(svgEl("rect", { class: "field-box" + (tpl.selected === i ? " selected" : ""), x: b.x, y: b.y,
                                      width: b.w, height: b.h, "data-name": f.name }));
    const hs = Math.max(8, tpl.width / 120);
    group.appendChild(svgEl("rect", { class: "handle", x: b.x + b.w - hs / 2, y: b.y + b.h - hs / 2, width: hs, height: hs }));
    const label = svgEl("text", { class: "field-name", x: b.x, y: Math.max(14, b.y - 4) });
    label.textContent = f.name;
    group.appendChild(label);
    g.appendChild(group);
  });
}

function svgPoint(ev) {
  const svg = $("#tpl-svg");
  const pt = svg.createSVGPoint();
  pt.x = ev.clientX;
  pt.y = ev.clientY;
  return pt.matrixTransform(svg.getScreenCTM().inverse());
}

const round4 = (v) => Math.round(v * 10000) / 10000;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function onPointerDown(ev) {
  const group = ev.target.closest("[data-field]");
  if (!group) return;
  const index = Number(group.dataset.field);
  select(index);
  tpl.drag = { index, resize: ev.target.classList.contains("handle"), start: svgPoint(ev),
               region: [...tpl.template.fields[index].region] };
  $("#tpl-svg").setPointerCapture(ev.pointerId);
  ev.preventDefault();
}

function onPointerMove(ev) {
  const d = tpl.drag;
  if (!d) return;
  const p = svgPoint(ev);
  const dx = (p.x - d.start.x) / tpl.width;
  const dy = (p.y - d.start.y) / tpl.height;
  let [x0, y0, x1, y1] = d.region;
  const minW = 4 / tpl.width, minH = 4 / tpl.height;
  if (d.resize) {
    x1 = clamp(x1 + dx, x0 + minW, 1);
    y1 = clamp(y1 + dy, y0 + minH, 1);
  } else {
    const sx = clamp(dx, -x0, 1 - x1), sy = clamp(dy, -y0, 1 - y1);
    x0 += sx; x1 += sx; y0 += sy; y1 += sy;
  }
  tpl.template.fields[d.index].region = [x0, y0, x1, y1].map(round4);
  drawBoxes();
}

function onPointerUp() {
  tpl.drag = null;
}

function select(index) {
  tpl.selected = index;
  drawBoxes();
  document.querySelectorAll("#tpl-fields tbody tr").forEach((tr, i) => tr.classList.toggle("selected", i === index));
}

// ---- the field table -----------------------------------------------------------------------------------

const TYPES = ["text", "number", "date"];

function retype(f, type) {
  if (f.type === type) return;
  f.type = type;
  // the inferred rule, whitelist and format belong to the old type
  for (const k of ["format", "whitelist", "validation", "normalize", "unit"]) delete f[k];
  if (type === "date") f.format = "%Y-%m-%d";
}

function renderFields() {
  const body = $("#tpl-fields tbody");
  body.replaceChildren();
  tpl.template.fields.forEach((f, i) => {
    const tr = document.createElement("tr");
    tr.dataset.index = i;
    const name = el("input", { class: "f-name", "aria-label": "field name" });
    name.value = f.name;
    name.addEventListener("change", () => {
      const v = name.value.trim();
      if (!FIELD_NAME.test(v) || tpl.template.fields.some((o, j) => j !== i && o.name === v)) {
        tplStatus(`Field name ${JSON.stringify(v)}: letters, digits and _, not starting with a digit, unique`, true);
        name.value = f.name;
        return;
      }
      if (f.name in tpl.values) {
        tpl.values[v] = tpl.values[f.name];
        delete tpl.values[f.name];
      }
      f.name = v;
      drawBoxes();
    });
    const type = el("select", { class: "f-type", "aria-label": "field type" });
    for (const t of TYPES) { const o = el("option", { value: t }, t); type.appendChild(o); }
    if (!TYPES.includes(f.type)) type.appendChild(el("option", { value: f.type }, f.type));
    type.value = f.type;
    const extra = el("input", { class: "f-extra", "aria-label": "format or unit" });
    const regex = el("input", { class: "f-regex", "aria-label": "validation regex" });
    const fill = () => {
      extra.value = f.type === "date" ? (f.format || "") : (f.unit || "");
      extra.placeholder = f.type === "date" ? "%Y.%m.%d" : "unit";
      regex.value = f.validation?.regex || "";
    };
    fill();
    type.addEventListener("change", () => { retype(f, type.value); fill(); });
    extra.addEventListener("change", () => {
      const v = extra.value.trim();
      if (f.type === "date") f.format = v || "%Y-%m-%d";
      else if (v) f.unit = v; else delete f.unit;
    });
    regex.addEventListener("change", () => {
      const v = regex.value.trim();
      f.validation = { ...(f.validation || {}) };
      if (v) f.validation.regex = v; else delete f.validation.regex;
    });
    const anchors = el("span", { class: "f-anchors" });
    for (const key of ["label", "column"]) {
      const lab = f[key];
      if (!lab) continue;
      const chip = el("span", { class: "anchor", title: `placed against the ${lab.side === "above" ? "column header" : "row label"} "${lab.text}"` },
                      `${lab.side === "above" ? "↑" : "←"} ${lab.text} `);
      const drop = el("button", { type: "button", class: "drop-anchor", title: "not anchored to this label" }, "×");
      drop.addEventListener("click", () => {
        delete f[key];
        if (key === "label" && f.column) { f.label = { ...f.column, follow: "xy" }; delete f.column; }
        renderFields();
      });
      chip.appendChild(drop);
      anchors.appendChild(chip);
    }
    const del = el("button", { type: "button", class: "remove-field", title: "remove field" }, "×");
    del.addEventListener("click", () => {
      tpl.template.fields.splice(i, 1);
      tpl.selected = null;
      renderFields();
      drawBoxes();
    });
    for (const c of [name, type, extra, regex, anchors, del]) { const td = document.createElement("td"); td.appendChild(c); tr.appendChild(td); }
    tr.addEventListener("focusin", () => select(i));
    body.appendChild(tr);
  });
  select(tpl.selected);
}

function addField() {
  const names = new Set(tpl.template.fields.map((f) => f.name));
  let n = tpl.template.fields.length + 1;
  while (names.has(`field_${n}`)) n++;
  tpl.template.fields.push({ name: `field_${n}`, type: "text", region: [0.4, 0.45, 0.6, 0.5] });
  tpl.selected = tpl.template.fields.length - 1;
  renderFields();
}

function currentTemplate() {
  const name = $("#tpl-name").value.trim();
  const device = $("#tpl-device").value.trim();
  return { ...tpl.template, name: name || tpl.template.name, device: device || tpl.template.device };
}

// ---- trying ----------------------------------------------------------------------------------------------

async function tryOn(file) {
  const form = new FormData();
  form.append("template", JSON.stringify(currentTemplate()));
  if (file) form.append("file", file, file.name);
  else form.append("values", JSON.stringify(tpl.values));
  return api(`/v1/admin/templates/drafts/${tpl.draft.id}/try`, { method: "POST", body: form });
}

function resultCard(title, res, imageUrl) {
  const card = el("div", { class: "result" });
  const head = el("h4", {}, title + ": ");
  const verdict = res.matched
    ? el("span", { class: res.valid ? "ok" : "bad" }, `matched (score ${res.score.toFixed(3)})${res.valid ? ", all valid" : ", some fields flagged"}`)
    : el("span", { class: "bad" }, `not matched: ${res.reason}`);
  head.appendChild(verdict);
  card.appendChild(head);
  if (res.matched) {
    const table = el("table", { class: "try-fields" });
    table.appendChild(el("thead")).appendChild(document.createElement("tr"));
    for (const h of ["Field", "Value", "Valid", "Issues"]) table.tHead.rows[0].appendChild(el("th", {}, h));
    const body = table.appendChild(document.createElement("tbody"));
    for (const f of res.fields) {
      const tr = body.appendChild(document.createElement("tr"));
      tr.dataset.field = f.name;
      const value = f.value === null ? "—" : String(f.value) + (f.unit ? ` ${f.unit}` : "");
      tr.appendChild(el("td", {}, f.name));
      tr.appendChild(el("td", { class: "value" }, value));
      tr.appendChild(el("td", { class: f.valid ? "ok valid" : "bad valid" }, f.valid ? "yes" : "no"));
      tr.appendChild(el("td", { class: "issues" }, f.issues.join("; ")));
    }
    card.appendChild(table);
    if (imageUrl) {
      const svg = svgEl("svg", { viewBox: `0 0 ${res.width} ${res.height}` });
      svg.appendChild(svgEl("image", { href: imageUrl, x: 0, y: 0, width: res.width, height: res.height }));
      for (const f of res.fields) {
        svg.appendChild(svgEl("polygon", { class: f.valid ? "ok" : "bad", points: f.box.map((p) => p.join(",")).join(" ") }));
      }
      card.appendChild(svg);
    }
  }
  if (res.problems?.length) {
    const ul = el("ul");
    for (const p of res.problems) ul.appendChild(el("li", { class: "bad" }, p));
    card.appendChild(ul);
  }
  return card;
}

async function runTries(files, label) {
  const out = $("#tpl-results");
  out.replaceChildren();
  $("#tpl-try").disabled = $("#tpl-check").disabled = true;
  try {
    for (const file of files) {
      tplStatus(`Trying the template on ${file ? file.name : "the reference"}…`);
      try {
        const res = await tryOn(file);
        out.appendChild(resultCard(file ? file.name : label, res, file ? URL.createObjectURL(file) : tpl.imageUrl));
      } catch (e) {
        out.appendChild(el("div", { class: "result bad" }, `${file ? file.name : label}: ${e.message} [${e.code}]`));
      }
    }
    tplStatus(`Tried on ${files.length} page(s)`);
  } finally {
    $("#tpl-try").disabled = $("#tpl-check").disabled = false;
  }
}

// ---- saving and the served set -------------------------------------------------------------------------

async function save() {
  $("#tpl-save").disabled = true;
  tplStatus("Saving…");
  try {
    const saved = await api("/v1/admin/templates", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ draft: tpl.draft.id, template: currentTemplate(), replace: $("#tpl-replace").checked }),
    });
    tplStatus(`Saved ${saved.name} to ${saved.source}; in service now`);
    tpl.draft = null;
    $("#tpl-editing").hidden = true;
    await refreshServed();
  } catch (e) {
    tplStatus(`Not saved: ${e.message} [${e.code}]`, true);
  } finally {
    $("#tpl-save").disabled = false;
  }
}

async function refreshServed() {
  let data;
  try {
    data = await api("/v1/templates");
  } catch (e) {
    $("#tpl-served-info").textContent = `Cannot list the templates: ${e.message}`;
    return;
  }
  $("#tpl-served-info").textContent = (data.folder ? `Saved into ${data.folder}.` : "This server has no template folder (start it with --templates DIR) to save into.")
    + (data.reload_error ? ` Last reload refused: ${data.reload_error}` : "");
  const body = $("#tpl-served tbody");
  body.replaceChildren();
  for (const t of data.templates) {
    const tr = body.appendChild(document.createElement("tr"));
    tr.dataset.name = t.name;
    for (const v of [t.name, t.device, t.version, (t.source || "").split("/").pop()]) tr.appendChild(el("td", {}, v));
    const td = tr.appendChild(document.createElement("td"));
    if (data.folder && t.source && t.source.startsWith(data.folder)) {
      const del = el("button", { type: "button", class: "remove", title: `take ${t.name} out of service` }, "×");
      del.addEventListener("click", () => removeTemplate(t.name));
      td.appendChild(del);
    }
  }
}

async function removeTemplate(name) {
  if (!window.confirm(`Take the template ${name} out of service and delete its file?`)) return;
  try {
    await api(`/v1/admin/templates/${encodeURIComponent(name)}`, { method: "DELETE" });
    tplStatus(`Removed ${name}`);
  } catch (e) {
    tplStatus(`Not removed: ${e.message} [${e.code}]`, true);
  }
  await refreshServed();
}

function showView(name) {
  $("#ocr-view").hidden = name !== "ocr";
  $("#templates-view").hidden = name !== "templates";
  $("#tab-ocr").classList.toggle("active", name === "ocr");
  $("#tab-templates").classList.toggle("active", name === "templates");
  if (name === "templates") refreshServed();
}

function initEditor() {
  $("#tab-ocr").addEventListener("click", () => showView("ocr"));
  $("#tab-templates").addEventListener("click", () => showView("templates"));
  $("#tpl-add-value").addEventListener("click", () => addValueRow().querySelector("input").focus());
  $("#tpl-form").addEventListener("submit", (ev) => { ev.preventDefault(); propose(); });
  $("#tpl-add-field").addEventListener("click", addField);
  $("#tpl-check").addEventListener("click", () => runTries([null], "reference"));
  $("#tpl-try").addEventListener("click", () => {
    const files = [...$("#tpl-try-files").files];
    if (!files.length) return tplStatus("Choose one or more pages to try the template on", true);
    runTries(files, "");
  });
  $("#tpl-save").addEventListener("click", save);
  const svg = $("#tpl-svg");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", onPointerUp);
  addValueRow();
  if (location.hash === "#templates") showView("templates");
}

initEditor();
