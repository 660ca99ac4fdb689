// Small helps for phones with JavaScript on. Every page works without them.
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  // Feedback: hear the recording before sending it, and catch one over the size limit
  // before it is sent, so the villager keeps it and what they wrote.
  var voice = document.getElementById("voice");
  var form = document.getElementById("feedback-form");
  if (voice && form) {
    var check = document.getElementById("voice-check");
    var preview = document.getElementById("voice-preview");
    var error = document.getElementById("voice-error");
    var max = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
    var url = null;
    var chosen = function () { return voice.files && voice.files[0]; };
    var tooBig = function () { var f = chosen(); return !!(f && max && f.size > max); };
    var warn = function () {
      error.textContent = form.getAttribute("data-too-big");
      error.hidden = false;
    };
    voice.addEventListener("change", function () {
      var f = chosen();
      if (url) { URL.revokeObjectURL(url); url = null; }
      error.hidden = true;
      if (!f) { check.hidden = true; return; }
      url = URL.createObjectURL(f);
      preview.src = url;
      check.hidden = false;
      if (tooBig()) { warn(); }
    });
    form.addEventListener("submit", function (e) {
      if (tooBig()) { e.preventDefault(); warn(); error.scrollIntoView(); }
    });
  }

  // Spoken words: the clips one after another, each digit of the code lit while it is said.
  var digits = document.querySelectorAll(".digit");
  var light = function (mark) {
    each(digits, function (d, n) { d.classList.toggle("now", n === mark); });
  };
  each(document.querySelectorAll(".say"), function (box) {
    var button = box.querySelector("button");
    var fallback = box.querySelector("audio");
    var joined = box.querySelector(".joined");
    var clips = box.getAttribute("data-clips").split(" ").map(function (c) {
      var p = c.split("|");
      return { src: p[0], mark: parseInt(p[1], 10) };
    });
    var player = new Audio();
    var at = -1;
    var stop = function () {
      at = -1;
      light(-1);
      button.removeAttribute("aria-pressed");
      box.removeAttribute("data-playing");
    };
    var next = function () {
      at += 1;
      if (at >= clips.length) { stop(); box.setAttribute("data-done", "1"); return; }
      light(clips[at].mark);
      box.setAttribute("data-playing", clips[at].src);
      player.src = clips[at].src;
      var started = player.play();
      if (started && started.catch) { started.catch(stop); }
    };
    player.addEventListener("ended", next);
    player.addEventListener("error", stop);
    button.addEventListener("click", function () {
      if (at >= 0) { player.pause(); stop(); return; }
      if (fallback) { fallback.pause(); }
      box.removeAttribute("data-done");
      button.setAttribute("aria-pressed", "true");
      next();
    });
    if (joined) { joined.hidden = true; }
    button.hidden = false;
  });

  // A notice's big Listen button plays its sound here on the page.
  each(document.querySelectorAll("button[data-plays]"), function (button) {
    var audio = document.getElementById(button.getAttribute("data-plays"));
    if (!audio) { return; }
    button.addEventListener("click", function () {
      if (audio.paused) { audio.play(); } else { audio.pause(); }
    });
    audio.addEventListener("play", function () { button.setAttribute("aria-pressed", "true"); });
    audio.addEventListener("pause", function () { button.setAttribute("aria-pressed", "false"); });
    button.hidden = false;
  });
})();
