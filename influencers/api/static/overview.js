// The overview ("运行总览"): polls /api/v1/status and today's reports every 5 s and renders
// tables, with the actions of actions.js on its tasks and accounts; the week's charts
// (activity.js) are fetched once a minute and after every action. Text from the database
// (nicknames, reasons, domains) is only ever set with textContent.

import { accountButtons, taskButtons, wireActions } from "./actions.js";
import { renderActivity } from "./activity.js";
import { api, badge, begin, el, failed, fillTable, num, setZone, showError, shown, time } from "./common.js";

const REFRESH_MS = 5000;
const ACTIVITY_MS = 60000;
const STATE = { pending: "等待中", in_progress: "运行中", paused: "已暂停", completed: "已完成", failed: "失败" };
const ACCOUNT = { idle: "空闲", ingesting: "入库中", exporting: "导出中", disabled: "已停用" };
const TYPE = { ingestion: "入库", export: "导出" };
const STATE_ORDER = ["in_progress", "pending", "paused", "failed", "completed"];

let timer = null;
let refreshes = 0;
let activityAt = -Infinity; // when the charts were last fetched
let wired = false;

// -- sections -------------------------------------------------------------------------------
function renderStateCards(counts) {
  const box = document.getElementById("state-cards");
  const cards = [];
  for (const type of ["ingestion", "export"]) {
    for (const state of STATE_ORDER) {
      const found = counts.find((c) => c.task_type === type && c.status === state);
      const tasks = found ? found.tasks : 0;
      cards.push(el("div", { class: "card " + state, "data-type": type, "data-state": state, "data-value": tasks }, [
        el("b", { text: num(tasks) }), el("span", { text: TYPE[type] + " · " + STATE[state] }),
      ]));
    }
  }
  box.replaceChildren(...cards);
}

function progressCell(task) {
  const p = task.progress || {};
  let text;
  if (task.task_type === "ingestion") {
    text = `${num(p.pages_done)} / ${p.pages_total === null ? "?" : num(p.pages_total)} 页`;
  } else {
    text = `已导出 ${num(p.exported)}${task.export_limit ? " / " + num(task.export_limit) : ""} · 待导出 ${num(p.rows_pending)}`;
  }
  const bar = el("progress", { max: 100 });
  if (p.percent !== null && p.percent !== undefined) bar.value = p.percent;
  const span = el("span", { class: "progress-text", text });
  return el("span", {}, [bar, span]);
}

function renderTasks(tasks) {
  fillTable("tasks", [
    { key: "id", label: "任务", render: (t) => (t.parent_id ? "↳ " : "") + "#" + t.id },
    { key: "task_type", label: "类型", render: (t) => TYPE[t.task_type] + (t.is_parent ? " (总任务)" : "") },
    { key: "domain", label: "领域" },
    { key: "status", label: "状态", render: (t) => badge(t.status, STATE) },
    { key: "progress", label: "进度", render: progressCell },
    { key: "progress_marker", label: "断点" },
    { key: "account", label: "账号" },
    { key: "attempts", label: "重试", num: true },
    { key: "last_error", label: "最近原因", render: (t) => el("span", { class: "error-text", text: t.last_error || "" }) },
    { key: "actions", label: "操作", render: (t) => taskButtons(t, tasks) },
  ], tasks, (t) => String(t.id), (t) => (t.parent_id ? "child" : ""));
}

function renderAccounts(accounts) {
  fillTable("accounts", [
    { key: "username", label: "账号" },
    { key: "status", label: "状态", render: (a) => badge(a.status, ACCOUNT) },
    { key: "status_reason", label: "原因" },
    { key: "remaining_quota", label: "今日剩余配额", num: true },
    { key: "today_export_count", label: "今日已导出", num: true },
    { key: "daily_export_limit", label: "每日上限", num: true },
    { key: "cooldown_until", label: "冷却至", render: (a) => (a.cooldown_until ? time(a.cooldown_until) : "—") },
    { key: "last_used_at", label: "最近使用", render: (a) => time(a.last_used_at) },
    { key: "actions", label: "操作", render: accountButtons },
  ], accounts, (a) => a.username);
}

