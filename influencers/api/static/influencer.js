// One influencer (#/influencers/<uid>): its fields, a chart of its fans over time, the crawl
// that last listed it, the export file it went to, and its raw data as the platform gave it.

import { fansChart } from "./chart.js";
import { api, badge, begin, el, failed, localTime, num, shown, signed } from "./common.js";
import { lastList } from "./influencers.js";

const STATUS = { pending_export: "待导出", exported: "已导出" };
const EXPORT_STATE = { published: "已写出", reserved: "写出中" };

// A link only to a web address: a platform's profile_url could be `javascript:…`.
function webLink(address) {
  try {
    const url = new URL(address);
    if (url.protocol === "http:" || url.protocol === "https:") {
      return el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", class: "wrap", text: address });
    }
  } catch (e) { /* not a URL: shown as text */ }
  return el("span", { class: "wrap", text: address });
}

// pairs: [[label, key, value (Node|string|null)]] → <dt>/<dd>; a missing value shows "—"
function fillFields(id, pairs) {
  const list = document.getElementById(id);
  list.replaceChildren(...pairs.flatMap(([label, key, value]) => [
    el("dt", { text: label }),
    el("dd", { "data-field": key }, [value === null || value === undefined || value === "" ? "—" : value]),
  ]));
}

function render(found) {
  const who = found.influencer;
  document.getElementById("detail-title").replaceChildren(
    el("bdi", { class: "nick", text: who.nickname === null ? "(无昵称)" : who.nickname }),
    el("small", {}, ["UID ", el("bdi", { text: who.uid })]));
  fillFields("detail-fields", [
    ["领域", "domain", who.domain],
    ["粉丝", "fans", num(who.fans)],
    ["7日增长", "growth_7d", signed(who.growth_7d)],
    ["30日增长", "growth_30d", signed(who.growth_30d)],
    ["地区", "region", who.region],
    ["标签", "tags", who.tags.length ? el("span", {}, who.tags.map((tag) => el("span", { class: "tag", text: tag }))) : null],
    ["联系方式", "has_contact", who.has_contact ? "有" : "无"],
    ["主页", "profile_url", who.profile_url ? webLink(who.profile_url) : null],
    ["状态", "status", badge(who.status, STATUS)],
    ["首次入库", "ingested_at", localTime(who.ingested_at)],
    ["最近采集", "updated_at", localTime(who.updated_at)],
    ["采集次数", "crawl_count", num(who.crawl_count)],
    ["来源页", "source_page", found.source_page],
  ]);

  const history = found.history;
  document.getElementById("history-note").textContent = `每次粉丝数变化记录一次 · 共 ${history.length} 条`;
  document.getElementById("history-chart").replaceChildren(fansChart(history, localTime));

  const crawl = found.last_crawl;
  fillFields("detail-crawl", crawl ? [
    ["任务", "task_id", "#" + crawl.task_id],
    ["领域", "domain", crawl.domain],
    ["页码", "page_number", String(crawl.page_number)],
    ["账号", "account", crawl.account],
    ["时间", "end_time", localTime(crawl.end_time)],
    ["来源地址", "source_url", crawl.source_url ? webLink(crawl.source_url) : null],
  ] : [["记录", "none", "没有采集记录"]]);

  const exported = found.export;
  fillFields("detail-export", exported ? [
    ["任务", "task_id", "#" + exported.task_id],
    ["文件", "file_path", el("span", { class: "wrap", text: exported.file_path })],
    ["状态", "state", EXPORT_STATE[exported.state] || exported.state],
    ["格式", "export_format", exported.export_format],
    ["账号", "account", exported.account],
    ["时间", "end_time", localTime(exported.end_time || exported.start_time)],
  ] : [["记录", "none", "尚未导出"]]);

  document.getElementById("raw-data").textContent = JSON.stringify(found.raw_data, null, 2);
}

// The route #/influencers/<uid>, ``encoded`` as the hash holds it.
export async function showInfluencer(encoded) {
  const current = begin();
  document.getElementById("back-to-list").href = lastList();
  try {
    const found = await api("/api/v1/influencers/" + encodeURIComponent(decodeURIComponent(encoded)));
    if (!current()) return;
    render(found);
    shown("influencer-view");
  } catch (error) {
    if (current()) failed(error instanceof URIError ? new Error("地址里的 UID 无法解码") : error);
  }
}
