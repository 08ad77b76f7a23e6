// Inlined into GET /app/square. Fetches the JSON API with the page's cookies and builds the
// same markup as the server-rendered /square (see sandbox/render.py) inside #app, then appends
// <div id="rendered" data-count="K"> (plus data-error="CODE" when the API call failed).
// Built with DOM calls (textContent/setAttribute), so nicknames need no hand-escaping.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var domain = params.get("domain") || "";
  var page = params.get("page") || "1";
  var app = document.getElementById("app");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) {
      node.setAttribute(key, attrs[key]);
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function href(p) {
    return "/app/square?domain=" + encodeURIComponent(domain) + "&page=" + p;
  }

  function finish(count, code) {
    var done = el("div", {id: "rendered", "data-count": String(count)});
    if (code) {
      done.setAttribute("data-error", code);
    }
    app.appendChild(done);
  }

  // The captcha's challenge (captcha_solvable) gets the markup of render.captcha_page.
  function captcha(code, message, challenge) {
    var div = el("div", {id: "captcha", "data-code": code}, message);
    if (challenge) {
      div.setAttribute("data-challenge-id", challenge.id);
      var form = el("form", {id: "captcha-form", method: "post", action: "/captcha"});
      form.appendChild(el("input", {type: "hidden", name: "challenge_id", value: challenge.id}));
      var label = el("label");
      label.appendChild(el("span", {"class": "question"}, challenge.question));
      label.appendChild(document.createTextNode(" = "));
      label.appendChild(el("input", {type: "text", name: "answer", inputmode: "numeric"}));
      form.appendChild(label);
      form.appendChild(el("button", {type: "submit"}, "提交"));
      div.appendChild(form);
    }
    return div;
  }

  function fail(code, message, challenge) {
    app.textContent = "";
    if (code === "E_CAPTCHA") {
      app.appendChild(captcha(code, message, challenge));
    } else {
      app.appendChild(el("div", {"class": "error", "data-code": code}, message));
    }
    finish(0, code);
  }

  function row(item) {
    var tr = el("tr", {"class": "influencer", "data-uid": item.uid});
    tr.appendChild(el("td", {"class": "nickname", "data-value": item.nickname}, item.nickname));
    tr.appendChild(el("td", {"class": "fans"}, String(item.fans)));
    tr.appendChild(el("td", {"class": "avg-likes"}, String(item.avg_likes)));
    tr.appendChild(el("td", {"class": "region"}, item.region));
    tr.appendChild(el("td", {"class": "gender"}, item.gender));
    var tags = el("td", {"class": "tags"});
    item.tags.forEach(function (tag) { tags.appendChild(el("span", {"class": "tag"}, tag)); });
    tr.appendChild(tags);
    var contact = el("td", {"class": "contact"});
    contact.appendChild(el("span", {"class": "wechat"}, item.contact.wechat));
    contact.appendChild(el("span", {"class": "email"}, item.contact.email));
    tr.appendChild(contact);
    tr.appendChild(el("td", {"class": "price"}, item.price.toFixed(2)));
    var links = el("td", {"class": "links"});
    links.appendChild(el("a", {"class": "profile", href: item.profile_url}, "主页"));
    tr.appendChild(links);
    return tr;
  }

  function render(data) {
    app.textContent = "";
    app.appendChild(el("h1", {id: "domain", "data-domain": data.domain},
      data.domain + " · 第 " + data.page + " / " + data.total_pages + " 页"));
    var table = el("table", {id: "influencers"});
    var head = el("tr");
    ["昵称", "粉丝", "平均点赞", "地区", "性别", "标签", "联系方式", "报价", "主页"].forEach(
      function (name) { head.appendChild(el("th", {}, name)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    data.items.forEach(function (item) { body.appendChild(row(item)); });
    app.appendChild(table);
    var nav = el("div", {id: "pagination", "data-page": String(data.page),
      "data-total-pages": String(data.total_pages), "data-total": String(data.total)});
    if (data.page > 1) {
      nav.appendChild(el("a", {"class": "prev", href: href(data.page - 1)}, "上一页"));
    }
    if (data.has_more) {
      nav.appendChild(el("a", {"class": "next", href: href(data.page + 1)}, "下一页"));
    }
    app.appendChild(nav);
    finish(data.items.length, null);
  }

  var api = "/api/v1/influencers?domain=" + encodeURIComponent(domain) +
    "&page=" + encodeURIComponent(page);
  fetch(api, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (resp) {
      return resp.text().then(function (text) { return {status: resp.status, text: text}; });
    })
    .then(function (result) {
      var data;
      try {
        data = JSON.parse(result.text);
      } catch (err) {
        fail("E_MALFORMED", "数据不完整，请刷新重试");
        return;
      }
      if (data.error) {
        fail(data.error.code, data.error.message || "", data.challenge);
        return;
      }
      render(data);
    })
    .catch(function () { fail("E_NETWORK", "网络错误，请刷新重试"); });
})();
