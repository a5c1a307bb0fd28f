// Z Image — progressive enhancement. Every form works without this file;
// with it, generation runs without a page reload and shows live progress
// over Server-Sent Events (/api/v1/events).
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Theme: "system" (default), "light" or "dark", remembered per browser.
  function applyTheme(t) {
    if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
  }
  applyTheme(localStorage.getItem("zimage-theme"));
  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-theme-toggle]");
    if (!b) return;
    const order = ["system", "light", "dark"];
    const cur = localStorage.getItem("zimage-theme") || "system";
    const next = order[(order.indexOf(cur) + 1) % order.length];
    localStorage.setItem("zimage-theme", next);
    applyTheme(next);
    b.textContent = "Theme: " + next;
  });
  document.querySelectorAll("[data-theme-toggle]").forEach((b) => {
    b.hidden = false;
    b.textContent = "Theme: " + (localStorage.getItem("zimage-theme") || "system");
  });

  // Copy buttons: <button data-copy="text">.
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("[data-copy]");
    if (!b) return;
    try {
      await navigator.clipboard.writeText(b.dataset.copy);
      const old = b.textContent;
      b.textContent = "Copied";
      setTimeout(() => (b.textContent = old), 1200);
    } catch (_) {
      b.textContent = "Copy failed: select the text instead";
    }
  });

  // Double-submit guard for every form: the first submit disables its
  // buttons; the server keeps what was typed if it refuses the form.
  document.addEventListener("submit", (e) => {
    const f = e.target;
    if (f.dataset.submitting) { e.preventDefault(); return; }
    f.dataset.submitting = "1";
    setTimeout(() => f.querySelectorAll("button[type=submit], button:not([type])").forEach((b) => (b.disabled = true)), 0);
    setTimeout(() => { delete f.dataset.submitting; f.querySelectorAll("button").forEach((b) => (b.disabled = false)); }, 8000);
  }, true);

  // Gallery: select all, and the count on the bulk buttons.
  const selAll = document.querySelector("[data-select-all]");
  if (selAll) {
    selAll.hidden = false;
    const boxes = () => [...document.querySelectorAll("input[name=id][form=bulk]")];
    const update = () => {
      const n = boxes().filter((b) => b.checked).length;
      document.querySelectorAll("[data-bulk]").forEach((b) => { b.disabled = n === 0; b.dataset.count = n; });
      const out = document.querySelector("[data-selected-count]");
      if (out) out.textContent = n ? n + " selected" : "";
    };
    selAll.addEventListener("change", () => { boxes().forEach((b) => (b.checked = selAll.checked)); update(); });
    document.addEventListener("change", (e) => { if (e.target.matches("input[name=id][form=bulk]")) update(); });
    update();
  }
  document.addEventListener("submit", (e) => {
    const btn = e.submitter;
    if (btn && btn.dataset.confirm && !confirm(btn.dataset.confirm.replace("{n}", btn.dataset.count || ""))) {
      e.preventDefault();
      delete e.target.dataset.submitting;
    }
  });

  // Seed lock: an unlocked seed is random (-1) at each submit.
  const seed = document.querySelector("#seed");
  const lock = document.querySelector("#seed_lock");
  if (seed && lock) {
    const sync = () => { seed.readOnly = !lock.checked; if (!lock.checked) seed.value = "-1"; };
    lock.addEventListener("change", sync);
    sync();
  }

  // Live generation.
  const form = document.querySelector("form[data-generate]");
  const jobs = document.querySelector("[data-jobs]");
  if (!form || !jobs) return;

  const cards = new Map();
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") n.className = v; else if (k === "text") n.textContent = v; else n.setAttribute(k, v);
    }
    kids.forEach((k) => k && n.append(k));
    return n;
  }
  function card(id, prompt) {
    let c = cards.get(id) || document.querySelector(`[data-job="${CSS.escape(id)}"]`);
    if (c && !cards.has(id)) cards.set(id, c);
    if (c) return c;
    c = el("article", { class: "job", "data-job": id, "aria-live": "polite" },
      el("div", { class: "job-head" },
        el("span", { class: "status", "data-status": "", text: "queued" }),
        el("button", { type: "button", class: "link", "data-cancel": id, text: "Cancel" })),
      el("p", { class: "job-prompt", text: prompt || "" }),
      el("progress", { max: "1", value: "0", "aria-label": "Progress" }),
      el("p", { class: "small muted", "data-detail": "", text: "Waiting in the queue…" }),
      el("div", { class: "job-preview", "data-preview": "" }),
      el("div", { class: "job-images", "data-images": "" }));
    const empty = jobs.querySelector("[data-empty]");
    if (empty) empty.remove();
    jobs.prepend(c);
    cards.set(id, c);
    return c;
  }
  function set(c, status, detail) {
    const s = c.querySelector("[data-status]");
    s.textContent = status; s.className = "status " + status;
    if (detail !== undefined) c.querySelector("[data-detail]").textContent = detail;
  }
  function finish(c) {
    const b = c.querySelector("[data-cancel]");
    if (b) b.remove();
  }
  function onEvent(ev) {
    const c = card(ev.generation_id);
    const bar = c.querySelector("progress");
    switch (ev.type) {
      case "queued":
        set(c, "queued", ev.message || (ev.position ? `Position ${ev.position} in the queue` : "Waiting in the queue…"));
        break;
      case "started":
        set(c, "running", "Started");
        break;
      case "progress":
      case "preview":
        set(c, "running", `Step ${ev.step || 0} of ${ev.steps}`);
        bar.max = ev.steps || 1; bar.value = ev.step || 0;
        if (ev.preview) {
          const box = c.querySelector("[data-preview]");
          box.replaceChildren(el("img", { src: ev.preview, alt: "Preview of the image being made", width: "256" }));
        }
        break;
      case "succeeded": {
        bar.max = 1; bar.value = 1;
        set(c, "succeeded", "Done");
        c.querySelector("[data-preview]").replaceChildren();
        const box = c.querySelector("[data-images]");
        box.replaceChildren(...(ev.image_ids || []).map((id) =>
          el("a", { href: "/images/" + id }, el("img", { src: `/api/v1/images/${id}/file?format=png&size=thumb`, alt: "Generated image", loading: "lazy" }))));
        finish(c);
        break;
      }
      case "failed":
        set(c, "failed", ev.message || "The generation failed.");
        finish(c);
        break;
      case "canceled":
        set(c, "canceled", "Canceled");
        finish(c);
        break;
    }
  }

  let source;
  function listen() {
    if (source) return;
    source = new EventSource("/api/v1/events");
    ["queued", "started", "progress", "preview", "succeeded", "failed", "canceled"].forEach((t) =>
      source.addEventListener(t, (m) => { try { onEvent(JSON.parse(m.data)); } catch (_) {} }));
  }
  listen();

  const out = form.querySelector("[data-form-error]");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error[data-js]").forEach((n) => n.remove());
    if (out) { out.hidden = true; out.textContent = ""; }
    const fd = new FormData(form);
    const size = (fd.get("size") || "").split("x");
    const body = {
      prompt: fd.get("prompt") || "",
      negative_prompt: fd.get("negative_prompt") || "",
      width: parseInt(size[0], 10) || undefined,
      height: parseInt(size[1], 10) || undefined,
      steps: parseInt(fd.get("steps"), 10) || undefined,
      seed: fd.get("seed") === "" ? -1 : Number(fd.get("seed")),
      count: parseInt(fd.get("count"), 10) || 1,
    };
    if (fd.get("guidance")) body.guidance = Number(fd.get("guidance"));
    if (fd.get("backend")) body.backend = fd.get("backend");
    try {
      const r = await fetch("/api/v1/generations", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify(body),
      });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) {
        const err = data.error || {};
        for (const [field, msg] of Object.entries(err.fields || {})) {
          const input = form.querySelector(`[name="${field}"]`) || (field === "width" || field === "height" ? form.querySelector("[name=size]") : null);
          if (input) {
            input.setAttribute("aria-invalid", "true");
            const m = el("span", { class: "field-error", "data-js": "", text: msg });
            (input.closest(".field") || input.parentElement).append(m);
          }
        }
        if (out) { out.textContent = err.message || `The server answered ${r.status}; try again.`; out.hidden = false; }
        return;
      }
      // The event stream can create the card (without its prompt) and move
      // it past "queued" before this answer arrives.
      const c = card(data.id, body.prompt);
      const p = c.querySelector(".job-prompt");
      if (p && !p.textContent) p.textContent = body.prompt;
      if (c.querySelector("[data-status]").textContent === "queued") {
        set(c, "queued", data.position ? `Position ${data.position} in the queue` : "Waiting in the queue…");
      }
    } catch (_) {
      if (out) { out.textContent = "Z Image did not answer. Check your connection and try again."; out.hidden = false; }
    } finally {
      delete form.dataset.submitting;
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  });

  jobs.addEventListener("click", async (e) => {
    const b = e.target.closest("[data-cancel]");
    if (!b) return;
    e.preventDefault();
    b.disabled = true;
    const r = await fetch(`/api/v1/generations/${encodeURIComponent(b.dataset.cancel)}/cancel`, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() },
    }).catch(() => null);
    if (!r || !r.ok) { b.disabled = false; b.textContent = "Cancel failed — retry"; }
  });
})();
