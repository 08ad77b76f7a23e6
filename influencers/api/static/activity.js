// The overview's charts, from GET /api/v1/reports/activity: pages ingested per hour and rows
// exported per day over the last 7 days, and each account's quota use today. Hours and days are
// the API's local ones (INFLUENCERS_TZ): labels are cut from its ISO times ("2026-12-01T10:00:00+08:00"),
// never converted to the browser's zone.

import { columnChart, quotaChart } from "./bars.js";
import { num } from "./common.js";

const monthDay = (iso) => iso.slice(5, 10); // "12-01"
const hourMinute = (iso) => iso.slice(11, 16); // "10:00"
const sum = (values) => values.reduce((total, value) => total + value, 0);

// Draw into box `id` at its width in pixels (text keeps its size); call while the box is shown.
function place(id, draw) {
  const box = document.getElementById(id);
  box.replaceChildren(draw(Math.max(320, Math.floor(box.clientWidth) - 16)));
}

export function renderActivity(activity) {
  const hours = activity.hours.map((hour) => ({ key: hour.start, value: hour.pages }));
  place("chart-pages", (width) => columnChart(hours, {
    name: "每小时入库页数", width,
    tip: (point) => `${monthDay(point.key)} ${hourMinute(point.key)}：${num(point.value)} 页`,
    tick: (point) => (hourMinute(point.key) === "00:00" ? monthDay(point.key) : null), // each local midnight
  }));
  document.getElementById("pages-total").textContent = `近 7 天共 ${num(sum(activity.hours.map((h) => h.pages)))} 页`;

  const days = activity.days.map((day) => ({ key: day.date, value: day.rows_exported, files: day.files }));
  place("chart-exports", (width) => columnChart(days, {
    name: "每日导出达人数", values: true, height: 180, width,
    tip: (point) => `${point.key}：${num(point.value)} 条 · ${num(point.files)} 个文件`,
    tick: (point) => monthDay(point.key),
  }));
  document.getElementById("exports-total").textContent = `近 7 天共 ${num(sum(activity.days.map((d) => d.rows_exported)))} 条`;

  place("chart-quota", (width) => quotaChart(activity.quota, { width }));
  document.body.dataset.activityLoads = String(Number(document.body.dataset.activityLoads || 0) + 1); // tests wait on it
}
