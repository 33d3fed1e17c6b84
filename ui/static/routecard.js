// Small behaviours htmx does not give: messages in the corner fade after a while.
document.addEventListener("htmx:afterSwap", function (event) {
  var toast = document.getElementById("toast");
  if (event.detail.target === toast && toast.textContent.trim()) {
    clearTimeout(toast._timer);
    toast._timer = setTimeout(function () { toast.innerHTML = ""; }, 8000);
  }
});
