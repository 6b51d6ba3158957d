// The rater picker: a select of kinds (all, humans, judges) or named raters, filling the one `raters` box that the
// server reads. Without this script the box alone works (its datalist offers the kinds and the names).
(function () {
  "use strict";
  for (const form of document.querySelectorAll("[data-raters-form]")) {
    const kind = form.querySelector("[data-raters-kind]");
    const box = form.querySelector("input[name=raters]");
    if (!kind || !box) continue;
    const show = function () {
      box.hidden = kind.value !== "names";
    };
    kind.hidden = false;
    show();
    kind.addEventListener("change", function () {
      if (kind.value === "names") {
        if (["all", "humans", "judges", "everyone"].includes(box.value.trim())) box.value = "";
        show();
        box.focus();
      } else {
        box.value = kind.value;
        show();
      }
    });
  }
})();
