// The places map (/locais/mapa): a progressive enhancement.  Without JavaScript, or when Leaflet or the
// GeoJSON cannot load, the page keeps its list of places with coordinates.  Everything comes from the
// data- attributes of #places-map (no inline script: the CSP is script-src 'self').
(function () {
  "use strict";

  function safeHref(url) {
    return typeof url === "string" && (/^https?:\/\//i.test(url) || (url.charAt(0) === "/" && url.charAt(1) !== "/"));
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // Popups are built as DOM nodes with textContent, so titles and addresses can never become markup.
  function popup(props) {
    var box = document.createElement("div");
    var title = document.createElement(safeHref(props.url) ? "a" : "strong");
    title.textContent = props.title || "";
    if (safeHref(props.url)) {
      title.href = props.url;
    }
    box.appendChild(title);
    [props.category_label || props.category, props.address].forEach(function (text) {
      if (text) {
        var line = document.createElement("p");
        line.textContent = text;
        box.appendChild(line);
      }
    });
    return box;
  }

  function start() {
    var el = document.getElementById("places-map");
    if (!el || !window.L || !window.fetch) {
      return;
    }
    var L = window.L;
    var data = el.dataset;
    el.hidden = false;
    var map = L.map(el, { scrollWheelZoom: false }).setView(
      [parseFloat(data.lat) || 0, parseFloat(data.lon) || 0],
      parseInt(data.zoom, 10) || 13
    );
    var attribution = escapeHtml(data.attribution || "");
    if (attribution && safeHref(data.attributionUrl)) {
      attribution = '<a href="' + escapeHtml(data.attributionUrl) + '">' + attribution + "</a>";
    }
    L.tileLayer(data.tileUrl, { maxZoom: 19, attribution: attribution }).addTo(map);
    fetch(data.geojson, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (collection) {
        var layer = L.geoJSON(collection, {
          pointToLayer: function (feature, latlng) {
            var title = (feature.properties && feature.properties.title) || "";
            return L.marker(latlng, { title: title, alt: title });
          },
          onEachFeature: function (feature, marker) {
            marker.bindPopup(popup(feature.properties || {}));
          }
        }).addTo(map);
        if (layer.getLayers().length) {
          map.fitBounds(layer.getBounds(), { padding: [24, 24], maxZoom: 16 });
        }
      })
      .catch(function () {
        el.hidden = true; // the list below still shows every place
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
