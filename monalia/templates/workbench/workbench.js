// The workbench's only script: decisions by mouse or keyboard, suggestions, heat maps.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function cards() {
  return Array.from(document.querySelectorAll(".card"));
}

function current() {
  return document.querySelector(".card.selected") || cards()[0] || null;
}

function select(card) {
  if (!card) return;
  cards().forEach((c) => c.classList.remove("selected"));
  card.classList.add("selected");
  card.focus({ preventScroll: true });
  card.scrollIntoView({ block: "nearest" });
}

function move(step) {
  const all = cards();
  const at = all.indexOf(current());
  select(all[Math.min(all.length - 1, Math.max(0, at + step))]);
}

async function decide(card, decision) {
  if (!card || document.body.classList.contains("read-only")) return;
  const form = new URLSearchParams();
  form.set("record", card.dataset.record);
  form.set("class", card.dataset.class);
  form.set("kind", card.dataset.kind);
  form.set("decision", decision);
  const comment = card.querySelector(".comment");
  if (comment && decision !== "undo") form.set("comment", comment.value);
  const answer = await fetch("/decide", {
    method: "POST",
    headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
    body: form,
    credentials: "same-origin",
  });
  const body = await answer.json().catch(() => ({ ok: false, error: "no answer" }));
  const shown = card.querySelector(".decision");
  if (!answer.ok || !body.ok) {
    if (shown) shown.textContent = "not saved: " + (body.error || answer.status);
    card.classList.add("failed");
    return;
  }
  card.classList.remove("failed", "status-open", "status-decided", "status-skipped", "status-disputed");
  const status = body.decision === null ? "open" : body.disputed ? "disputed" : body.decision === "skip" ? "skipped" : "decided";
  card.classList.add("status-" + status);
  card.dataset.decision = body.decision || "";
  if (shown) {
    shown.textContent = Object.entries(body.reviewers).map(([who, what]) => who + ": " + what).join(" ") +
      (body.disputed ? " (reviewers disagree)" : "");
  }
  if (comment && decision !== "undo") comment.value = "";
  if (decision !== "undo") move(1);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-decision]");
  if (button) {
    const card = button.closest(".card");
    select(card);
    decide(card, button.dataset.decision);
    return;
  }
  const card = event.target.closest(".card");
  if (card && !event.target.closest("a, input")) select(card);
  const heat = event.target.closest("button.show-heat");
  if (heat) showHeat(heat.dataset.class, heat.dataset.label);
});

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest && event.target.closest("input, textarea, select");
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    if (event.key === "Enter" && event.target.classList.contains("comment")) {
      event.preventDefault();
      event.target.blur();
    }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const card = current();
  const keys = { a: "accept", r: "reject", s: "skip", u: "undo" };
  if (keys[event.key]) {
    event.preventDefault();
    decide(card, keys[event.key]);
  } else if (event.key === "j" || event.key === "ArrowDown") {
    event.preventDefault();
    move(1);
  } else if (event.key === "k" || event.key === "ArrowUp") {
    event.preventDefault();
    move(-1);
  } else if (event.key === "c" && card) {
    const comment = card.querySelector(".comment");
    if (comment) {
      event.preventDefault();
      comment.focus();
    }
  } else if (event.key === "Enter" && card && card.dataset.href) {
    window.location = card.dataset.href;
  }
});

function showHeat(classIndex, label) {
  const box = document.querySelector(".explain");
  if (!box) return;
  const image = box.dataset.image;
  box.querySelector(".view").src = "/explain/" + image + "/" + classIndex + "/view";
  const heat = box.querySelector(".heat");
  heat.src = "/explain/" + image + "/" + classIndex + "/heat";
  box.querySelector(".heat-for").textContent = "Where the model sees " + label + ".";
  box.classList.add("shown");
}

document.addEventListener("input", (event) => {
  if (event.target.classList.contains("opacity")) {
    const heat = document.querySelector(".explain .heat");
    if (heat) heat.style.opacity = event.target.value / 100;
  }
});

let suggesting = null;
document.addEventListener("input", (event) => {
  if (event.target.id !== "search") return;
  clearTimeout(suggesting);
  suggesting = setTimeout(async () => {
    const answer = await fetch("/suggest?q=" + encodeURIComponent(event.target.value));
    if (!answer.ok) return;
    const list = document.getElementById("suggestions");
    list.replaceChildren(...(await answer.json()).map((entry) => {
      const option = document.createElement("option");
      option.value = entry.term;
      option.label = entry.class;
      return option;
    }));
  }, 150);
});

window.addEventListener("DOMContentLoaded", () => {
  select(document.querySelector(".card.focus") || cards()[0]);
  const focus = document.querySelector("table.scores tr.focus button.show-heat");
  if (focus) showHeat(focus.dataset.class, focus.dataset.label);
});

