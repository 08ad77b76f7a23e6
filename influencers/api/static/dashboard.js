// The dashboard's entry: the token form and the hash routes of its views.
//   #/ (or no hash)          the overview (overview.js), refreshed every 5 s
//   #/influencers?filters    the influencer table (influencers.js)
//   #/influencers/<uid>      one influencer (influencer.js), the uid URL-encoded
// `/dashboard#token=…` hands the page its token once (common.js keeps it in sessionStorage).
// Each view catches its own errors: a refused token brings back the form (`failed`).

import { hideViewsExcept, setToken, takeTokenFromHash } from "./common.js";
import { showInfluencer } from "./influencer.js";
import { showInfluencers } from "./influencers.js";
import { startOverview, stopOverview } from "./overview.js";

const LIST = "#/influencers";

function route() {
  takeTokenFromHash();
  const hash = location.hash;
  const name = hash.startsWith(LIST + "/") ? "influencer"
    : hash === LIST || hash.startsWith(LIST + "?") ? "influencers" : "overview";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.route === (name === "overview" ? "overview" : "influencers")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.getElementById("overview-meta").hidden = name !== "overview";
  stopOverview();
  if (name === "overview") {
    hideViewsExcept("content");
    startOverview();
  } else if (name === "influencers") {
    hideViewsExcept("influencers-view");
    showInfluencers(new URLSearchParams(hash.slice(LIST.length + 1)));
  } else {
    hideViewsExcept("influencer-view");
    showInfluencer(hash.slice(LIST.length + 1));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token-input");
    setToken(input.value.trim());
    input.value = "";
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