function renderIngestion(report) {
  fillTable("ingestion", [
    { key: "domain", label: "领域" },
    { key: "account", label: "账号" },
    { key: "influencers", label: "入库达人", num: true },
    { key: "pages", label: "页数", num: true },
    { key: "first_page", label: "页码", render: (r) => `${r.first_page}–${r.last_page}` },
    { key: "last_time", label: "最近", render: (r) => time(r.last_time) },
  ], report.rows, (r) => `${r.domain}|${r.account || ""}`);
}

function renderExport(report) {
  fillTable("export", [
    { key: "account", label: "账号" },
    { key: "domain", label: "领域" },
    { key: "rows_exported", label: "导出达人", num: true },
    { key: "files", label: "文件数", num: true },
    { key: "last_time", label: "最近", render: (r) => time(r.last_time) },
  ], report.rows, (r) => `${r.domain}|${r.account}`);
}

function renderBacklog(backlog) {
  fillTable("backlog", [
    { key: "domain", label: "领域" },
    { key: "pending", label: "待导出", num: true },
    { key: "daily_quota", label: "每日配额", num: true },
    { key: "days_needed", label: "所需天数", num: true,
      render: (b) => (b.days_needed === null ? "无可用配额" : num(b.days_needed) + " 天") },
  ], backlog, (b) => b.domain);
}

const SCHEDULE_KIND = { crawl: "采集", export: "导出" };
const OUTCOME = { started: "已启动", skipped: "已跳过", failed: "失败" };

function lastRun(s) {
  if (!s.last_outcome) return "—";
  const what = s.last_outcome === "started"
    ? `任务 #${s.last_task_id}` + (s.last_task_status ? ` (${STATE[s.last_task_status] || s.last_task_status})` : "")
    : s.last_reason || "";
  return el("span", {}, [badge(s.last_outcome, OUTCOME), el("span", { class: "error-text", text: " " + what })]);
}

function renderSchedules(schedules) {
  fillTable("schedules", [
    { key: "name", label: "名称" },
    { key: "cron", label: "cron" },
    { key: "domain", label: "领域" },
    { key: "kind", label: "类型", render: (s) => SCHEDULE_KIND[s.kind] || s.kind },
    { key: "next_run_at", label: "下次运行", render: (s) => (s.paused ? "已暂停" : time(s.next_run_at)) },
    { key: "last_run_at", label: "上次运行", render: (s) => time(s.last_run_at) },
    { key: "last_outcome", label: "结果", render: lastRun },
  ], schedules, (s) => String(s.id));
}

// -- the loop -------------------------------------------------------------------------------
// `changed`: after an action, so the charts are fetched too.
async function refresh(changed) {
  clearTimeout(timer);
  const current = begin();
  const live = document.getElementById("live");
  const charts = changed === true || Date.now() - activityAt >= ACTIVITY_MS;
  try {
    const [status, ingestion, exported, schedules, activity] = await Promise.all([
      api("/api/v1/status"), api("/api/v1/reports/ingestion"), api("/api/v1/reports/export"),
      api("/api/v1/schedules"), charts ? api("/api/v1/reports/activity") : null,
    ]);
    if (!current()) return;
    setZone(status.tz);
    renderStateCards(status.task_counts);
    renderTasks(status.tasks);
    renderAccounts(status.accounts);
    renderIngestion(ingestion);
    renderExport(exported);
    renderBacklog(status.backlog);
    renderSchedules(schedules.schedules);
    document.getElementById("today").textContent = `配额日 ${status.today} (${status.tz})`;
    document.getElementById("updated").textContent = "更新于 " + time(status.generated_at);
    shown("content");
    if (activity) { // drawn once shown: the charts take their boxes' widths
      renderActivity(activity);
      activityAt = Date.now();
    }
    live.textContent = "实时";
    live.className = "pill ok";
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
  } catch (error) {
    if (!current()) return;
    if (error.unauthorized) {
      failed(error);
      return; // wait for a token
    }
    live.textContent = "数据过期";
    live.className = "pill stale";
    showError("刷新失败：" + error.message);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

export function startOverview() {
  if (!wired) wireActions(() => refresh(true));
  wired = true;
  refresh();
}

export function stopOverview() {
  clearTimeout(timer);
}
