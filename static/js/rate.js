// Keyboard-first rating. Every action has a key; the help dialog (?) lists them.
(function () {
  "use strict";
  const form = document.getElementById("rate-form");
  if (!form) return;
  const timeField = document.getElementById("time_on_task_ms");
  const help = document.getElementById("help-dialog");
  const guide = document.getElementById("guidelines-dialog");
  const skipDetails = document.getElementById("skip-details");
  const skipReason = document.getElementById("skip-reason");
  const criteria = Array.from(form.querySelectorAll("fieldset.criterion[data-scale]"));

  // Time on task counts only while the page is visible.
  let visibleSince = document.hidden ? null : performance.now();
  let spent = 0;
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && visibleSince !== null) { spent += performance.now() - visibleSince; visibleSince = null; }
    else if (!document.hidden) { visibleSince = performance.now(); }
  });
  form.addEventListener("submit", function () {
    const now = visibleSince === null ? spent : spent + performance.now() - visibleSince;
    timeField.value = String(Math.round(now));
  });

  // Send each form once: a second Enter (or click) while the first answer is on its way would
  // post again and land on an "already submitted" error instead of the next item.
  let sent = false;
  [form, document.getElementById("skip-form")].forEach(function (f) {
    if (f) f.addEventListener("submit", function (e) { if (sent) e.preventDefault(); sent = true; });
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted) sent = false; });

  let active = 0;
  function highlight(i, scroll) {
    if (!criteria.length) return;
    active = Math.max(0, Math.min(criteria.length - 1, i));
    criteria.forEach(function (c, j) { c.classList.toggle("active", j === active); });
    if (scroll !== false) criteria[active].scrollIntoView({ block: "nearest" });
  }
  function firstUnanswered() {
    const i = criteria.findIndex(function (c) { return !c.querySelector("input:checked") && !c.querySelector("textarea"); });
    return i === -1 ? 0 : i;
  }
  // On load the page stays at the top (the conversation); only key presses scroll the form.
  highlight(firstUnanswered(), false);
  criteria.forEach(function (c, i) { c.addEventListener("click", function () { highlight(i); }); });

  function choose(name, value) {
    const input = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (input) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
    return !!input;
  }
  function scoreDigit(n) {
    const c = criteria[active];
    if (!c) return false;
    const inputs = c.querySelectorAll('input[type="radio"], input[type="checkbox"]');
    const input = inputs[n - 1];
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    if (input.type === "radio") highlight(active + 1);
    return true;
  }
  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text") || target.tagName === "SELECT");
  }
  // Enter submits only from the form's choices or the page itself: on a link, a button or a
  // folded section's summary it does what it does there (follow, press, open).
  function submitsOnEnter(target) {
    if (!target || target === document.body || target === document.documentElement) return true;
    if (target.closest("a[href], button, summary, dialog, [role=button], input[type=submit]")) return false;
    return form.contains(target);
  }
  function follow(link) { if (link) window.location.assign(link.href); return !!link; }

  // After Incorrect or Incomplete, the rater's next step is to say what is right or missing.
  const FOLLOW_UP = { incorrect: "corrected_answer", incomplete: "missing_fact" };
  form.querySelectorAll('input[name="verdict"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      const field = radio.checked && FOLLOW_UP[radio.value] && form.querySelector('[name="' + FOLLOW_UP[radio.value] + '"]');
      if (field) field.focus();
    });
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (help.open || guide.open) { if (e.key === "Escape") { help.close(); guide.close(); } return; }
    if (typing(e.target)) {
      if (e.key === "Escape") { e.target.blur(); e.preventDefault(); }
      return;
    }
    const key = e.key;
    let handled = true;
    if (/^[0-9]$/.test(key)) handled = scoreDigit(key === "0" ? 10 : Number(key));
    else if (key === "ArrowDown") highlight(active + 1);
    else if (key === "ArrowUp") highlight(active - 1);
    else if (key === "a") handled = choose("choice", "left_better");
    else if (key === "A") handled = choose("choice", "left_much_better");
    else if (key === "b") handled = choose("choice", "right_better");
    else if (key === "B") handled = choose("choice", "right_much_better");
    else if (key === "t" || key === "T") handled = choose("choice", "tie");
    else if (key === "x" || key === "X") { const bb = form.querySelector('input[name="both_bad"]'); if (bb) bb.checked = !bb.checked; else handled = false; }
    else if (key === "c" || key === "C") handled = choose("verdict", "correct");
    else if (key === "i" || key === "I") handled = choose("verdict", "incorrect");
    else if (key === "n" || key === "N") handled = choose("verdict", "incomplete");
    else if (key === "j" || key === "J") handled = choose("verdict", "cannot_judge");
    else if (key === "Enter") { if (submitsOnEnter(e.target)) form.requestSubmit(); else handled = false; }
    else if (key === "h" || key === "H") handled = follow(document.querySelector('[data-key="leave"]'));
    else if (key === "q" || key === "Q") handled = follow(document.querySelector("[data-queue]"));
    else if ((key === "s" || key === "S") && skipDetails) { skipDetails.open = true; skipReason.focus(); }
    else if (key === "g" || key === "G") guide.showModal();
    else if (key === "?") help.showModal();
    else handled = false;
    if (handled) e.preventDefault();
  });
  document.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () { (b.dataset.action === "help" ? help : guide).showModal(); });
  });
})();
