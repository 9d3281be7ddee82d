// Progressive enhancement for the search page: search-as-you-type, the "within
// these filters" choice, focus on the results after a filter, and a filter box for
// long facets. No framework, no build step; the page works the same without it.
(function () {
  "use strict";

  var FOCUS_RESULTS = "searchapp.focus-results";

  function setUpCombobox(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    var status = document.getElementById("q-status");
    if (!list) return;
    var options = [];
    var active = -1;
    var timer = null;
    var lastAsked = null;

    function announce(text) {
      if (status) status.textContent = text;
    }

    function close() {
      list.hidden = true;
      list.textContent = "";
      options = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      options.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      active = index;
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      input.value = options[index].textContent;
      close();
      if (input.form) input.form.submit();
    }

    function show(suggestions) {
      close();
      if (!suggestions.length) return;
      suggestions.forEach(function (text, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = text;
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();  // keep focus in the box
          choose(i);
        });
        list.appendChild(option);
        options.push(option);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      announce(suggestions.length + (suggestions.length === 1 ? " suggestion" : " suggestions") +
               ": use the up and down arrows to choose");
    }

    function ask() {
      var text = input.value;
      if (text.trim().length < 2) { close(); announce(""); return; }
      lastAsked = text;
      fetch("/api/suggest?q=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
        .then(function (body) {
          if (input.value !== lastAsked || document.activeElement !== input) return;
          show(body.suggestions);
          if (!body.suggestions.length) announce("");
        })
        .catch(function () { close(); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 120);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && options.length) {
        event.preventDefault();
        highlight((active + 1) % options.length);
      } else if (event.key === "ArrowUp" && options.length) {
        event.preventDefault();
        highlight(active <= 0 ? options.length - 1 : active - 1);
      } else if (event.key === "Enter" && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", close);
  }

  // A query typed over a filtered search keeps the filters when it refines the
  // current one (all its words are still there), and drops them when it is a new
  // search, until the visitor ticks or unticks the box themselves.
  function setUpWithin(form) {
    var box = form.querySelector("#within");
    var input = form.querySelector("input[name=q]");
    var before = words(form.getAttribute("data-query") || "");
    if (!box || !input || !before.length) return;
    var touched = false;
    box.addEventListener("change", function () { touched = true; });
    input.addEventListener("input", function () {
      if (touched) return;
      var now = words(input.value);
      box.checked = before.every(function (word) { return now.indexOf(word) >= 0; });
    });
  }

  function words(text) {
    return text.toLowerCase().split(/\s+/).filter(Boolean);
  }

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  // A filter-as-you-type box over every value of a long facet, shown or not.
  function setUpFacetFilter(section, index) {
    var plural = section.getAttribute("data-filterable");
    var list = section.querySelector("ul.values");
    if (!list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll("li"));
    var id = "facet-filter-" + index;
    var label = document.createElement("label");
    label.htmlFor = id;
    label.className = "visually-hidden";
    label.textContent = "Filter " + plural;
    var input = document.createElement("input");
    input.type = "search";
    input.id = id;
    input.className = "facet-filter";
    input.placeholder = "Filter " + plural;
    input.autocomplete = "off";
    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    list.parentNode.insertBefore(label, list);
    list.parentNode.insertBefore(input, list);
    list.parentNode.insertBefore(status, list);
    input.addEventListener("input", function () {
      var wanted = fold(input.value.trim());
      var shown = 0;
      items.forEach(function (item) {
        var name = item.querySelector(".label");
        var match = wanted ? !!name && fold(name.textContent).indexOf(wanted) >= 0
                           : item.hasAttribute("data-top");
        item.hidden = !match;
        if (match) shown += 1;
      });
      status.textContent = wanted ? shown + " of " + items.length + " " + plural + " match" : "";
    });
  }

  // After a filter, a sort or a year range is applied, focus lands on the results
  // heading, which says how many items there are and which filters are on.
  function rememberToFocusResults(event) {
    // A link opened in another tab or window leaves this page as it is.
    if (event && (event.button > 0 || event.ctrlKey || event.metaKey || event.shiftKey)) return;
    try { sessionStorage.setItem(FOCUS_RESULTS, "1"); } catch (e) { /* storage off */ }
  }

  function focusResultsIfAsked() {
    var asked = null;
    try {
      asked = sessionStorage.getItem(FOCUS_RESULTS);
      sessionStorage.removeItem(FOCUS_RESULTS);
    } catch (e) { return; }
    var heading = document.getElementById("count");
    if (asked && heading) heading.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[role=combobox]").forEach(setUpCombobox);
    document.querySelectorAll("form.searchbox[data-query]").forEach(setUpWithin);
    document.querySelectorAll("section.facet[data-filterable]").forEach(setUpFacetFilter);
    document.querySelectorAll(".filters a, .chips a, .notice.offer a").forEach(function (link) {
      if (!link.closest(".more, .to-results")) link.addEventListener("click", rememberToFocusResults);
    });
    document.querySelectorAll("form.sort, form.year-range").forEach(function (form) {
      form.addEventListener("submit", rememberToFocusResults);
    });
    focusResultsIfAsked();
  });
})();
