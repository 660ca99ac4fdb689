// Record a spoken answer in the browser and put it in the form's file field, so Save sends it as an upload.
(function () {
  var box = document.getElementById("recorder");
  var field = document.getElementById("reply_audio");
  if (!box || !field || !window.MediaRecorder || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia || !window.DataTransfer) return;
  var start = document.getElementById("rec-start"), stop = document.getElementById("rec-stop");
  var preview = document.getElementById("rec-preview"), state = document.getElementById("rec-state");
  var recorder = null, chunks = [];
  box.hidden = false;
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
      chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (t) { t.stop(); });
        var type = recorder.mimeType || "audio/webm";
        var file = new File(chunks, "answer." + (type.indexOf("ogg") >= 0 ? "ogg" : "webm"), {type: type});
        var dt = new DataTransfer();
        dt.items.add(file);
        field.files = dt.files;
        preview.src = URL.createObjectURL(file);
        preview.hidden = false;
        state.textContent = state.getAttribute("data-ready");
        start.disabled = false;
        stop.disabled = true;
      };
      recorder.start();
      state.textContent = state.getAttribute("data-recording");
      start.disabled = true;
      stop.disabled = false;
    }).catch(function () { box.hidden = true; });
  });
  stop.addEventListener("click", function () { if (recorder) recorder.stop(); });
})();
