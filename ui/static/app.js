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

  // A job card. The server renders one per recent job, in whatever state
  // the job was then; the event stream creates cards for jobs it has not
  // seen. Either way every update goes through parts(), which adds any
  // piece a card lacks, so no card can stop short of its final state.
  const FINAL = ["succeeded", "failed", "canceled"];
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
    if (!c) {
      c = el("article", { class: "job", "data-job": id, "aria-live": "polite" },
        el("div", { class: "job-head" },
          el("span", { class: "status queued", "data-status": "", text: "queued" }),
          el("button", { type: "button", class: "link", "data-cancel": id, text: "Cancel" })),
        el("p", { class: "job-prompt", text: prompt || "" }),
        el("progress", { max: "1", value: "0", "aria-label": "Progress" }),
        el("p", { class: "small muted", "data-detail": "", text: "Waiting in the queue…" }),
        el("div", { class: "job-preview", "data-preview": "" }),
        el("div", { class: "job-images", "data-images": "" }));
      const empty = jobs.querySelector("[data-empty]");
      if (empty) empty.remove();
      jobs.prepend(c);
    }
    cards.set(id, c);
    return c;
  }
  // parts returns the pieces of card c, creating those it lacks in the
  // order card() builds them.
  function parts(c) {
    const want = (sel, make, after) => {
      let n = c.querySelector(sel);
      if (!n) {
        n = make();
        if (after) after.after(n); else c.prepend(n);
      }
      return n;
    };
    const head = want(".job-head", () => el("div", { class: "job-head" }));
    const status = want("[data-status]", () => el("span", { class: "status", "data-status": "" }), null);
    if (!head.contains(status)) head.prepend(status);
    const prompt = want(".job-prompt", () => el("p", { class: "job-prompt" }), head);
    const bar = want("progress", () => el("progress", { max: "1", value: "0", "aria-label": "Progress" }), prompt);
    const detail = want("[data-detail]", () => el("p", { class: "small muted", "data-detail": "" }), bar);
    const preview = want("[data-preview]", () => el("div", { class: "job-preview", "data-preview": "" }), detail);
    const images = want("[data-images]", () => el("div", { class: "job-images", "data-images": "" }), preview);
    return { status, prompt, bar, detail, preview, images };
  }
  function statusOf(c) {
    const s = c.querySelector("[data-status]");
    return s ? s.textContent.trim() : "";
  }
  function set(c, status, detail) {
    const p = parts(c);
    p.status.textContent = status; p.status.className = "status " + status;
    if (detail !== undefined) p.detail.textContent = detail;
    return p;
  }
  function progress(bar, step, steps) {
    bar.hidden = false;
    bar.max = Math.max(Number(steps) || 1, 1);
    bar.value = Math.min(Math.max(Number(step) || 0, 0), bar.max);
  }
  // finish removes what only a job still to end offers (Cancel, with the
  // form that carries it when the server rendered it).
  function finish(c) {
    c.querySelectorAll("[data-cancel]").forEach((b) => {
      const f = b.closest("form");
      (f && c.contains(f) ? f : b).remove();
    });
  }
  function thumbs(box, ids) {
    box.replaceChildren(...(ids || []).map((id) =>
      el("a", { href: "/images/" + encodeURIComponent(id) },
        el("img", { src: `/api/v1/images/${encodeURIComponent(id)}/file?size=thumb`, alt: "Generated image", loading: "lazy", width: "160", height: "160" }))));
  }
  function onEvent(ev) {
    if (!ev || !ev.generation_id) return;
    const c = card(ev.generation_id);
    const final = FINAL.includes(ev.type);
    // A card that ended stays ended: a late or replayed update of a job
    // still running must not bring it back.
    if (FINAL.includes(statusOf(c)) && (!final || statusOf(c) === ev.type)) return;
    switch (ev.type) {
      case "queued":
        set(c, "queued", ev.message || (ev.position ? `Position ${ev.position} in the queue` : "Waiting in the queue…"));
        break;
      case "started":
        set(c, "running", "Started");
        break;
      case "progress":
      case "preview": {
        const p = set(c, "running", `Step ${ev.step || 0} of ${ev.steps || "?"}`);
        progress(p.bar, ev.step, ev.steps);
        if (ev.preview) p.preview.replaceChildren(el("img", { src: ev.preview, alt: "Preview of the image being made", width: "256" }));
        break;
      }
      case "succeeded": {
        const p = set(c, "succeeded", "Done");
        progress(p.bar, 1, 1);
        p.preview.replaceChildren();
        thumbs(p.images, ev.image_ids);
        finish(c);
        break;
      }
      case "failed":
        set(c, "failed", ev.message || "The generation failed.").bar.hidden = true;
        parts(c).preview.replaceChildren();
        finish(c);
        break;
      case "canceled":
        set(c, "canceled", "Canceled").bar.hidden = true;
        parts(c).preview.replaceChildren();
        finish(c);
        break;
    }
  }
  function handle(ev) {
    try { onEvent(ev); } catch (err) { console.error("Z Image: could not show a live update", err); }
  }

  // catchUp brings every card still waiting or running to the state the
  // server holds: events sent before the stream (re)connected — between
  // rendering the page and opening the stream, or while the network was
  // away — are never sent again.
  async function catchUp() {
    const open = [...jobs.querySelectorAll("[data-job]")].filter((c) => !FINAL.includes(statusOf(c)));
    if (!open.length) return;
    const limit = Math.min(100, Math.max(10, jobs.querySelectorAll("[data-job]").length));
    let data;
    try {
      const r = await fetch(`/api/v1/generations?limit=${limit}`, { credentials: "same-origin" });
      if (!r.ok) return;
      data = await r.json();
    } catch (_) { return; }
    for (const g of data.generations || []) {
      const c = jobs.querySelector(`[data-job="${CSS.escape(g.id)}"]`);
      if (!c || FINAL.includes(statusOf(c))) continue;
      if (g.status === "queued") handle({ type: "queued", generation_id: g.id, position: g.position });
      else if (g.status === "running" && statusOf(c) !== "running") handle({ type: "started", generation_id: g.id });
      else if (FINAL.includes(g.status)) handle({ type: g.status, generation_id: g.id, image_ids: g.image_ids, message: g.error && g.error.message });
    }
  }

  let source, retry = 1000;
  function listen() {
    if (source) return;
    const s = source = new EventSource("/api/v1/events");
    s.addEventListener("open", () => { retry = 1000; catchUp(); });
    // The browser reconnects by itself after a dropped connection, but
    // gives up for good when a connection cannot be made or the answer
    // is not a stream (a proxy's 502 while the server restarts): start
    // again then, waiting longer each time.
    s.addEventListener("error", () => {
      if (s.readyState !== EventSource.CLOSED) return;
      source = null;
      setTimeout(listen, retry);
      retry = Math.min(retry * 2, 30000);
    });
    ["queued", "started", "progress", "preview", "succeeded", "failed", "canceled"].forEach((t) =>
      s.addEventListener(t, (m) => { let ev; try { ev = JSON.parse(m.data); } catch (_) { return; } handle(ev); }));
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
    if (fd.get("sampler")) body.sampler = fd.get("sampler");
    if (fd.get("scheduler")) body.scheduler = fd.get("scheduler");
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
      const p = parts(c).prompt;
      if (!p.textContent) p.textContent = body.prompt;
      if (statusOf(c) === "queued") {
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
    if (!r || !r.ok) { b.disabled = false; b.textContent = "Cancel failed — retry"; return; }
    // The answer is the job as it now is: show it even if the stream's
    // event is late or lost.
    const g = await r.json().catch(() => null);
    if (g && g.id && FINAL.includes(g.status)) handle({ type: g.status, generation_id: g.id, image_ids: g.image_ids, message: g.error && g.error.message });
  });
})();
