// Small behaviours htmx does not give. Loaded in the page's head, before htmx.

// Until htmx has taken over the page, the browser does not send a form htmx is to send:
// those forms name no method or action, so the browser would ask for the page itself,
// with what was typed in its address, and lose it. A click in that moment does nothing;
// the next one works.
(function () {
  var ready = false;
  var sends = "[hx-post], [hx-get], [hx-put], [hx-patch], [hx-delete]";
  document.addEventListener("htmx:load", function (event) {
    if (event.target === document.body) ready = true;
  });
  document.addEventListener("submit", function (event) {
    if (ready) return;
    var form = event.target, by = event.submitter;
    if ((form.matches && form.matches(sends)) || (by && by.matches && by.matches(sends))) event.preventDefault();
  }, true);
})();

// Messages in the corner fade after a while.
document.addEventListener("htmx:afterSwap", function (event) {
  var toast = document.getElementById("toast");
  if (event.detail.target === toast && toast.textContent.trim()) {
    clearTimeout(toast._timer);
    toast._timer = setTimeout(function () { toast.innerHTML = ""; }, 8000);
  }
});
