// Documents: drag and drop onto an upload form (an enhancement; the plain file input works without it).
// Dropped files are put into the form's own file input and the form is sent as usual.
(function () {
  "use strict";

  function enhance(form) {
    var input = form.querySelector('input[type="file"]');
    if (!input || typeof DataTransfer === "undefined") {
      return;
    }
    var hint = form.querySelector(".documents-drop-hint");
    if (hint) {
      hint.hidden = false;
    }
    form.classList.add("documents-dropzone");
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (event) {
        event.preventDefault();
        form.classList.add("is-dragover");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      form.addEventListener(type, function () {
        form.classList.remove("is-dragover");
      });
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) {
        return;
      }
      if (!input.multiple && files.length > 1) {
        var one = new DataTransfer();
        one.items.add(files[0]);
        input.files = one.files;
      } else {
        input.files = files;
      }
      if (form.requestSubmit) {
        form.requestSubmit();
      } else {
        form.submit();
      }
    });
    form.addEventListener("submit", function () {
      form.classList.add("is-sending");
      form.setAttribute("aria-busy", "true");
    });
  }

  function init() {
    document.querySelectorAll("form[data-documents-dropzone]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
