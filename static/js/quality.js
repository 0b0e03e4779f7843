// After "Run the quality check now": poll the run's state and reload the page when it ends.
(function () {
  "use strict";
  const box = document.querySelector("[data-quality-poll]");
  if (!box) return;
  const url = box.dataset.qualityPoll;
  const shown = box.dataset.shownRun;
  const started = Date.now();
  const GIVE_UP_MS = 10 * 60 * 1000;

  function done(status) {
    if (status.running) return false;
    const run = status.latest_run;
    // the figures are current (a run of unchanged data stores no new run), or a new run
    // finished since this page was drawn (it may have failed: the page says so)
    return status.up_to_date || (run !== null && String(run.id) !== shown);
  }
  function reload() {
    const here = new URL(window.location.href);
    here.searchParams.delete("waiting");
    window.location.replace(here.toString());
  }
  function check() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (status) {
        if (status && done(status)) { reload(); return; }
        if (Date.now() - started > GIVE_UP_MS) {
          box.textContent = "The quality run is taking a while; reload this page later.";
          return;
        }
        window.setTimeout(check, 2000);
      })
      .catch(function () { window.setTimeout(check, 5000); });
  }
  window.setTimeout(check, 1000);
})();
