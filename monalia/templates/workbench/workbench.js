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
