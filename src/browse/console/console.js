// The recovery console's only script: select-all, the restore target field, and live progress
// of a running restore. Pages work without it (the job page then refreshes itself).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const b of document.querySelectorAll("#entries input[name=sel]")) b.checked = all.checked;
    });
  }
  const target = document.getElementById("target");
  if (target) {
    target.addEventListener("focus", () => {
      const r = document.querySelector("input[name=dest][value=target]");
      if (r && !r.disabled) r.checked = true;
    });
  }
  const job = document.getElementById("job");
  if (job && job.dataset.state === "running") poll(job);
});

function poll(job) {
  fetch(job.dataset.url, { cache: "no-store" })
    .then((r) => r.json())
    .then((s) => {
      const bar = document.getElementById("job-progress");
      bar.max = Math.max(s.bytes_total, 1);
      bar.value = s.bytes_done;
      document.getElementById("job-counts").textContent =
        `${s.files_done} of ${s.files_total} files, ${bytes(s.bytes_done)} of ${bytes(s.bytes_total)}`;
      job.dataset.state = s.state;
      if (s.state === "running") {
        setTimeout(() => poll(job), 400);
        return;
      }
      document.getElementById("job-result").textContent = s.result || "";
      const list = document.getElementById("job-errors");
      list.replaceChildren(...s.errors.map((e) => Object.assign(document.createElement("li"), { textContent: e })));
    })
    .catch(() => setTimeout(() => poll(job), 1000));
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
