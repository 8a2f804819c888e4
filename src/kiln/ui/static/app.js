// kiln notebook app: the job page polls /api/jobs/<id> (queue position, cell i of n)
// and opens the result when the run ends; the result frame grows to its content.
(function () {
  "use strict";
  const job = document.getElementById("job");
  if (job) {
    const id = job.dataset.job;
    const state = document.getElementById("job-state");
    const bar = document.getElementById("job-progress");
    const error = document.getElementById("job-error");
    const cancel = document.getElementById("cancel-form");
    const show = function (j) {
      job.dataset.state = j.state;
      state.className = "job-" + j.state;
      if (j.state === "queued") {
        state.textContent = "Queued: position " + j.position + ".";
      } else if (j.state === "running") {
        state.textContent = "Running: cell " + j.done + " of " + (j.total || "?") + ".";
      } else {
        state.textContent = j.state.charAt(0).toUpperCase() + j.state.slice(1) + ".";
      }
      bar.max = j.total || 1;
      bar.value = j.done;
      error.textContent = j.error || "";
      if (cancel && j.state !== "queued" && j.state !== "running") { cancel.remove(); }
    };
    const poll = function () {
      fetch("/api/jobs/" + encodeURIComponent(id), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          show(j);
          if (j.state === "queued" || j.state === "running") {
            setTimeout(poll, 300);
          } else if (j.run_id) {
            window.location.assign("/r/" + encodeURIComponent(j.run_id));
          }
        })
        .catch(function () { setTimeout(poll, 1000); });
    };
    poll();
  }
  const frame = document.getElementById("result");
  if (frame) {
    const fit = function () {
      try {
        const doc = frame.contentDocument;
        if (doc && doc.body) { frame.style.height = (doc.documentElement.scrollHeight + 20) + "px"; }
      } catch (e) { /* not readable: keep the default height */ }
    };
    frame.addEventListener("load", fit);
    fit();
  }
})();
