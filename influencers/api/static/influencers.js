// The influencer table ("达人"): the filters of GET /api/v1/influencers in the hash
// (#/influencers?domain=…&fans_min=…&sort=-fans&limit=50), keyset pages with a stack of cursors
// kept here for "previous", sorting by column, saved searches, and an export of the selection.
// Only filters that are set are sent (the API refuses an empty `q=`, and any unknown name).

import { api, badge, begin, el, failed, fillTable, localTime, shown, signed } from "./common.js";

const LIST = "#/influencers";
const TEXT_FILTERS = ["domain", "q", "uid", "region", "tag", "status"];
const NUMBER_FILTERS = ["fans_min", "fans_max", "growth_7d_min", "growth_30d_min"];
const LABELS = { domain: "领域", q: "昵称", uid: "UID", region: "地区", tag: "标签", status: "状态", fans_min: "粉丝≥",
  fans_max: "粉丝≤", growth_7d_min: "7日增长≥", growth_30d_min: "30日增长≥", has_contact: "有联系方式" };
const STATUS = { pending_export: "待导出", exported: "已导出" };
// column → the API's sort name for it (growth is the 7-day growth)
const SORTABLE = { fans: "fans", growth_7d: "growth", growth_30d: "growth_30d", ingested_at: "ingested_at" };
const SORTS = Object.values(SORTABLE).flatMap((name) => [name, "-" + name]);
const DEFAULT_SORT = "-fans";
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

let view = null; // {filters, sort, limit}: what the hash asks for
let paging = { key: null, cursors: [null], index: 0, next: null }; // cursors[i] opens page i
let wired = false;
let listHash = LIST; // the last selection shown, for the detail's way back

export const lastList = () => listHash;

// -- the hash ⇄ the selection ---------------------------------------------------------------
function readQuery(params) {
  const filters = {};
  for (const name of TEXT_FILTERS) {
    const value = (params.get(name) || "").trim();
    if (value) filters[name] = value;
  }
  for (const name of NUMBER_FILTERS) {
    const value = (params.get(name) || "").trim();
    if (/^-?\d+$/.test(value)) filters[name] = Number.isSafeInteger(Number(value)) ? Number(value) : value;
  }
  if (params.get("has_contact") === "true") filters.has_contact = true;
  if (filters.status && !Object.hasOwn(STATUS, filters.status)) delete filters.status;
  const sort = SORTS.includes(params.get("sort")) ? params.get("sort") : DEFAULT_SORT;
  const limit = Number(params.get("limit"));
  return { filters, sort, limit: Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT ? limit : DEFAULT_LIMIT };
}

function toQuery({ filters, sort, limit }) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) params.set(name, String(value));
  params.set("sort", sort);
  params.set("limit", String(limit));
  return params;
}

function go(state) {
  const hash = LIST + "?" + toQuery(state);
  if (location.hash === hash) showInfluencers(toQuery(state), true); // the same selection: reload it
  else location.hash = hash;
}

function readForm() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams();
  for (const input of form.elements) {
    if (!input.name || (input.type === "checkbox" && !input.checked)) continue;
    const value = input.type === "number" && !Number.isNaN(input.valueAsNumber) ? String(input.valueAsNumber) : input.value;
    if (value.trim()) params.set(input.name, value.trim());
  }
  params.set("sort", view ? view.sort : DEFAULT_SORT);
  return readQuery(params);
}

function fillForm({ filters, limit }) {
  const form = document.getElementById("filters");
  for (const input of form.elements) {
    if (!input.name) continue;
    if (input.type === "checkbox") input.checked = filters[input.name] === true;
    else if (input.name === "limit") input.value = String(limit);
    else input.value = filters[input.name] === undefined ? "" : String(filters[input.name]);
  }
}

function describe(filters) {
  const parts = Object.entries(filters).map(([name, value]) =>
    name === "has_contact" ? LABELS[name] : `${LABELS[name]} ${name === "status" ? STATUS[value] : value}`);
  return parts.length ? "筛选：" + parts.join(" · ") : "全部达人";
}

// -- the table ------------------------------------------------------------------------------
function sortHead(key, label) {
  const name = SORTABLE[key];
  const order = view.sort === name ? "ascending" : view.sort === "-" + name ? "descending" : "";
  const arrow = order === "ascending" ? " ▲" : order === "descending" ? " ▼" : "";
  const next = order === "descending" ? name : "-" + name; // first click: largest first
  return el("button", { type: "button", class: "sort", "data-sort": name, "data-order": order || null,
    title: "按此列排序", text: label + arrow, onclick: () => go({ ...view, sort: next }) });
}

