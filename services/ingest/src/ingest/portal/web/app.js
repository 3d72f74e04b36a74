// The imgpipe page: upload a CSV, follow its progress live, browse the results.
// Every call goes to this server with the pasted API key as `Authorization: Bearer <key>`;
// the progress stream is read with fetch() (EventSource cannot send that header).
"use strict";

(() => {
  const KEY_STORE = "imgpipe.apiKey";
  const PAGE_SIZE = 200; // images per page read from /requests/{id}/images
  const MAX_PAGES = 25; // at most 5,000 images are listed
  const GALLERY_STEP = 48; // cards added per "Show more"
  const THUMBS_AT_ONCE = 4; // compressed pictures fetched in parallel
  const MAX_RECONNECTS = 30;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (selector) => document.querySelector(selector);
  let current = null; // the request being shown: {id, abort: AbortController, finished, stopped}

  // --- small helpers ---------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function formatBytes(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1000) return `${n} B`;
    const units = ["kB", "MB", "GB"];
    let value = n / 1000;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function say(node, text, kind) {
    node.textContent = text || "";
    node.className = `message${kind ? " " + kind : ""}`;
    show(node, Boolean(text));
  }

  function isWebUrl(value) {
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }

  // --- the API key and calls -------------------------------------------------------------------

  function apiKey() {
    return sessionStorage.getItem(KEY_STORE) || "";
  }

  function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const key = apiKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    return fetch(path, { ...init, headers, cache: "no-store" });
  }

  async function problemOf(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!body || typeof body !== "object") {
      body = { status: response.status, title: response.statusText || "Error", detail: "" };
    }
    return body;
  }

  function describe(problem) {
    if (problem.status === 401) return "The API key is missing or not valid: paste a key at the top and press “Use key”.";
    if (problem.status === 403) return `This API key may not do that (${problem.detail || "forbidden"}).`;
    const text = [problem.title, problem.detail].filter(Boolean).join(": ");
    return text || `The server answered ${problem.status}.`;
  }

  function setupKeyForm() {
    const input = $("#api-key");
    const state = $("#key-state");
    const refresh = () => {
      state.textContent = apiKey() ? "key set for this tab" : "no key set";
      input.classList.remove("attention");
    };
    input.value = apiKey();
    refresh();
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key);
      else sessionStorage.removeItem(KEY_STORE);
      refresh();
      if (current && current.stopped) watch(current.id); // it had stopped for want of a key
    });
    $("#key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      input.value = "";
      refresh();
    });
  }

  function askForKey() {
    $("#api-key").classList.add("attention");
    $("#api-key").focus();
  }

  // --- upload ----------------------------------------------------------------------------------

  let chosenFile = null;

  function choose(file) {
    if (!file) return;
    chosenFile = file;
    $("#file-name").textContent = `${file.name} · ${formatBytes(file.size)}`;
    $("#drop").classList.add("chosen");
    $("#upload-button").disabled = false;
  }

  function setupUpload() {
    const drop = $("#drop");
    const input = $("#file");
    input.addEventListener("change", () => choose(input.files[0]));
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      drop.addEventListener(type, () => drop.classList.remove("over"));
    }
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      choose(event.dataTransfer.files[0]);
    });
    // A file dropped next to the zone must not make the browser leave the page to open it.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
    $("#upload-form").addEventListener("submit", (event) => {
      event.preventDefault();
      upload();
    });
  }

  async function upload() {
    if (!chosenFile) return;
    const button = $("#upload-button");
    const message = $("#upload-message");
    showErrors(null);
    say(message, "Uploading…");
    button.disabled = true;
    const form = new FormData();
    form.append("file", chosenFile, chosenFile.name);
    const webhook = $("#webhook").value.trim();
    const quality = $("#quality").value.trim();
    const format = $("#format").value;
    if (webhook) form.append("webhook_url", webhook);
    if (quality) form.append("quality", quality);
    if (format) form.append("format", format);
    try {
      const response = await api("/upload", { method: "POST", body: form });
      if (response.status === 202) {
        const accepted = await response.json();
        say(
          message,
          `Accepted: ${accepted.total_products} product(s), ${accepted.total_images} image(s).`,
          "ok",
        );
        history.replaceState(null, "", `#${accepted.request_id}`);
        watch(accepted.request_id);
      } else {
        const problem = await problemOf(response);
        if (response.status === 401) askForKey();
        say(message, describe(problem), "bad");
        showErrors(problem);
      }
    } catch (error) {
      say(message, `The upload did not reach the server (${error.message}).`, "bad");
    } finally {
      button.disabled = false;
    }
  }

  function showErrors(problem) {
    const box = $("#errors");
    const body = box.querySelector("tbody");
    body.replaceChildren();
    const errors = problem && Array.isArray(problem.errors) ? problem.errors : [];
    show(box, errors.length > 0);
    if (!errors.length) return;
    $("#errors-caption").textContent = "Fix these and upload the file again";
    for (const error of errors) {
      body.append(
        el(
          "tr",
          {},
          el("td", { class: "num", text: error.row === null || error.row === undefined ? "–" : error.row }),
          el("td", { text: error.column || "" }),
          el("td", { text: error.message || "" }),
        ),
      );
    }
  }

  // --- live progress ---------------------------------------------------------------------------

  async function watch(id) {
    if (current) current.abort.abort();
    const state = { id, abort: new AbortController(), finished: false, stopped: false };
    current = state;
    const signal = state.abort.signal;
    resetResults();
    $("#request-id").textContent = id;
    $("#request-link").href = `#${id}`;
    renderProgress(null);
    show($("#progress-section"), true);
    const note = $("#stream-note");
    let failures = 0;
    while (!state.finished && !signal.aborted) {
      let response = null;
      try {
        response = await api(`/requests/${id}/events`, { headers: { Accept: "text/event-stream" }, signal });
      } catch {
        response = null;
      }
      if (signal.aborted) return;
      if (response && response.ok && response.body) {
        note.textContent = "Live: the server pushes every change.";
        try {
          await readEvents(response.body, signal, (type, data) => {
            failures = 0;
            onEvent(state, type, data);
          });
        } catch {
          // the connection dropped: reconnect below
        }
      } else if (response) {
        const problem = await problemOf(response);
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          if (response.status === 401) askForKey();
          note.textContent = describe(problem);
          state.stopped = true;
          return;
        }
      }
      if (state.finished || signal.aborted) return;
      failures += 1;
      if (failures > MAX_RECONNECTS) {
        note.textContent = "Lost the connection to the server: reload the page to try again.";
        state.stopped = true;
        return;
      }
      const delay = Math.min(500 * 2 ** (failures - 1), 15000);
      note.textContent = failures > 1 ? `Reconnecting in ${Math.ceil(delay / 1000)} s…` : "Reconnecting…";
      await sleep(delay, signal);
    }
  }

  // Server-Sent Events from a fetch() body: blocks separated by a blank line, `event:` and
  // `data:` fields, `:` comments (keep-alives) ignored.
  async function readEvents(body, signal, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const cancel = () => reader.cancel().catch(() => {});
    signal.addEventListener("abort", cancel, { once: true });
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let type = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) value = value.slice(1);
            if (field === "event") type = value;
            else if (field === "data") data.push(value);
          }
          if (data.length) onEvent(type, data.join("\n"));
        }
        if (buffer.length > 1_000_000) throw new Error("event too large");
      }
    } finally {
      signal.removeEventListener("abort", cancel);
    }
  }

  // DELETE /requests/{id}: images not started never run; the stream then reports `cancelled`.
  async function cancelCurrent() {
    if (!current) return;
    const button = $("#cancel");
    button.disabled = true;
    const response = await api(`/requests/${current.id}`, { method: "DELETE" });
    if (!response.ok) $("#stream-note").textContent = describe(await problemOf(response));
    else $("#stream-note").textContent = "Cancelled: images already started may still finish.";
    button.disabled = false;
  }

  function onEvent(state, type, data) {
    if (state !== current || (type !== "progress" && type !== "done")) return;
    let status;
    try {
      status = JSON.parse(data);
    } catch {
      return;
    }
    renderProgress(status);
    if ((type === "done" || status.completed_at) && !state.finished) {
      state.finished = true;
      $("#stream-note").textContent = "Finished.";
      loadResults(state);
    }
  }

  function renderProgress(status) {
    const bar = $("#bar");
    const badge = $("#status-badge");
    if (!status) {
      bar.value = 0;
      $("#progress-percent").textContent = "0%";
      $("#progress-text").textContent = "waiting for the first update…";
      $("#progress-eta").textContent = "";
      badge.textContent = "";
      badge.className = "badge";
      return;
    }
    const total = status.total_images || 0;
    const cancelled = status.cancelled_images || 0;
    const finished = status.processed_images + status.failed_images + cancelled;
    // From the counts, rounded down: 100% only once every image is finished.
    const percent = total ? Math.floor((finished * 100) / total) : 100;
    bar.value = percent;
    $("#progress-percent").textContent = `${percent}%`;
    const queued = status.queued_images || 0;
    const running = Math.max(total - finished - queued, 0);
    $("#progress-text").textContent =
      `${status.processed_images} of ${total} done · ${status.failed_images} failed` +
      // With images queued, the admitted ones are told apart from them as "in progress".
      (running ? ` · ${running} ${queued ? "in progress" : "to go"}` : "") +
      (queued ? ` · ${queued} queued (fair share)` : "") +
      (cancelled ? ` · ${cancelled} cancelled` : "");
    // The server's estimate: what remains over this request's own recent rate, its fair share.
    const eta = status.completed_at ? null : status.eta_seconds;
    $("#progress-eta").textContent = typeof eta === "number" ? `· about ${formatDuration(eta)} left` : "";
    show($("#cancel"), !status.completed_at && status.status !== "cancelled");
    badge.textContent = status.status.replaceAll("_", " ");
    badge.className = `badge ${status.status}`;
  }

  function formatDuration(seconds) {
    const whole = Math.max(Math.round(seconds), 1);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
    return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")} min`;
  }

  // --- results: summary, failures, gallery, download ---------------------------------------------

  let thumbQueue = [];
  let thumbsRunning = 0;
  let galleryItems = [];
  let galleryShown = 0;

  function resetResults() {
    thumbQueue = [];
    galleryItems = [];
    galleryShown = 0;
    show($("#results-section"), false);
    $("#gallery").replaceChildren();
    $("#summary").replaceChildren();
    $("#failures tbody").replaceChildren();
    show($("#failures"), false);
    show($("#more"), false);
    say($("#results-message"), "");
  }

  async function loadResults(state) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      let response;
      try {
        response = await api(`/requests/${state.id}/images?${query}`, { signal: state.abort.signal });
      } catch {
        if (state !== current) return;
        say($("#results-message"), "The images could not be listed: the server did not answer.", "bad");
        break;
      }
      if (state !== current) return;
      if (!response.ok) {
        say($("#results-message"), describe(await problemOf(response)), "bad");
        break;
      }
      const body = await response.json();
      items.push(...body.items);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    if (state !== current) return;
    show($("#results-section"), true);
    if (cursor) say($("#results-message"), `Showing the first ${items.length} images.`);
    renderSummary(items);
    renderFailures(items);
    galleryItems = items;
    showMoreCards();
  }

  function renderSummary(items) {
    const done = items.filter((i) => i.status === "done");
    const failed = items.filter((i) => i.status === "failed");
    const before = done.reduce((sum, i) => sum + (i.input_bytes || 0), 0);
    const after = done.reduce((sum, i) => sum + (i.output_bytes || 0), 0);
    const saved = before - after;
    const entries = [
      ["Compressed", `${done.length}`],
      ["Failed", `${failed.length}`],
      ["Before", formatBytes(before)],
      ["After", formatBytes(after)],
      ["Saved", before ? `${formatBytes(Math.max(saved, 0))} (${Math.round((saved * 100) / before)}%)` : "–"],
    ];
    $("#summary").replaceChildren(
      ...entries.map(([term, value]) => el("div", {}, el("dt", { text: term }), el("dd", { text: value }))),
    );
  }

  function productLabel(item) {
    const position = item.position > 0 ? ` (image ${item.position + 1})` : "";
    return `#${item.serial_number} ${item.product_name}${position}`;
  }

  function renderFailures(items) {
    const failed = items.filter((i) => i.status === "failed");
    const body = $("#failures tbody");
    for (const item of failed) {
      const reason = item.error || { code: "unknown", message: "" };
      body.append(
        el(
          "tr",
          {},
          el("td", { text: productLabel(item) }),
          el("td", { class: "url", title: item.input_url, text: item.input_url }),
          el("td", {}, el("code", { text: reason.code }), " ", reason.message),
        ),
      );
    }
    show($("#failures"), failed.length > 0);
  }

  function showMoreCards() {
    const gallery = $("#gallery");
    const next = galleryItems.slice(galleryShown, galleryShown + GALLERY_STEP);
    for (const item of next) gallery.append(card(item));
    galleryShown += next.length;
    const left = galleryItems.length - galleryShown;
    $("#more").textContent = `Show more (${left} left)`;
    show($("#more"), left > 0);
  }

  function shot(label, content) {
    return el("div", { class: "shot" }, content, el("span", { class: "tag", text: label }));
  }

  function placeholder(text) {
    return el("div", { class: "placeholder", text });
  }

  function card(item) {
    const failed = item.status === "failed";
    const before = isWebUrl(item.input_url) && !failed
      ? el("img", { class: "before", alt: `original of ${productLabel(item)}`, loading: "lazy", referrerpolicy: "no-referrer", src: item.input_url })
      : placeholder(failed ? "no preview" : "–");
    if (before.tagName === "IMG") before.addEventListener("error", () => before.replaceWith(placeholder("original unavailable")), { once: true });
    let after;
    let facts;
    if (failed) {
      const reason = item.error || { code: "unknown", message: "" };
      after = placeholder("failed");
      facts = el("p", { class: "reason" }, el("code", { text: reason.code }), " ", reason.message);
    } else if (item.status === "done" && item.output_url) {
      after = el("img", { class: "after", alt: `compressed ${productLabel(item)}` });
      queueThumb(after, item.output_url);
      facts = el("p", { class: "bytes" }, ...savings(item));
    } else {
      after = placeholder(item.status);
      facts = el("p", { class: "bytes muted", text: "not finished" });
    }
    return el(
      "figure",
      { class: `card ${item.status}`, "data-status": item.status },
      el("div", { class: "pair" }, shot("before", before), shot("after", after)),
      el(
        "figcaption",
        {},
        el("p", { class: "name", title: item.input_url, text: productLabel(item) }),
        facts,
      ),
    );
  }

  function savings(item) {
    const input = item.input_bytes || 0;
    const output = item.output_bytes || 0;
    const size = `${formatBytes(input)} → ${formatBytes(output)}`;
    const dimensions = item.width && item.height ? `${item.width}×${item.height} px` : "";
    if (!input || !output) return [size];
    const saved = input - output;
    if (saved <= 0) {
      return [size, el("span", { class: "delta none", text: "no gain" }), el("span", { class: "saved", text: dimensions })];
    }
    const percent = Math.round((saved * 100) / input);
    const details = [`saved ${formatBytes(saved)}`, `${(input / output).toFixed(1)}:1`, dimensions].filter(Boolean);
    return [
      size,
      el("span", { class: "delta", text: `−${percent}%` }),
      el("span", { class: "saved", text: details.join(" · ") }),
    ];
  }

  // The compressed files are read through this server's /media with the key, then shown from a
  // data: URL (an <img> cannot send the Authorization header). Files stored elsewhere (S3) load
  // directly from their URL.
  function queueThumb(img, outputUrl) {
    thumbQueue.push([img, outputUrl]);
    pumpThumbs();
  }

  function pumpThumbs() {
    while (thumbsRunning < THUMBS_AT_ONCE && thumbQueue.length) {
      const [img, url] = thumbQueue.shift();
      thumbsRunning += 1;
      loadThumb(img, url).finally(() => {
        thumbsRunning -= 1;
        pumpThumbs();
      });
    }
  }

  async function loadThumb(img, outputUrl) {
    let path = null;
    try {
      const url = new URL(outputUrl, location.href);
      if (url.pathname.startsWith("/media/")) path = url.pathname;
    } catch {
      path = null;
    }
    if (!path) {
      if (isWebUrl(outputUrl)) img.src = outputUrl;
      return;
    }
    try {
      const response = await api(path);
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      img.src = await new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      });
    } catch {
      img.replaceWith(placeholder("not available"));
    }
  }

  async function downloadCsv() {
    if (!current) return;
    const message = $("#results-message");
    const id = current.id;
    try {
      const response = await api(`/requests/${id}/output.csv`);
      if (!response.ok) {
        say(message, describe(await problemOf(response)), "bad");
        return;
      }
      const link = URL.createObjectURL(await response.blob());
      const anchor = el("a", { href: link, download: `${id}.csv`, hidden: true });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(link), 30000);
    } catch (error) {
      say(message, `The download failed (${error.message}).`, "bad");
    }
  }

  // --- start -------------------------------------------------------------------------------------

  function openFromHash() {
    const id = location.hash.slice(1);
    if (UUID.test(id) && (!current || current.id !== id)) watch(id);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupKeyForm();
    setupUpload();
    $("#cancel").addEventListener("click", cancelCurrent);
    $("#download").addEventListener("click", downloadCsv);
    $("#more").addEventListener("click", showMoreCards);
    window.addEventListener("hashchange", openFromHash);
    openFromHash();
  });
})();
