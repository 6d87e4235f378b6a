// The location picker of the public forms (Fale Connosco, online requests): a progressive enhancement of the
// typed #latitude / #longitude fields.  Clicking or tapping the map, dragging the marker, or pressing Enter on
// the focused map (its centre) fills them; typing valid coordinates moves the marker; "clear" empties them.
// Without JavaScript, or when Leaflet cannot load, the fields work alone.  Everything comes from the data-
// attributes of #crm-location-map (no inline script: the CSP is script-src 'self').
(function () {
  "use strict";

  var NUMBER = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$/;

  function safeHref(url) {
    return typeof url === "string" && (/^https?:\/\//i.test(url) || (url.charAt(0) === "/" && url.charAt(1) !== "/"));
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // The typed point, or null unless both fields hold numbers in range (the server's rule).
  function typedPoint(latInput, lonInput) {
    if (!NUMBER.test(latInput.value) || !NUMBER.test(lonInput.value)) {
      return null;
    }
    var lat = parseFloat(latInput.value);
    var lon = parseFloat(lonInput.value);
    if (lat < -90 || lat > 90 || lon < -180 || lon > 180) {
      return null;
    }
    return [lat, lon];
  }

  function start() {
    var el = document.getElementById("crm-location-map");
    var box = document.getElementById("crm-location-picker");
    var latInput = document.getElementById("latitude");
    var lonInput = document.getElementById("longitude");
    var clear = document.getElementById("crm-location-clear");
    var status = document.getElementById("crm-location-status");
    if (!el || !box || !latInput || !lonInput || !clear || !status || !window.L) {
      return;
    }
    var L = window.L;
    var data = el.dataset;
    var markerLabel = data.markerLabel || "";
    var initial = typedPoint(latInput, lonInput);
    describe(initial && [latInput.value.trim(), lonInput.value.trim()]); // before showing: not read out at load
    box.hidden = false;
    var map = L.map(el, { scrollWheelZoom: false });
    var attribution = escapeHtml(data.attribution || "");
    if (attribution && safeHref(data.attributionUrl)) {
      attribution = '<a href="' + escapeHtml(data.attributionUrl) + '">' + attribution + "</a>";
    }
    L.tileLayer(data.tileUrl, { maxZoom: 19, attribution: attribution }).addTo(map);
    var marker = null;

    function describe(point) {
      status.textContent = point ? markerLabel + ": " + point[0] + ", " + point[1] : data.noneLabel || "";
      clear.disabled = !latInput.value.trim() && !lonInput.value.trim();
    }

    function show(point) {
      if (!point) {
        if (marker) {
          map.removeLayer(marker);
          marker = null;
        }
        return;
      }
      if (marker) {
        marker.setLatLng(point);
      } else {
        // Not focusable (keyboard: false): keyboard users press Enter on the map or type the coordinates.
        marker = L.marker(point, { draggable: true, keyboard: false, title: markerLabel, alt: markerLabel });
        marker.on("dragend", function () {
          choose(marker.getLatLng());
        });
        marker.addTo(map);
      }
    }

    // A point chosen on the map: into the fields (6 decimals, about 10 cm), the marker and the status line.
    function choose(latlng) {
      var wrapped = map.wrapLatLng(latlng);
      var point = [wrapped.lat.toFixed(6), wrapped.lng.toFixed(6)];
      latInput.value = point[0];
      lonInput.value = point[1];
      show([wrapped.lat, wrapped.lng]);
      describe(point);
    }

    // Typed coordinates: the marker shows them once both are valid (and only then: it is what will be sent).
    function typed() {
      var point = typedPoint(latInput, lonInput);
      show(point);
      if (point) {
        map.panTo(point, { animate: false }); // follows each keystroke: no animation
      }
      describe(point && [latInput.value.trim(), lonInput.value.trim()]);
    }

    if (initial) {
      map.setView(initial, Math.max(parseInt(data.zoom, 10) || 13, 16));
      show(initial);
    } else {
      map.setView([parseFloat(data.lat) || 0, parseFloat(data.lon) || 0], parseInt(data.zoom, 10) || 13);
    }

    map.on("click", function (event) {
      choose(event.latlng);
    });
    // Enter on the map itself (not on its zoom buttons or attribution links) marks the centre.
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target === el) {
        event.preventDefault();
        choose(map.getCenter());
      }
    });
    latInput.addEventListener("input", typed);
    lonInput.addEventListener("input", typed);
    clear.addEventListener("click", function () {
      latInput.value = "";
      lonInput.value = "";
      show(null);
      describe(null);
      latInput.focus();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
