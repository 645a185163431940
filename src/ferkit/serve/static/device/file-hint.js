// A page opened from the disk (file://) cannot load its modules or models: the browser refuses them there. Say how
// to open it instead (a classic script: it runs even where the module scripts cannot).
"use strict";
if (location.protocol === "file:") {
  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("dev-error"), text = document.getElementById("dev-error-text");
    document.body.dataset.mode = "device";
    text.textContent = "This page was opened from the disk, where browsers do not let it load its scripts and " +
      "models. Serve its folder instead: cd into it, run python -m http.server, and open http://localhost:8000";
    box.hidden = false;
  });
}
