// Copy buttons of the console: a button with data-copy="#id" copies that element's text.
// Without this script the buttons stay hidden and the text is still selectable.
"use strict";
(function () {
  function announce(button, message) {
    var section = button.closest("section") || document;
    var status = section.querySelector(".copy-status");
    if (status) {
      status.textContent = "";
      window.setTimeout(function () { status.textContent = message; }, 50);
    }
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) { return; }
    var text = target.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { announce(button, "Copied"); },
        function () { selectText(target); announce(button, "Selected: press Ctrl+C to copy"); }
      );
    } else {
      selectText(target);
      announce(button, "Selected: press Ctrl+C to copy");
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { copy(button); });
  });
})();
