// The rating page: one comparison at a time, keyboard first, next comparison prefetched, ratings saved in the
// background through an outbox that retries with the same idempotency key (never lost, never stored twice).
// No dependencies. Everything shown comes from the API, which carries assignment ids and texts only.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("rate-config").textContent);
  const $ = (id) => document.getElementById(id);
  const els = {
    comparison: $("comparison"), prompt: $("prompt"), left: $("left"), right: $("right"),
    progress: $("progress"), status: $("status"), done: $("done"), paused: $("paused"), submit: $("submit"),
    skip: $("skip"),
    undo: $("undo"), rationale: $("rationale"), strengths: $("strengths"), help: $("help"),
    instructions: $("instructions"), form: $("answer"),
  };
  const STRENGTH_NAMES = { 2: ["slightly", "clearly"], 3: ["slightly", "clearly", "much"] };
  // The same test as the style sheet's: a touch screen is told about buttons, not keys.
  const TOUCH = window.matchMedia("(hover: none) and (pointer: coarse)").matches;
  const OUTBOX_KEY = "evalplatform.outbox." + config.campaign;

  let current = null;          // the assignment on screen
  let queue = [];              // prefetched assignments, shown next
  let prefetching = null;      // the pending prefetch request
  let choice = null;
  let strength = null;
  let lastRated = null;        // {view, item, at}: what Z brings back
  let skippedLast = false;     // the last action was a skip: Z has nothing to bring back (a skip is not undone)
  const pending = new Set();   // assignments whose rating or skip is still on its way: never fetch them again
  let exhausted = false;
  let visibleSince = null;     // time on task counts only while the tab is visible
  let visibleMs = 0;
  let outbox = loadOutbox();
  outbox.forEach((item) => pending.add(item.assignment));
  let flushing = false;
  // Bumped whenever the server reports progress after a rating or undo: a comparison prefetched before that
  // carries an older count, which must not overwrite the newer one when it is shown.
  let progressVersion = 0;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    return { status: response.status, data: data };
  }

  const assignmentUrl = (id, action) => config.assignmentUrl.replace("{id}", String(id)) + action + "/";

  function say(message, kind) {
    els.status.textContent = message || "";
    els.status.className = "status" + (kind ? " " + kind : "");
  }

  // An error message with a link after it (built as nodes: nothing here is parsed as HTML).
  function sayLink(message, label, url) {
    say(message + " ", "error");
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.textContent = label;
    els.status.appendChild(link);
  }

  // The session ended (signed out elsewhere, or expired): 403 from the API, which also refuses a stale CSRF token.
  function saySignedOut() {
    sayLink("You are signed out: your ratings are kept in this browser and sent once you sign in again.",
      "Sign in again in a new tab", config.loginUrl);
  }

  // "N of M": M is the quota, or the campaign's comparisons (each may be rated once) when there is none or fewer.
  function showProgress(progress) {
    if (!progress) return;
    if (progress.paused) pause();
    const total = progress.quota === null ? config.comparisons : Math.min(progress.quota, config.comparisons);
    els.progress.textContent = progress.done + " of " + total + " rated";
    els.progress.dataset.done = String(progress.done);
    els.progress.dataset.total = String(total);
  }

  // ---- fetching comparisons -------------------------------------------------------------------------------

  function heldIds() {
    return (current ? [current.assignment] : []).concat(queue.map((v) => v.assignment), Array.from(pending));
  }

  async function fetchNext() {
    const version = progressVersion;
    const result = await post(config.nextUrl, { exclude: heldIds() });
    if (result.status === 200) { result.data.progressVersion = version; return result.data; }
    if (result.status === 204) { exhausted = true; return null; }
    if (result.status === 404) { stop(result); return null; }  // no longer an annotator of this campaign
    if (result.status === 409) return null;  // already holding the most comparisons allowed
    if (result.status === 401 || result.status === 403) {
      saySignedOut();
      throw new Error("signed out");
    }
    throw new Error("next: HTTP " + result.status);
  }

  function prefetch() {
    if (prefetching || exhausted || queue.length > 0) return prefetching;
    prefetching = fetchNext()
      .then((view) => { if (view && !heldIds().includes(view.assignment)) queue.push(view); return view; })
      .catch(() => null)
      .finally(() => { prefetching = null; });
    return prefetching;
  }

  async function advance() {
    if (queue.length === 0 && !exhausted) {
      say("Loading…");
      if (prefetching) await prefetching;
      if (queue.length === 0 && !exhausted) {
        try { const view = await fetchNext(); if (view) queue.push(view); }
        catch (e) {
          if (e.message !== "signed out") say("Could not load the next comparison; retrying…", "error");
          setTimeout(advance, 2000);
          return;
        }
      }
    }
    const view = queue.shift();
    closePanels();  // instructions and keys are read once, not kept open over every comparison
    if (!view) { finish(); return; }
    show(view);
    prefetch();
  }

  // A message about what was just done, once the next comparison (or the end) is on screen; an error said
  // meanwhile (the next one could not be loaded, the campaign stopped) is kept.
  function sayAfter(advancing, message) {
    advancing.then(() => { if (!els.status.classList.contains("error")) say(message, "ok"); });
  }

  function finish() {
    current = null;
    els.comparison.hidden = true;
    els.done.hidden = !els.paused.hidden;
    say("");
  }

  // The server refuses this annotator's work here: removed from the campaign (404), the campaign paused or closed,
  // or the annotator paused (409 with a code). Say why and show nothing more; `prefix` tells what was refused.
  const STOP_CODES = ["campaign_not_active", "annotator_paused"];
  const stops = (result) => result !== null && (result.status === 404
    || (result.status === 409 && result.data !== null && STOP_CODES.includes(result.data.code)));

  let stopped = false;

  function stop(result, prefix) {
    if (result.data && result.data.code === "annotator_paused") { pause(); return; }
    if (stopped && !prefix) return;  // said already; a refused rating is still reported
    stopped = true;
    queue = [];
    exhausted = true;
    finish();
    const reason = result.status === 404 ? "You no longer annotate this campaign." : describe(result.data);
    say((prefix || "") + reason, "error");
  }

  // Paused by the quality checks (the server ended this annotator's leases): stop showing comparisons.
  function pause() {
    queue = [];
    exhausted = true;
    els.paused.hidden = false;
    finish();
  }

  function show(view) {
    if (!els.paused.hidden) { finish(); return; }  // a comparison fetched before the pause: its lease has ended
    current = view;
    els.prompt.innerHTML = view.prompt.html;  // sanitised on the server (annotation.rendering)
    els.left.innerHTML = view.left.html;
    els.right.innerHTML = view.right.html;
    els.left.scrollTop = 0;
    els.right.scrollTop = 0;
    els.comparison.hidden = false;
    els.done.hidden = true;
    els.comparison.dataset.assignment = String(view.assignment);
    if (view.progressVersion === progressVersion) showProgress(view.progress);
    setChoice(null);
    els.rationale.value = "";
    visibleMs = 0;
    visibleSince = document.visibilityState === "visible" ? performance.now() : null;
    say("");
  }

  // ---- time on task ---------------------------------------------------------------------------------------

  function elapsedMs() {
    const running = visibleSince === null ? 0 : performance.now() - visibleSince;
    return Math.round(visibleMs + running);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      visibleSince = performance.now();
    } else if (visibleSince !== null) {
      visibleMs += performance.now() - visibleSince;
      visibleSince = null;
    }
  });

  // ---- answering ------------------------------------------------------------------------------------------

  function setChoice(value) {
    choice = value;
    strength = null;
    if ((value === "left" || value === "right") && config.strengthLevels > 0) strength = 1;
    render();
  }

  function pick(value) {
    if (!current || !config.choices.includes(value)) return;
    if (value === choice && strength !== null) {
      strength = strength % config.strengthLevels + 1;  // pressing the same key again strengthens
      render();
      return;
    }
    setChoice(value);
  }

  // After a tap or click on a choice, Submit comes into view (on a phone it is often below the screen's edge).
  function revealSubmit() {
    const box = els.submit.getBoundingClientRect();
    if (box.bottom > window.innerHeight) window.scrollBy(0, box.bottom - window.innerHeight + 16);
    else if (box.top < 0) window.scrollBy(0, box.top - 16);
  }

  function render() {
    document.querySelectorAll("button.choice").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.choice === choice));
    });
    if (els.strengths) {
      els.strengths.hidden = strength === null;
      els.strengths.querySelectorAll("button").forEach((b) => {
        b.setAttribute("aria-pressed", String(Number(b.dataset.strength) === strength));
      });
    }
    els.submit.disabled = choice === null;
    els.undo.disabled = !canUndo();
  }

  function buildStrengths() {
    if (!els.strengths || config.strengthLevels < 1) return;
    const names = STRENGTH_NAMES[config.strengthLevels] || [];
    for (let level = 1; level <= config.strengthLevels; level++) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.strength = String(level);
      button.textContent = (names[level - 1] || "level " + level) + " better";
      button.addEventListener("click", () => { strength = level; render(); });
      els.strengths.appendChild(button);
    }
  }

  function submit() {
    if (!current || choice === null || pending.has(current.assignment)) return;
    const rationale = els.rationale.value;
    if (config.requireRationale && !rationale.trim()) {
      say("This campaign asks for a rationale: write it, then " + (TOUCH ? "tap Submit." : "press Ctrl+Enter."), "error");
      els.rationale.focus();
      return;
    }
    const item = {
      assignment: current.assignment,
      body: {
        choice: choice, strength: strength, rationale: rationale, time_ms: elapsedMs(),
        idempotency_key: current.assignment + "-" + Date.now() + "-" + Math.random().toString(36).slice(2),
      },
    };
    outbox.push(item);
    pending.add(item.assignment);
    saveOutbox();
    const rated = { view: current, item: item, at: Date.now() };
    lastRated = rated;
    skippedLast = false;
    const message = "Saved. " + (TOUCH ? "Tap Undo" : "Press Z") + " within " + config.undoSeconds + " s to undo.";
    setTimeout(() => {
      render();
      if (lastRated === rated && els.status.textContent === message) say("");  // the undo window has closed
    }, config.undoSeconds * 1000 + 50);
    // Leave the rationale box: the next "1" chooses Left rather than being typed into the next rationale.
    if (document.activeElement === els.rationale) els.rationale.blur();
    flush();
    sayAfter(advance(), message);
  }

  async function skip() {
    if (!current || pending.has(current.assignment)) return;
    const id = current.assignment;
    pending.add(id);
    // Z now has nothing to undo: the rating before the skip is not brought back in place of the skipped one.
    lastRated = null;
    skippedLast = true;
    sayAfter(advance(), "Skipped: this comparison goes to someone else.");
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try { await post(assignmentUrl(id, "skip")); return; }
        catch (e) { await sleep(500 * 2 ** attempt); }
      }
    } finally {
      pending.delete(id);
    }
  }

  function canUndo() {
    return lastRated !== null && Date.now() - lastRated.at < config.undoSeconds * 1000;
  }

  async function undo() {
    if (!canUndo()) {
      if (skippedLast) say("Nothing to undo: a skipped comparison is not brought back.", "error");
      else say("Nothing to undo (a rating can be undone within " + config.undoSeconds + " s).", "error");
      return;
    }
    const rated = lastRated;
    lastRated = null;
    const unsent = outbox.indexOf(rated.item);
    if (unsent >= 0 && !rated.item.sending) {
      outbox.splice(unsent, 1);  // never sent: just forget it
      pending.delete(rated.item.assignment);
      saveOutbox();
      restore(rated.view, rated.item.body);
      return;
    }
    await waitFor(() => !outbox.includes(rated.item));
    const result = await post(assignmentUrl(rated.view.assignment, "undo"));
    if (result.status === 200) {
      progressVersion += 1;
      result.data.progressVersion = progressVersion;
      restore(result.data, rated.item.body);
      return;
    }
    say((result.data && result.data.detail) || "Could not undo.", "error");
  }

  // Show the undone comparison again with the answer given (choice, strength, rationale) selected, to change.
  function restore(view, answer) {
    if (current) queue.unshift(current);
    show(view);
    choice = answer.choice;
    strength = answer.strength;
    els.rationale.value = answer.rationale;
    render();
    say("Undone: rate this comparison again.", "ok");
  }

  // ---- the outbox: background saving with retry -----------------------------------------------------------

  function loadOutbox() {
    try { return JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]"); } catch (e) { return []; }
  }

  function saveOutbox() {
    try { localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox.map((i) => ({ assignment: i.assignment, body: i.body })))); }
    catch (e) { /* private mode: the in-memory outbox still retries */ }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function waitFor(condition) {
    while (!condition()) await sleep(50);
  }

  async function flush() {
    if (flushing) return;
    flushing = true;
    let delay = 500;
    try {
      while (outbox.length > 0) {
        const item = outbox[0];
        item.sending = true;
        let result;
        try { result = await post(assignmentUrl(item.assignment, "rating"), item.body); }
        catch (e) { result = null; }
        const signedOut = result !== null && (result.status === 401 || result.status === 403);
        if (result === null || result.status >= 500 || result.status === 429 || signedOut) {
          if (signedOut) saySignedOut();
          else say("Connection problem: your rating is kept and will be sent again.", "error");
          await sleep(delay);
          delay = Math.min(delay * 2, 15000);
          continue;
        }
        delay = 500;
        outbox.shift();
        pending.delete(item.assignment);
        saveOutbox();
        if (result.status === 200 || result.status === 201) {
          progressVersion += 1;
          showProgress(result.data.progress);
        } else if (stops(result)) {
          stop(result, "A rating was not accepted: ");
        } else {
          say("A rating was not accepted: " + describe(result.data), "error");
        }
      }
    } finally {
      flushing = false;
    }
  }

  function describe(data) {
    if (!data) return "unknown error";
    if (data.detail) return data.detail;
    return Object.keys(data).map((k) => k + ": " + [].concat(data[k]).join(" ")).join("; ");
  }

  window.addEventListener("online", flush);
  window.addEventListener("beforeunload", (event) => {
    if (outbox.length > 0) { event.preventDefault(); event.returnValue = ""; }
  });

  // ---- leases ----------------------------------------------------------------------------------------------

  // Renew the leases of what is on screen or prefetched. A lease that ended meanwhile (the computer slept, the tab
  // was throttled past the lease time) is dropped: rating it could only be refused, so another takes its place.
  async function heartbeat() {
    if (prefetching) await prefetching;  // a comparison on its way is checked too: it may have been leased before
    const shown = (current ? [current] : []).concat(queue);  // not the pending ones: they are being rated or skipped
    const answers = await Promise.all(shown.map((view) =>
      post(assignmentUrl(view.assignment, "heartbeat")).then((r) => r, () => null)));
    const refusal = answers.find(stops);
    if (refusal) { stop(refusal); return; }
    const ended = shown.filter((view, i) => answers[i] !== null && answers[i].status === 409).map((view) => view.assignment);
    if (ended.length === 0) return;
    queue = queue.filter((view) => !ended.includes(view.assignment));
    if (current && ended.includes(current.assignment)) {
      await advance();
      say("The comparison you had open was released while you were away; its lease had ended.", "error");
    } else {
      prefetch();
    }
  }
  setInterval(heartbeat, Math.max(10, Math.floor(config.leaseSeconds / 3)) * 1000);
  // Coming back to the tab (or waking the computer) checks the leases at once rather than at the next beat.
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") heartbeat(); });

  // ---- keyboard, mouse and touch ---------------------------------------------------------------------------

  const KEY_CHOICES = { "1": "left", "2": "right", "3": "tie", "4": "both_bad" };

  function toggle(el) {
    const opening = el.hidden;
    closePanels();
    el.hidden = !opening;
    document.body.classList.toggle("panel-open", opening);
  }

  function closePanels() {
    els.help.hidden = true;
    els.instructions.hidden = true;
    document.body.classList.remove("panel-open");
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey || (event.ctrlKey && event.key !== "Enter")) return;
    const typing = event.target === els.rationale;
    if (typing) {
      if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit(); }
      if (event.key === "Escape") els.rationale.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if (KEY_CHOICES[key]) pick(KEY_CHOICES[key]);
    else if (key === "enter") {
      const other = event.target.tagName === "BUTTON" && !event.target.classList.contains("choice");
      if (other && event.target.id !== "submit") return;  // Enter on Skip, Undo, Keys... activates that button
      submit();
    }
    else if (key === "s") skip();
    else if (key === "z") undo();
    else if (key === "?" || (key === "/" && event.shiftKey)) toggle(els.help);
    else if (key === "i") toggle(els.instructions);
    else if (key === "escape") closePanels();
    else return;
    event.preventDefault();
  });

  document.querySelectorAll("button.choice").forEach((b) => b.addEventListener("click", () => {
    pick(b.dataset.choice);
    revealSubmit();
  }));
  els.form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  els.skip.addEventListener("click", skip);
  els.undo.addEventListener("click", undo);
  $("toggle-help").addEventListener("click", () => toggle(els.help));
  $("toggle-instructions").addEventListener("click", () => toggle(els.instructions));
  document.querySelectorAll("button.close-panel").forEach((b) => b.addEventListener("click", closePanels));

  buildStrengths();
  flush();
  if (config.paused) pause(); else advance();
})();