function renderTable(items) {
  fillTable("influencer-table", [
    { key: "nickname", label: "昵称", render: (r) => el("a", { class: "nick", href: LIST + "/" + encodeURIComponent(r.uid),
      title: r.nickname || "" }, [el("bdi", { text: r.nickname === null ? "(无昵称)" : r.nickname })]) },
    { key: "uid", label: "UID", render: (r) => el("bdi", { class: "uid", text: r.uid }) },
    { key: "domain", label: "领域" },
    { key: "fans", label: "粉丝", num: true, head: () => sortHead("fans", "粉丝") },
    { key: "growth_7d", label: "7日增长", num: true, head: () => sortHead("growth_7d", "7日增长"),
      render: (r) => signed(r.growth_7d) },
    { key: "growth_30d", label: "30日增长", num: true, head: () => sortHead("growth_30d", "30日增长"),
      render: (r) => signed(r.growth_30d) },
    { key: "region", label: "地区" },
    { key: "tags", label: "标签", render: (r) => el("span", {}, r.tags.map((tag) => el("span", { class: "tag", text: tag }))) },
    { key: "has_contact", label: "联系方式", render: (r) => (r.has_contact ? "有" : "—") },
    { key: "status", label: "状态", render: (r) => badge(r.status, STATUS) },
    { key: "ingested_at", label: "入库时间", head: () => sortHead("ingested_at", "入库时间"),
      render: (r) => localTime(r.ingested_at) },
    { key: "crawl_count", label: "采集次数", num: true },
  ], items, (r) => r.uid);
}

// Page ``index`` (0: the first) of the selection; the pager moves only once it has arrived.
async function loadPage(index) {
  const current = begin();
  const params = toQuery(view);
  const after = paging.cursors[index];
  if (after) params.set("after", after);
  setPagerBusy(true);
  try {
    const page = await api("/api/v1/influencers?" + params);
    if (!current()) return;
    paging.index = index;
    paging.next = page.next;
    renderTable(page.items);
    document.getElementById("page-label").textContent = `第 ${index + 1} 页 · 本页 ${page.items.length} 条`;
    shown("influencers-view");
  } catch (error) {
    if (!current()) return;
    failed(error);
    if (!error.unauthorized) document.getElementById("influencers-view").hidden = false; // the form stays usable
  } finally {
    if (current()) setPagerBusy(false);
  }
}

function setPagerBusy(busy) {
  document.getElementById("prev-page").disabled = busy || paging.index === 0;
  document.getElementById("next-page").disabled = busy || !paging.next;
}

function turn(step) {
  if (step > 0) paging.cursors = [...paging.cursors.slice(0, paging.index + 1), paging.next];
  loadPage(paging.index + step);
}

// -- export and saved searches --------------------------------------------------------------
function renderExportBox() {
  const button = document.getElementById("export-button");
  const note = document.getElementById("export-note");
  const { domain, status } = view.filters;
  button.disabled = !domain || status === "exported";
  if (!domain) note.textContent = "导出需要一个领域：请先在筛选里填写「领域」。";
  else if (status === "exported") note.textContent = "导出只取待导出的达人：去掉「已导出」状态筛选后再导出。";
  else note.textContent = `将导出领域「${domain}」中符合当前筛选、尚未导出的达人；排序和分页不影响导出。`;
}

async function exportSelection() {
  const result = document.getElementById("export-result");
  const { domain, status, ...filter } = view.filters; // the task's domain; an export always takes pending rows
  const limit = document.getElementById("export-limit").value.trim();
  const body = { domain, format: document.getElementById("export-format").value,
    limit: limit ? Number(limit) : null, filter };
  const button = document.getElementById("export-button");
  button.disabled = true;
  result.replaceChildren();
  try {
    const task = await api("/api/v1/tasks/export", { method: "POST", body });
    result.dataset.taskId = String(task.id);
    result.replaceChildren(`已创建导出任务 #${task.id}（${task.domain}，${task.export_format}）。进度见 `,
      el("a", { href: "#/", text: "运行总览" }), "。");
  } catch (error) {
    failed(error);
  } finally {
    renderExportBox();
  }
}

async function loadSavedSearches() {
  const select = document.getElementById("saved-searches");
  const searches = await api("/api/v1/searches");
  select.replaceChildren(el("option", { value: "", text: searches.length ? "已保存的搜索…" : "(没有保存的搜索)" }),
    ...searches.map((saved) => el("option", { value: saved.name, text: saved.name })));
  select.onchange = () => {
    const saved = searches.find((s) => s.name === select.value);
    if (saved) go({ ...readQuery(new URLSearchParams(saved.filter)), sort: view.sort, limit: view.limit });
  };
}

async function saveSearch() {
  const input = document.getElementById("search-name");
  const name = input.value.trim();
  if (!name) {
    input.focus();
    return;
  }
  try {
    await api("/api/v1/searches/" + encodeURIComponent(name), { method: "PUT", body: view.filters });
    input.value = "";
    await loadSavedSearches();
    document.getElementById("saved-searches").value = name;
  } catch (error) {
    failed(error);
  }
}

function wire() {
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    go(readForm());
  });
  document.getElementById("prev-page").addEventListener("click", () => turn(-1));
  document.getElementById("next-page").addEventListener("click", () => turn(1));
  document.getElementById("export-button").addEventListener("click", exportSelection);
  document.getElementById("save-search").addEventListener("click", saveSearch);
  wired = true;
}

// The route #/influencers?…: the same selection as last time keeps its page (back from a detail).
export function showInfluencers(params, reload) {
  if (!wired) wire();
  view = readQuery(params);
  const key = toQuery(view).toString();
  if (reload || key !== paging.key) paging = { key, cursors: [null], index: 0, next: null };
  listHash = LIST + "?" + key;
  fillForm(view);
  document.getElementById("selection-text").textContent = describe(view.filters);
  document.getElementById("export-result").replaceChildren();
  renderExportBox();
  loadSavedSearches().catch(() => {}); // a refused token shows up through the page itself
  loadPage(paging.index);
}
