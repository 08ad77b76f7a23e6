// Bar charts drawn as SVG by hand, like chart.js's line chart (nothing loaded from elsewhere):
// `columnChart` draws one column per point (zeros included, so a quiet hour is visible as a gap),
// `quotaChart` one horizontal track per account with today's use over its daily limit.
// Text from the database (usernames) goes into SVG text nodes with textContent only.

import { svg } from "./chart.js";

const WIDTH = 760; // when the caller does not say: the drawing scales to its box, text with it
const TICKS = 4;
const count = new Intl.NumberFormat("zh-CN");

// A round scale for counts: 0 to `top` in 1, 2 or 5 × 10^n steps (at least 1: counts are whole).
function scale(max) {
  if (!(max > 0)) return { top: 1, ticks: [0, 1] };
  const rough = max / TICKS;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].find((unit) => unit * power >= rough) * power);
  const top = Math.ceil(max / step) * step;
  return { top, ticks: Array.from({ length: top / step + 1 }, (_, i) => i * step) };
}

// points: [{key, value}]; tip(point) → tooltip text; tick(point, i) → an axis label or null;
// `values`: write each column's value above it (for a few wide columns); `width`: the box's
// width in pixels, so that text keeps its size.
export function columnChart(points, { name, tip, tick, values = false, height = 200, width = WIDTH }) {
  const pad = { left: 52, right: 12, top: values ? 20 : 12, bottom: 26 };
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bar-chart", role: "img",
    "aria-label": `${name}：${points.length} 个柱` });
  const { top, ticks } = scale(Math.max(0, ...points.map((point) => point.value)));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const y = (value) => pad.top + innerH - (value / top) * innerH;
  const slot = innerW / Math.max(1, points.length);
  const barW = Math.max(1, slot * (points.length > 30 ? 0.8 : 0.6));

  for (const value of ticks) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, count.format(value)));
  }
  points.forEach((point, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    const bar = svg("rect", { x: x.toFixed(1), y: y(point.value).toFixed(1), width: barW.toFixed(1),
      height: (pad.top + innerH - y(point.value)).toFixed(1), class: "bar", "data-key": point.key,
      "data-value": point.value });
    bar.append(svg("title", {}, tip(point)));
    chart.append(bar);
    const label = tick(point, i);
    if (label) {
      chart.append(svg("text", { x: (x + barW / 2).toFixed(1), y: height - 8, "text-anchor": "middle", class: "axis" },
        label));
    }
    if (values) {
      chart.append(svg("text", { x: (x + barW / 2).toFixed(1), y: (y(point.value) - 5).toFixed(1),
        "text-anchor": "middle", class: "value" }, count.format(point.value)));
    }
  });
  return chart;
}

const ROW = 26;
const LABEL = 150;
const FIGURE = 130;

// accounts: [{username, status, used, limit}]: one track per account, all on one scale (the
// largest limit), so both the share used and the size of each quota can be read.
export function quotaChart(accounts, { width = WIDTH } = {}) {
  const height = Math.max(1, accounts.length) * ROW + 8;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "bar-chart quota-chart", role: "img",
    "aria-label": `今日配额：${accounts.length} 个账号` });
  if (!accounts.length) {
    chart.append(svg("text", { x: width / 2, y: ROW - 6, "text-anchor": "middle", class: "axis" }, "暂无账号"));
    return chart;
  }
  const most = Math.max(1, ...accounts.map((a) => Math.max(a.limit, a.used)));
  const trackW = width - LABEL - FIGURE;
  const w = (value) => ((value / most) * trackW).toFixed(1);
  accounts.forEach((account, i) => {
    const top = 4 + i * ROW;
    const row = svg("g", { class: "quota-row" + (account.status === "disabled" ? " disabled" : ""),
      "data-username": account.username });
    const name = account.username.length > 16 ? account.username.slice(0, 15) + "…" : account.username;
    const label = svg("text", { x: LABEL - 8, y: top + 15, "text-anchor": "end", class: "axis name" }, name);
    label.append(svg("title", {}, account.username));
    const limit = svg("rect", { x: LABEL, y: top + 3, width: w(account.limit), height: ROW - 10, class: "limit",
      "data-limit": account.limit });
    const used = svg("rect", { x: LABEL, y: top + 3, width: w(account.used), height: ROW - 10, class: "used",
      "data-used": account.used, "data-limit": account.limit });
    used.append(svg("title", {}, `${account.username}：今日已导出 ${count.format(account.used)} / 上限 ${count.format(account.limit)}`));
    const figure = svg("text", { x: width - FIGURE + 8, y: top + 15, class: "axis" },
      `${count.format(account.used)} / ${count.format(account.limit)}`);
    row.append(label, limit, used, figure);
    chart.append(row);
  });
  return chart;
}
