// Fill in this device's time so one press sets the hub's clock.
(function () {
  var ms = document.getElementById("device-epoch-ms");
  var local = document.getElementById("local-time");
  if (!ms) return;
  var now = new Date();
  ms.value = String(now.getTime());
  if (local) {
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    local.value = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate()) +
      "T" + pad(now.getHours()) + ":" + pad(now.getMinutes());
  }
})();
