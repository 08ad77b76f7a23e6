// The overview's actions: pause and resume tasks, disable (with a reason) and enable accounts,
// start a crawl or an export, add a schedule. Each is one call of the API through common.js `api`,
// which sends the tab's bearer token and Content-Type: application/json on every POST (the API
// refuses anything a cross-site form could send). A refusal (400/404/409/422) shows the API's own
// message on one line beside what was tried; a refused token brings back the token form; success
// refreshes the overview. Handlers are attached here (the page's CSP allows no inline ones), and
// the forms are `novalidate`: every rule and its message is the API's, not a second copy here.

import { api, el, failed, num, time } from "./common.js";

const OPEN = ["pending", "in_progress"];
const PAUSE_REASON = "paused on the dashboard";
let changed = () => {};
let asked = null; // the account the dialog is about: {id, username, action}

const post = (path, body) => api(path, { method: "POST", body });
const input = (form, name) => form.elements.namedItem(name);

// One line of outcome; `created` (an id) is kept in data-id for whoever reads the page.
function say(id, text, ok, created) {
  const line = document.getElementById(id);
  line.textContent = text;
  line.title = text;
  line.className = "action-result " + (ok ? "ok" : "error");
  if (created === undefined || created === null) delete line.dataset.id;
  else line.dataset.id = String(created);
}

// Run `call`: on success its line (`line`) and a refresh, on refusal the API's message (on
// `refusedLine`, the same line unless given), and a refresh too when the thing is gone (404) or
// has moved on (409), since the view is out of date. A refused token closes any dialog and brings
// back the token form. True if it worked.
async function act(line, call, success, button, refusedLine = line) {
  if (button) button.disabled = true;
  try {
    const reply = await call();
    say(line, success(reply), true, reply && reply.id);
    changed();
    return true;
  } catch (error) {
    if (error.unauthorized) {
      for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
      failed(error);
    } else {
      say(refusedLine, error.message, false);
      if (error.status === 404 || error.status === 409) changed();
    }
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

function button(action, text, onclick) {
  return el("button", { type: "button", class: "act", "data-action": action, text, onclick });
}

// -- tasks ----------------------------------------------------------------------------------
function pause(task, event) {
  act("tasks-message", () => post(`/api/v1/tasks/${task.id}/pause`, { reason: PAUSE_REASON }),
    () => `任务 #${task.id} 已暂停`, event.currentTarget);
}

function resume(task, event) {
  act("tasks-message", () => post(`/api/v1/tasks/${task.id}/resume`), () => `任务 #${task.id} 已恢复，等待领取`,
    event.currentTarget);
}

// A task's buttons. A start_crawl parent stays open while its subtasks pause and resume, so its
// buttons follow the subtasks listed with it.
export function taskButtons(task, tasks) {
  let canPause = OPEN.includes(task.status);
  let canResume = task.status === "paused";
  if (task.is_parent) {
    const children = tasks.filter((t) => t.parent_id === task.id);
    canPause = canPause && (!children.length || children.some((t) => OPEN.includes(t.status)));
    canResume = OPEN.includes(task.status) && children.some((t) => t.status === "paused");
  }
  return el("span", { class: "actions" }, [
    canPause && button("pause", "暂停", (event) => pause(task, event)),
    canResume && button("resume", "恢复", (event) => resume(task, event)),
  ]);
}

// -- accounts: a dialog asks for the reason (required to disable, optional to enable) --------
export function accountButtons(account) {
  const action = account.status === "disabled" ? "enable" : "disable";
  return button(action, action === "disable" ? "停用" : "启用", () => ask(account, action));
}

function ask(account, action) {
  asked = { id: account.id, username: account.username, action };
  const verb = action === "disable" ? "停用" : "启用";
  document.getElementById("account-dialog-title").textContent = `${verb}账号「${account.username}」`;
  document.getElementById("account-confirm").textContent = verb;
  const reason = document.getElementById("account-reason");
  reason.value = "";
  reason.placeholder = action === "disable" ? "必填：停用原因 (记入账号和事件历史)" : "可选：启用原因";
  say("account-dialog-result", "", true);
  document.getElementById("account-dialog").showModal();
  reason.focus();
}

async function confirmAccount(event) {
  event.preventDefault();
  const { id, username, action } = asked;
  const reason = document.getElementById("account-reason").value; // as typed: the API judges a blank one
  const body = action === "disable" || reason.trim() ? { reason } : undefined;
  const done = await act("accounts-message", () => post(`/api/v1/accounts/${id}/${action}`, body),
    (account) => (action === "disable" ? `账号「${username}」已停用：${account.status_reason}` : `账号「${username}」已启用`),
    document.getElementById("account-confirm"), "account-dialog-result");
  if (done) document.getElementById("account-dialog").close();
}

// -- forms ----------------------------------------------------------------------------------
// A number field: left out when empty (the API's default applies), else the number typed.
function number(form, name) {
  const field = input(form, name);
  return field.disabled || field.value.trim() === "" ? undefined : field.valueAsNumber;
}

function submitted(id, build, path, success) {
  const form = document.getElementById(id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(form.dataset.result, () => post(path, build(form)), success, form.querySelector('button[type="submit"]'));
  });
}

function showKind(form) {
  const crawl = input(form, "kind").value === "crawl";
  for (const [name, shown] of [["pages", crawl], ["split", crawl], ["limit", !crawl]]) {
    input(form, name).disabled = !shown;
    input(form, name).closest("label").hidden = !shown;
  }
}

export function wireActions(onChange) {
  changed = onChange;
  submitted("crawl-form", (form) => ({ domain: input(form, "domain").value, pages: number(form, "pages"),
    split: number(form, "split") }), "/api/v1/tasks/crawl",
  (task) => `已创建采集任务 #${task.id}（${task.domain}，${task.subtasks.length} 个子任务）`);
  submitted("export-form", (form) => ({ domain: input(form, "domain").value, limit: number(form, "limit") ?? null,
    format: input(form, "format").value }), "/api/v1/tasks/export",
  (task) => `已创建导出任务 #${task.id}（${task.domain}，${task.export_format}，`
    + (task.export_limit ? `最多 ${num(task.export_limit)} 条）` : "全部待导出）"));
  submitted("schedule-form", (form) => ({ kind: input(form, "kind").value, domain: input(form, "domain").value,
    cron: input(form, "cron").value, name: input(form, "schedule_name").value.trim() || undefined,
    pages: number(form, "pages"), split: number(form, "split"), limit: number(form, "limit") }),
  "/api/v1/schedules", (s) => `已添加定时任务 #${s.id}「${s.name}」，下次运行 ${time(s.next_run_at)}`);
  const schedule = document.getElementById("schedule-form");
  input(schedule, "kind").addEventListener("change", () => showKind(schedule));
  showKind(schedule);
  document.getElementById("account-form").addEventListener("submit", confirmAccount);
  document.getElementById("account-cancel").addEventListener("click", () => document.getElementById("account-dialog").close());
}
