// The dashboard: polls /api/v1/status and today's reports every 5 s and renders tables.
// Text from the database (nicknames, reasons, domains) is only ever set with textContent.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "influencers.apiToken";
  const STATE = { pending: "等待中", in_progress: "运行中", paused: "已暂停", completed: "已完成", failed: "失败" };
  const ACCOUNT = { idle: "空闲", ingesting: "入库中", exporting: "导出中", disabled: "已停用" };
  const TYPE = { ingestion: "入库", export: "导出" };
  const STATE_ORDER = ["in_progress", "pending", "paused", "failed", "completed"];

  let timer = null;
  let refreshes = 0;
  let generation = 0; // a refresh started later wins over one still in flight
  let tz = undefined;

  // -- token: #token=… once, then sessionStorage ---------------------------------------------
  function takeTokenFromHash() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 401) throw Object.assign(new Error("需要 API 令牌"), { unauthorized: true, token });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      throw new Error(message);
    }
    return body;
  }

  // -- small DOM helpers ----------------------------------------------------------------------
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else node[key] = value;
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  const num = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("zh-CN"));

  function time(value) {
    if (!value) return "—";
    const options = { timeZone: tz, hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit" };
    try { return new Date(value).toLocaleString("zh-CN", options); } catch (e) { return value; }
  }

  function badge(kind, labels) {
    return el("span", { class: "status " + kind, text: labels[kind] || kind });
  }

  // columns: [{key, label, num?, render?(row) -> Node|string}]
  function fillTable(id, columns, rows, keyOf, rowClass) {
    const table = document.getElementById(id);
    const head = el("thead", {}, [el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : "", text: c.label })))]);
    const body = el("tbody");
    if (!rows.length) {
      body.append(el("tr", {}, [el("td", { class: "empty", colSpan: columns.length, text: "暂无数据" })]));
    }
    for (const row of rows) {
      const tr = el("tr", { "data-key": keyOf(row), class: rowClass ? rowClass(row) : "" });
      for (const c of columns) {
        const raw = row[c.key];
        const content = c.render ? c.render(row) : c.num ? num(raw) : raw === null || raw === undefined ? "—" : String(raw);
        const td = el("td", { class: c.num ? "num" : "", "data-field": c.key,
          "data-value": raw === null || raw === undefined || typeof raw === "object" ? "" : raw });
        td.append(content);
        tr.append(td);
      }
      body.append(tr);
    }
    table.replaceChildren(head, body);
  }

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

  // -- the loop -------------------------------------------------------------------------------
  function showError(message) {
    const banner = document.getElementById("error");
    banner.hidden = !message;
    banner.textContent = message || "";
  }

  async function refresh() {
    clearTimeout(timer);
    const mine = ++generation;
    const live = document.getElementById("live");
    try {
      const [status, ingestion, exported] = await Promise.all([
        api("/api/v1/status"), api("/api/v1/reports/ingestion"), api("/api/v1/reports/export"),
      ]);
      if (mine !== generation) return;
      tz = status.tz;
      renderStateCards(status.task_counts);
      renderTasks(status.tasks);
      renderAccounts(status.accounts);
      renderIngestion(ingestion);
      renderExport(exported);
      renderBacklog(status.backlog);
      document.getElementById("today").textContent = `配额日 ${status.today} (${status.tz})`;
      document.getElementById("updated").textContent = "更新于 " + time(status.generated_at);
      document.getElementById("content").hidden = false;
      document.getElementById("login").hidden = true;
      live.textContent = "实时";
      live.className = "pill ok";
      showError("");
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
    } catch (error) {
      if (mine !== generation) return;
      if (error.unauthorized) {
        if (sessionStorage.getItem(TOKEN_KEY) === error.token) sessionStorage.removeItem(TOKEN_KEY);
        document.getElementById("login").hidden = false;
        document.getElementById("content").hidden = true;
        live.textContent = "未认证";
        live.className = "pill stale";
        showError("");
        return; // wait for a token
      }
      live.textContent = "数据过期";
      live.className = "pill stale";
      showError("刷新失败：" + error.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromHash();
    document.getElementById("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("token-input");
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = "";
      refresh();
    });
    window.addEventListener("hashchange", () => { takeTokenFromHash(); refresh(); });
    refresh();
  });
})();
