// A line chart of fans over time, drawn as SVG by hand: one circle per history point (with a
// <title> tooltip), a line through them, round value ticks and the first and last dates.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 760;
const HEIGHT = 260;
const PAD = { left: 72, right: 20, top: 14, bottom: 30 };
const TICKS = 4;
const compact = new Intl.NumberFormat("zh-CN", { notation: "compact", maximumFractionDigits: 2 });

export function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// The value axis: round ticks (1, 2 or 5 × 10^n apart) around the values; a flat history gets
// a band around its value; counts never go below 0.
function axis(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi === lo) {
    const room = Math.max(1, Math.abs(hi) * 0.05);
    [lo, hi] = [lo >= 0 ? Math.max(0, lo - room) : lo - room, hi + room];
  }
  const rough = (hi - lo) / TICKS;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].find((unit) => unit * power >= rough) * power;
  const first = Math.floor(lo / step);
  const ticks = Array.from({ length: Math.ceil(hi / step) - first + 1 }, (_, i) => (first + i) * step);
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
}

// history: [{recorded_at, fans}] oldest first; formatTime(iso) → label text
export function fansChart(history, formatTime) {
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "fans-chart", role: "img",
    "aria-label": `粉丝变化：${history.length} 个记录点` });
  if (!history.length) {
    chart.append(svg("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "axis" }, "暂无粉丝记录"));
    return chart;
  }
  const times = history.map((point) => Date.parse(point.recorded_at));
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const { lo, hi, ticks } = axis(history.map((point) => point.fans));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t) => PAD.left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * innerW : innerW / 2);
  const y = (fans) => PAD.top + innerH - ((fans - lo) / (hi - lo)) * innerH;

  for (const value of ticks) {
    chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: PAD.left - 8, y: y(value) + 4, "text-anchor": "end", class: "axis" }, compact.format(value)));
  }
  const bottom = HEIGHT - 8;
  chart.append(svg("text", { x: x(t0), y: bottom, "text-anchor": t1 > t0 ? "start" : "middle", class: "axis" },
    formatTime(history[0].recorded_at)));
  if (t1 > t0) {
    chart.append(svg("text", { x: x(t1), y: bottom, "text-anchor": "end", class: "axis" },
      formatTime(history[history.length - 1].recorded_at)));
  }

  const coordinates = history.map((point, i) => `${x(times[i]).toFixed(1)},${y(point.fans).toFixed(1)}`);
  chart.append(svg("polyline", { points: coordinates.join(" "), class: "line" }));
  history.forEach((point, i) => {
    const dot = svg("circle", { cx: x(times[i]).toFixed(1), cy: y(point.fans).toFixed(1), r: 4, class: "point",
      "data-recorded-at": point.recorded_at, "data-fans": point.fans });
    dot.append(svg("title", {}, `${formatTime(point.recorded_at)}：${point.fans.toLocaleString("zh-CN")} 粉丝`));
    chart.append(dot);
  });
  return chart;
}