// Drawing a region: "draw" then drag over the picture; the form gets the box in the image's
// own pixels (the picture is shown scaled), and "save" stores it as the curator's region.
document.querySelectorAll(".region-form .draw-box").forEach((button) => {
  button.addEventListener("click", () => {
    const form = button.closest("form");
    const boxed = document.querySelector(".boxed");
    const picture = boxed && boxed.querySelector("img.large");
    if (!picture) return;
    const width = Number(boxed.dataset.width) || picture.naturalWidth;
    const height = Number(boxed.dataset.height) || picture.naturalHeight;
    boxed.classList.add("drawing");
    let start = null;
    let shown = null;
    const at = (event) => {
      const rect = picture.getBoundingClientRect();
      return {
        x: Math.min(Math.max(event.clientX - rect.left, 0), rect.width),
        y: Math.min(Math.max(event.clientY - rect.top, 0), rect.height),
        w: rect.width,
        h: rect.height,
      };
    };
    const down = (event) => {
      event.preventDefault();
      start = at(event);
      shown = document.createElement("div");
      shown.className = "region drawing";
      boxed.appendChild(shown);
    };
    const move = (event) => {
      if (!start) return;
      const now = at(event);
      const left = Math.min(start.x, now.x), top = Math.min(start.y, now.y);
      Object.assign(shown.style, {
        left: `${(100 * left) / now.w}%`,
        top: `${(100 * top) / now.h}%`,
        width: `${(100 * Math.abs(now.x - start.x)) / now.w}%`,
        height: `${(100 * Math.abs(now.y - start.y)) / now.h}%`,
      });
    };
    const up = (event) => {
      if (!start) return;
      const now = at(event);
      const sx = width / now.w, sy = height / now.h;
      const left = Math.min(start.x, now.x), top = Math.min(start.y, now.y);
      const values = {
        x: Math.round(left * sx),
        y: Math.round(top * sy),
        w: Math.max(1, Math.round(Math.abs(now.x - start.x) * sx)),
        h: Math.max(1, Math.round(Math.abs(now.y - start.y) * sy)),
      };
      for (const [key, value] of Object.entries(values)) form.elements[key].value = value;
      start = null;
      boxed.classList.remove("drawing");
      boxed.removeEventListener("mousedown", down);
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
    };
    boxed.addEventListener("mousedown", down);
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
});

// Place the region boxes (percentages of the picture): set here, as the page's policy allows
// no inline styles.
document.querySelectorAll(".boxed .region[data-box]").forEach((box) => {
  const [left, top, width, height] = box.dataset.box.split(",").map(Number);
  Object.assign(box.style, {
    left: `${left}%`,
    top: `${top}%`,
    width: `${width}%`,
    height: `${height}%`,
  });
});

// The map of the collection: points drawn on a canvas, a picture on hover, the record on a
// click, a box dragged selects; a selection can be reviewed for a class like findings.
window.addEventListener("DOMContentLoaded", async () => {
  const canvas = document.getElementById("map");
  if (!canvas) return;
  const context = canvas.getContext("2d");
  const status = document.getElementById("map-status");
  const preview = document.getElementById("map-preview");
  const colourChoice = document.getElementById("map-colour");
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39"];
  const findingColours = ["#c8c8c8", "#d62728", "#1f77b4", "#ff7f0e"];
  const pad = 10;
  const cell = 8;
  let data = null;
  let box = null;
  let start = null;
  const cells = new Map();

  const answer = await fetch(canvas.dataset.points, { credentials: "same-origin" });
  if (!answer.ok) {
    status.textContent = "no map: " + (await answer.text()).slice(0, 300);
    return;
  }
  data = await answer.json();
  const xs = new Float32Array(data.count);
  const ys = new Float32Array(data.count);

  function place() {
    cells.clear();
    for (let i = 0; i < data.count; i++) {
      xs[i] = pad + (data.x[i] / data.grid) * (canvas.width - 2 * pad);
      ys[i] = pad + (1 - data.y[i] / data.grid) * (canvas.height - 2 * pad);
      const key = Math.floor(xs[i] / cell) + "," + Math.floor(ys[i] / cell);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(i);
    }
  }

  function groupOf(i) {
    const by = colourChoice.value;
    if (by === "finding") return data.finding[i];
    return by === "source" ? data.source[i] : data.class[i];
  }

  function colourOf(group) {
    if (colourChoice.value === "finding") return findingColours[group] || "#c8c8c8";
    return group < 0 ? "#c8c8c8" : palette[group % palette.length];
  }

  function names() {
    const by = colourChoice.value;
    if (by === "finding") return data.findings;
    return by === "source" ? data.sources : data.classes;
  }

  function draw() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    const groups = new Map();
    for (let i = 0; i < data.count; i++) {
      const group = groupOf(i);
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(i);
    }
    // the grey of "nothing" first, so the coloured points stay on top
    const order = [...groups.keys()].sort((a, b) => (a <= 0 ? -1 : 0) - (b <= 0 ? -1 : 0));
    for (const group of order) {
      context.fillStyle = colourOf(group);
      for (const i of groups.get(group)) context.fillRect(xs[i] - 1.5, ys[i] - 1.5, 3, 3);
    }
    if (box) {
      context.strokeStyle = "#000";
      context.strokeRect(box.x, box.y, box.w, box.h);
    }
    canvas.dataset.drawn = String(data.count);
    const legend = document.getElementById("map-legend");
    const counts = new Map();
    for (const group of groups.keys()) counts.set(group, groups.get(group).length);
    const labels = names();
    legend.replaceChildren(...[...counts.keys()].sort((a, b) => a - b).map((group) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colourOf(group);
      item.append(swatch, " " + (group < 0 ? "none" : labels[group] || "none") + " (" + counts.get(group) + ")");
      return item;
    }));
  }

  function pointer(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  function nearest(at) {
    let best = -1;
    let bestDistance = 36;
    const cx = Math.floor(at.x / cell);
    const cy = Math.floor(at.y / cell);
    for (let dx = -1; dx <= 1; dx++) {
      for (let dy = -1; dy <= 1; dy++) {
        for (const i of cells.get(cx + dx + "," + (cy + dy)) || []) {
          const distance = (xs[i] - at.x) ** 2 + (ys[i] - at.y) ** 2;
          if (distance < bestDistance) {
            bestDistance = distance;
            best = i;
          }
        }
      }
    }
    return best;
  }

  canvas.addEventListener("mousedown", (event) => {
    start = pointer(event);
  });
  canvas.addEventListener("mousemove", (event) => {
    const at = pointer(event);
    if (start) {
      box = { x: Math.min(start.x, at.x), y: Math.min(start.y, at.y),
        w: Math.abs(at.x - start.x), h: Math.abs(at.y - start.y) };
      draw();
      return;
    }
    const i = nearest(at);
    if (i < 0) {
      preview.classList.remove("shown");
      return;
    }
    preview.src = "/image/" + data.image[i] + "/thumb";
    preview.dataset.record = String(data.record[i]);
    preview.style.left = event.offsetX + 16 + "px";
    preview.style.top = event.offsetY + 16 + "px";
    preview.classList.add("shown");
  });
  canvas.addEventListener("mouseup", async (event) => {
    const at = pointer(event);
    const from = start;
    start = null;
    if (!from) return;
    if (Math.abs(at.x - from.x) < 4 && Math.abs(at.y - from.y) < 4) {
      box = null;
      draw();
      const i = nearest(at);
      if (i >= 0) window.location = "/map/open/" + data.record[i];
      return;
    }
    const chosen = [];
    for (let i = 0; i < data.count; i++) {
      if (xs[i] >= box.x && xs[i] <= box.x + box.w && ys[i] >= box.y && ys[i] <= box.y + box.h) {
        chosen.push(data.record[i]);
      }
    }
    await showSelection(chosen);
  });
  canvas.addEventListener("mouseleave", () => preview.classList.remove("shown"));
  colourChoice.addEventListener("change", draw);

  async function showSelection(records) {
    const section = document.getElementById("map-selection");
    const list = document.getElementById("map-selection-list");
    const form = new FormData();
    form.set("records", records.join(","));
    const reply = await fetch("/map/selection", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
      body: form,
      credentials: "same-origin",
    });
    if (!reply.ok) return;
    const body = await reply.json();
    document.getElementById("map-selection-title").textContent =
      "Selection: " + body.selected + " records" +
      (body.records.length < body.selected ? " (the first " + body.records.length + " listed)" : "");
    const reviewClass = document.getElementById("map-review-class");
    list.replaceChildren(...body.records.map((record) => {
      const item = document.createElement("li");
      item.className = "selected-record";
      item.dataset.record = record.iri;
      if (record.image) {
        const picture = document.createElement("img");
        picture.src = "/image/" + record.image + "/thumb";
        picture.alt = "";
        item.append(picture);
      }
      const link = document.createElement("a");
      link.href = "/record?iri=" + encodeURIComponent(record.iri);
      link.textContent = record.title || record.iri;
      item.append(link);
      if (reviewClass) {
        for (const [decision, text] of [["accept", "shows it"], ["reject", "does not"]]) {
          const button = document.createElement("button");
          button.textContent = text;
          button.dataset.decision = decision;
          button.addEventListener("click", async () => {
            const decide = new FormData();
            decide.set("record", record.iri);
            decide.set("class", reviewClass.value);
            decide.set("kind", "search");
            decide.set("decision", decision);
            const saved = await fetch("/decide", {
              method: "POST",
              headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
              body: decide,
              credentials: "same-origin",
            });
            item.classList.toggle("decided", saved.ok);
            item.dataset.decision = saved.ok ? decision : "failed";
          });
          item.append(" ", button);
        }
      }
      return item;
    }));
    section.hidden = false;
  }

  place();
  draw();
  status.textContent = data.count + " records (" + data.method + ")";
});
