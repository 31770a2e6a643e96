// Shows how many characters are left in the message box (the server checks the limit too).
document.querySelectorAll("textarea[data-counter]").forEach(function (box) {
  var counter = document.getElementById(box.dataset.counter);
  var limit = parseInt(box.getAttribute("maxlength"), 10);
  if (!counter || !limit) return;
  function update() {
    var left = limit - box.value.length;
    counter.textContent = left + " characters left";
    counter.classList.toggle("is-over", left < 0);
  }
  box.addEventListener("input", update);
  update();
});
