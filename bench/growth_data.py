"""The data of `bench.growth`: a deployment's history after months of work, generated as files and
loaded with ``LOAD DATA LOCAL INFILE`` (the server's own bulk path), streamed in chunks.

The history is what the services would have written, consistent with itself: start_crawl jobs
(a parent and page-range subtasks, a domain each, round robin over the domains), one
``ingestion_logs`` row per committed page of the completed subtasks, the influencers of those
pages (each log's rows follow each other in id order, so a domain's rows come in runs of a job's
size, as crawls write them), each domain's newest rows ``pending_export`` and the older ones
``exported`` in published batches of 5,000 (``export_logs`` with the batch's id range, under
export tasks), logs and batches spread over the last 30 days with a thirtieth today. Each
influencer has its typed fields, ``search_terms`` and growth as the pipeline writes them, and a
nickname of its own (`RowMaker`), so that `bench.search` searches the same database. The
unfinished tasks are the newest subtasks (pending, held back by ``not_before`` so that no crawl
of the bench claims them; in progress, held by live workers whose locks the bench holds) and some
paused (by an operator) and failed ones among the old. No events, budgets or identities.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import dumps, make_raw
from influencers.core.quotaday import QuotaDay
from influencers.core.searchterms import row_terms, tag_token

DOMAINS = ("美妆", "游戏", "美食", "穿搭", "母婴", "科技", "旅行", "汽车")
EXPORT_DOMAIN = DOMAINS[0]
SUBTASKS_PER_JOB = 10
BATCH_ROWS = 5000
DAYS = 30
CHUNK_ROWS = 250_000
WORKERS = ("growth-worker-1", "growth-worker-2")  # claimed_by of the in-progress tasks; the bench holds their locks
_TSV = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
PROFILE_URL = "https://sandbox.invalid/u/"
NULL = "\\N"

INFLUENCER_COLUMNS = ("(uid, nickname, domain, source_page, raw_data, fans, region, tags, has_contact, profile_url, search_terms,"
                      " growth_7d, growth_30d, status, ingested_at, ingestion_log_id, export_log_id)")
LOG_COLUMNS = "(id, task_id, account_id, domain, page_number, ingested_count, start_time, end_time, source_url)"
EXPORT_LOG_COLUMNS = ("(id, task_id, account_id, domain, exported_count, file_path, start_time, end_time, state, quota_date,"
                      " first_id, last_id, export_format)")
TASK_COLUMNS = ("(id, task_type, domain, status, progress_marker, assigned_account_id, created_at, updated_at, parent_id,"
                " is_parent, page_from, page_to, export_format, exported_count, claimed_by, lease_token,"
                " lease_expires_at, heartbeat_at, attempts, not_before, last_error)")


@dataclass(frozen=True)
class Sizes:
    """What a large database holds; a kept database is reused only with the same sizes."""

    rows: int
    logs: int
    tasks: int
    accounts: int
    export_rows: int
    pending_share: float = 0.10

    @classmethod
    def scaled(cls, rows: int) -> Sizes:
        """bench.growth's default sizes at 10M rows (1M logs, 100,000 tasks, 50 accounts, 100,000 rows
        to export), the others in proportion to ``rows`` (at least what `plan` needs)."""
        return cls(rows, max(1, rows // 10), max(250, min(100_000, rows // 100)), 50, max(1, rows // 100))

    def key(self) -> str:
        return (f"rows={self.rows} logs={self.logs} tasks={self.tasks} accounts={self.accounts}"
                f" export_rows={self.export_rows} pending={self.pending_share} v2")  # v2: typed fields, varied nicknames


@dataclass
class Task:
    id: int
    kind: str
    domain: str
    status: str = "completed"
    parent: int | None = None
    is_parent: bool = False
    page_from: int | None = None
    page_to: int | None = None
    logs: tuple[int, int] = (0, 0)  # [first, end) of its log numbers
    account: int | None = None
    exported: int = 0
    last_id: int = 0


@dataclass
class Layout:
    """Every task and the mapping rows → logs → subtasks, computed before any file is written."""

    sizes: Sizes
    tasks: list[Task] = field(default_factory=list)
    completed: list[Task] = field(default_factory=list)  # subtasks with logs, in order
    domain_rows: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    export_tasks: dict[str, list[Task]] = field(default_factory=dict)


def plan(sizes: Sizes) -> Layout:
    """Tasks (ids from 1), the completed subtasks' logs, and each domain's rows and pending rows."""
    layout = Layout(sizes)
    exports = max(len(DOMAINS), sizes.tasks // 100)
    ingestion = sizes.tasks - exports
    jobs = max(1, math.ceil(ingestion / (SUBTASKS_PER_JOB + 1)))
    subtasks = ingestion - jobs
    if subtasks < 20 or sizes.logs < subtasks // 2 or sizes.rows < sizes.logs:
        raise SystemExit("bench.growth: need --tasks ≥ 250, --logs ≥ half the subtasks and --rows ≥ --logs")
    special = _special_states(subtasks, sizes.tasks)
    next_id, sub_index, export_index = 1, 0, 0
    for job in range(jobs):
        domain = DOMAINS[job % len(DOMAINS)]
        parent = Task(next_id, "ingestion", domain, is_parent=True)
        layout.tasks.append(parent)
        next_id += 1
        children = []
        for position in range(min(SUBTASKS_PER_JOB, subtasks - sub_index)):
            child = Task(next_id, "ingestion", domain, special.get(sub_index, "completed"), parent.id)
            child.page_from = position * 100 + 1
            children.append(child)
            layout.tasks.append(child)
            next_id, sub_index = next_id + 1, sub_index + 1
        parent.status = _parent_status([c.status for c in children])
        while export_index < exports and export_index * jobs < (job + 1) * exports:
            kind_domain = DOMAINS[export_index % len(DOMAINS)]
            task = Task(next_id, "export", kind_domain, "failed" if export_index % 50 == 49 else "completed")
            layout.tasks.append(task)
            layout.export_tasks.setdefault(kind_domain, []).append(task)
            next_id, export_index = next_id + 1, export_index + 1
    layout.completed = [t for t in layout.tasks if not t.is_parent and t.kind == "ingestion" and t.status == "completed"]
    count = len(layout.completed)
    for number, task in enumerate(layout.completed):
        task.logs = (number * sizes.logs // count, (number + 1) * sizes.logs // count)
        task.page_to = task.page_from + max(0, task.logs[1] - task.logs[0] - 1)
        first, end = (log * sizes.rows // sizes.logs for log in task.logs)
        layout.domain_rows[task.domain] = layout.domain_rows.get(task.domain, 0) + end - first
    others = round((sizes.pending_share * sizes.rows - sizes.export_rows) / (len(DOMAINS) - 1))
    for domain, rows in layout.domain_rows.items():
        layout.pending[domain] = max(0, min(rows, sizes.export_rows if domain == EXPORT_DOMAIN else others))
    if layout.domain_rows.get(EXPORT_DOMAIN, 0) < sizes.export_rows:
        raise SystemExit(f"bench.growth: {EXPORT_DOMAIN} gets {layout.domain_rows.get(EXPORT_DOMAIN, 0):,} rows,"
                         f" fewer than --export-rows {sizes.export_rows:,}; raise --rows")
    return layout


def _special_states(subtasks: int, tasks: int) -> dict[int, str]:
    """Subtask index → state for the unfinished: the newest pending or in progress, some old paused
    or failed."""
    states: dict[int, str] = {}
    in_progress, pending = min(10, max(1, tasks // 10_000)), max(2, tasks // 500)
    for offset in range(in_progress + pending):
        states[subtasks - 1 - offset] = "in_progress" if offset < in_progress else "pending"
    for count, state, phase in ((max(1, tasks // 1000), "failed", 3), (max(1, tasks // 2000), "paused", 7)):
        step = max(1, (subtasks - in_progress - pending) // count)
        for number in range(count):
            states.setdefault(number * step + phase % step, state)
    return states


def _parent_status(children: list[str]) -> str:
    if "in_progress" in children or ("pending" in children and "completed" in children):
        return "in_progress"
    for state in ("pending", "failed", "paused"):
        if state in children:
            return state
    return "completed"


# -- time ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Stored times (naive UTC): the last ``DAYS`` local days, a thirtieth of the activity today."""

    now: datetime
    midnight: datetime  # today's local midnight, in UTC
    quota_day: QuotaDay

    @classmethod
    def of(cls, quota_day: QuotaDay) -> Clock:
        today = quota_day.today()
        return cls(datetime.now(UTC).replace(microsecond=0, tzinfo=None), quota_day.day_bounds(today)[0], quota_day)

    def at(self, number: int, total: int) -> datetime:
        """The time of the number-th of ``total`` events in order: the last thirtieth today."""
        today_first = total - max(1, total // DAYS)
        if number >= today_first:
            span = max(60.0, (self.now - self.midnight).total_seconds() - 60)
            return self.midnight + timedelta(seconds=span * (number - today_first) / max(1, total - today_first))
        start = self.midnight - timedelta(days=DAYS - 1)
        return start + timedelta(seconds=(DAYS - 1) * 86400 * number / max(1, today_first))

    def today(self) -> date:
        return self.quota_day.local_date(self.now)


def sql_time(value: datetime | None) -> str:
    return NULL if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


# -- influencer rows ----------------------------------------------------------------------------


_GIVEN = ("子涵雨欣诺梓萱思彤可馨梦琪晨曦宇轩浩然俊杰皓博文昊天佳怡若汐语嫣依诗雅静婉清悦瑶琳芷安沐阳星辰嘉懿"
          "煜城烨伟苑泽熠鸿煊涛霖华祺智宸正豪明立诚辉峻熙弘晓峰光东旭楠丽燕雯婷墨美秀英桂芳玉兰凤霞春梅秋菊冬"
          "雪夏荷月娥彩云红海金玲珊瑞慧敏淑丹青翠竹鸣凡帆航苇亦菲乐笑甜圆晴朵果糖豆叮当北南西风花山川河林森木"
          "水火土石田禾米麦稻香酸辣咸鲜嫩脆软萌乖酷帅靓俏白黑橙黄绿蓝紫灰粉银霁霏露霜雾虹岚岩溪泉涧湖潭波澜浪"
          "舟桥亭台")  # 200 characters of given names: a pair of them is one of 40,000
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_PREFIXES = ("小", "阿", "大", "老", "是", "爱吃的", "会", "一只", "今天也要", "超级", "")
_CORES = ("鹿", "七", "米粒", "橙子", "糖糖", "阿杰", "胖虎", "桃桃", "可乐", "南风", "团子", "北北", "十一", "木木")
_SUFFIXES = ("酱", "呀", "同学", "本人", "日记", "的小窝", "君", "er", "", "", "")
_LINKS = ("的", "爱", "聊", "玩", "说")
_TITLES = ("达人", "博主", "研究所", "小能手", "日记")
_EMOJI = ("🍑", "✨", "🎮", "🍜", "👗", "🍼", "💻", "🌸", "🔥", "🐱", "💄", "😂")
_DOMAIN_WORDS = {
    "美妆": ("口红", "眼影", "粉底", "美甲", "护肤", "香水", "腮红", "睫毛"),
    "游戏": ("电竞", "王者", "吃鸡", "原神", "开黑", "手游", "主机", "上分"),
    "美食": ("探店", "烘焙", "火锅", "家常菜", "甜品", "烧烤", "小吃", "咖啡"),
    "穿搭": ("通勤", "街头", "复古", "汉服", "小个子", "显瘦", "配饰", "球鞋"),
    "母婴": ("宝妈", "辅食", "育儿", "孕期", "早教", "奶爸", "亲子", "萌娃"),
    "科技": ("数码", "测评", "手机", "电脑", "编程", "AI", "开箱", "极客"),
    "旅行": ("自驾", "露营", "徒步", "海岛", "古镇", "签证", "穷游", "民宿"),
    "汽车": ("试驾", "新能源", "改装", "越野", "二手车", "保养", "房车", "赛道"),
}
TAGS = {
    "美妆": ("彩妆", "护肤", "平价好物", "测评", "仿妆", "成分党", "敏感肌", "国货"),
    "游戏": ("手游", "端游", "电竞", "攻略", "直播", "解说", "二次元", "主机"),
    "美食": ("探店", "家常菜", "烘焙", "减脂餐", "地方美食", "饮品", "夜宵", "预制菜"),
    "穿搭": ("通勤", "街头", "韩系", "法式", "小个子", "大码", "鞋包", "配饰"),
    "母婴": ("育儿", "辅食", "孕期", "早教", "亲子游", "母婴好物", "二胎", "绘本"),
    "科技": ("数码", "手机", "电脑", "智能家居", "开箱", "编程", "AI", "摄影"),
    "旅行": ("自由行", "攻略", "酒店", "露营", "出境游", "周边游", "美景", "摄影"),
    "汽车": ("新能源", "试驾", "用车", "改装", "SUV", "二手车", "评测", "自驾"),
}
#: region → weight (of 1,024); the rest (~6%) has no region (NULL)
REGIONS = {"北京": 100, "上海": 100, "广东·广州": 80, "广东·深圳": 80, "浙江·杭州": 70, "四川·成都": 60, "重庆": 45,
           "江苏·南京": 40, "江苏·苏州": 35, "湖北·武汉": 40, "天津": 25, "湖南·长沙": 35, "福建·厦门": 25,
           "浙江·宁波": 20, "山东·青岛": 25, "陕西·西安": 30, "河南·郑州": 30, "云南·昆明": 20, "辽宁·沈阳": 20,
           "黑龙江·哈尔滨": 15, "广西·南宁": 15, "海南·三亚": 10, "新疆·乌鲁木齐": 10, "安徽·合肥": 20, "江西·南昌": 15}
_NO_CONTACT = '{"wechat":null,"email":null}'


class RowMaker:
    """Influencer lines for LOAD DATA, cheap in Python: the nickname drawn from word lists
    (a given name, two of 200 characters, with a prefix and suffix or a surname; a domain word; a
    number; sometimes an emoji; every 50th row one of bench.common's hostile ones), the typed fields
    (fans log-normal, 2% unknown; 25 regions weighted, 6% none; 1–4 of the domain's 8 tags; a contact for 60%;
    7- and 30-day growth, mostly small, some unknown), ``search_terms`` as the pipeline writes them
    (`row_terms`), and raw_data that says the same around the constant rest (bio, posts, price) of
    ~600-byte documents of bench.common.make_raw. One 128-bit draw picks the words, so no
    ``random.choice`` per row. Deterministic: the same seed gives the same rows."""

    def __init__(self, seed: int = 21, per_domain: int = 256) -> None:
        rng = random.Random(seed)
        self.rng = random.Random(seed + 1)
        self.tails: dict[str, list[tuple[str, str]]] = {}  # (the document after the typed fields, its contact)
        self.tag_sets: dict[str, list[tuple[str, str]]] = {}  # (tags as JSON, their search tokens)
        self.hostile: dict[str, list[tuple[str, str, str]]] = {}  # (nickname, as a field, as JSON in raw_data)
        for domain in DOMAINS:
            tails, hostile = [], []
            for index in range(per_domain):
                raw = make_raw(rng, domain, "", index)
                rest = {key: raw[key] for key in ("avg_likes", "gender", "price", "bio", "recent_posts", "updated_at")}
                tails.append((dumps(rest)[1:].translate(_TSV), dumps(raw["contact"]).translate(_TSV)))
                if index % 50 == 7:
                    nickname = raw["nickname"]
                    hostile.append((nickname, nickname.translate(_TSV), dumps(nickname).translate(_TSV)))
            self.tails[domain], self.hostile[domain] = tails, hostile
            self.tag_sets[domain] = [(dumps(chosen), " ".join(tag_token(tag) for tag in chosen))
                                     for chosen in (rng.sample(TAGS[domain], rng.randint(1, 4)) for _ in range(256))]
        self.regions = [(region, f'"{region}"') for region, weight in REGIONS.items() for _ in range(weight)]
        self.regions += [(NULL, "null")] * (1024 - len(self.regions))

    def nickname(self, bits: int, domain: str) -> str:
        words = _DOMAIN_WORDS[domain]
        style, a, b, c, d, e = (bits & 127, (bits >> 7) & 0xFFFF, (bits >> 23) & 0xFFFF, (bits >> 39) & 0xFFFF,
                                (bits >> 55) & 0xFFFF, (bits >> 71) & 0xFFFF)
        given = _GIVEN[a % 200] + _GIVEN[b % 200]
        if style < 45:
            name = _PREFIXES[c % 11] + given + _SUFFIXES[d % 11]  # 小雨欣酱
        elif style < 70:
            name = _SURNAMES[c % 50] + given  # 王雨欣
        elif style < 95:
            name = _CORES[c % 14] + _LINKS[d % 5] + words[e % 8]  # 糖糖的口红
        elif style < 115:
            name = words[c % 8] + _TITLES[d % 5] + str(e % 1000)  # 口红博主123
        else:
            name = given + words[c % 8]  # 雨欣穿搭
        if e & 0x7C00 < 0x1800:  # 3 of 16 get a number
            name += str(e >> 4)
        if d >> 12 < 3:  # 3 of 16 an emoji
            name += _EMOJI[e % 12]
        return name

    def line(self, uid: str, domain: str, index: int, tail: str) -> str:
        """One influencer; ``index`` picks its page (20 a page) and whether it is hostile; ``tail``
        is the rest of the line (status, ingested_at, ingestion_log_id, export_log_id)."""
        rng = self.rng
        random_ = rng.random
        bits = rng.getrandbits(128)
        if index % 50 == 7:
            hostile = self.hostile[domain]
            nickname, field, name_json = hostile[index // 50 % len(hostile)]
        else:
            nickname = field = self.nickname(bits, domain)
            name_json = f'"{nickname}"'
        fans = None if random_() < 0.02 else min(50_000_000, max(300, int(math.exp(rng.gauss(11.2, 1.5)))))
        growth_7d = growth_30d = NULL
        if fans is not None and random_() >= 0.06:
            kind = random_()
            daily = 0 if kind < 0.2 else (1 + int(fans * 0.02 * random_() ** 3)) * (-1 if kind < 0.3 else 1)
            growth_7d = str(7 * daily)
            growth_30d = NULL if random_() < 0.05 else str(30 * daily + int(daily * 4 * (random_() - 0.5)))
        fans_text = NULL if fans is None else str(fans)
        region, region_json = self.regions[(bits >> 87) & 1023]
        tags, tag_terms = self.tag_sets[domain][(bits >> 97) & 255]
        rest, contact = self.tails[domain][(bits >> 105) & 255]
        has_contact = random_() < 0.6
        terms = row_terms(nickname, ())  # as row_terms(nickname, tags): the tags' tokens follow the bigrams'
        terms = f"{terms} {tag_terms}" if terms else tag_terms
        url = PROFILE_URL + uid
        raw = (f'{{"uid":"{uid}","nickname":{name_json},"domain":"{domain}","fans":{"null" if fans is None else fans_text},'
               f'"region":{region_json},"tags":{tags},"contact":{contact if has_contact else _NO_CONTACT},'
               f'"profile_url":"{url}",{rest}')
        return (f"{uid}\t{field}\t{domain}\thttps://sandbox.invalid/api?page={index // 20 + 1}\t{raw}\t{fans_text}\t"
                f"{region}\t{tags}\t{int(has_contact)}\t{url}\t{terms}\t{growth_7d}\t{growth_30d}\t{tail}\n")


# -- files --------------------------------------------------------------------------------------


def influencer_lines(layout: Layout, clock: Clock, rows: RowMaker,
                     export_logs: list[str]) -> Iterator[str]:
    """Every influencer as a LOAD DATA line, in id order (ids from 1); fills ``export_logs`` with
    the batches as they close and each export task's count and last id."""
    sizes = layout.sizes
    seen = dict.fromkeys(layout.domain_rows, 0)
    open_batch: dict[str, list[int]] = {}  # domain -> [export log id, first id, count, batch number]
    batches = {d: math.ceil((layout.domain_rows[d] - layout.pending[d]) / BATCH_ROWS) for d in layout.domain_rows}
    total_batches = sum(batches.values())
    next_batch, row_id = 1, 0
    for task in layout.completed:
        domain = task.domain
        exported_rows = layout.domain_rows[domain] - layout.pending[domain]
        for log in range(*task.logs):
            when = clock.at(log, sizes.logs)
            log_tail = f"{sql_time(when)}\t{log + 1}"
            for _ in range(log * sizes.rows // sizes.logs, (log + 1) * sizes.rows // sizes.logs):
                row_id += 1
                number = seen[domain]
                seen[domain] = number + 1
                if number >= exported_rows:
                    yield rows.line(f"g{row_id:09d}", domain, row_id, f"pending_export\t{log_tail}\t0")
                    continue
                batch = open_batch.get(domain)
                if batch is None:
                    batch = open_batch[domain] = [next_batch, row_id, 0, number // BATCH_ROWS]
                    next_batch += 1
                batch[2] += 1
                yield rows.line(f"g{row_id:09d}", domain, row_id, f"exported\t{log_tail}\t{batch[0]}")
                if batch[2] == BATCH_ROWS or number + 1 == exported_rows:
                    export_logs.append(_export_log(layout, clock, domain, batch, row_id, batches[domain], total_batches))
                    del open_batch[domain]


def _export_log(layout: Layout, clock: Clock, domain: str, batch: list[int], last_id: int, domain_batches: int,
                total: int) -> str:
    log_id, first_id, count, number = batch
    tasks = layout.export_tasks.get(domain) or next(iter(layout.export_tasks.values()))
    task = tasks[number * len(tasks) // domain_batches]
    task.exported += count
    task.last_id = last_id
    task.account = (log_id % layout.sizes.accounts) + 1
    start = clock.at(log_id - 1, total)
    fields = (log_id, task.id, task.account, domain, count, f"{domain}/export-{task.id}-{log_id}.csv", sql_time(start),
              sql_time(start + timedelta(seconds=2)), "published", clock.quota_day.local_date(start).isoformat(),
              first_id, last_id, "csv")
    return "\t".join(str(f) for f in fields) + "\n"


def log_lines(layout: Layout, clock: Clock) -> Iterator[str]:
    accounts = layout.sizes.accounts
    for task in layout.completed:
        task.account = task.id % accounts + 1
        for number, log in enumerate(range(*task.logs)):
            start = clock.at(log, layout.sizes.logs)
            rows = (log + 1) * layout.sizes.rows // layout.sizes.logs - log * layout.sizes.rows // layout.sizes.logs
            page = task.page_from + number
            yield (f"{log + 1}\t{task.id}\t{task.account}\t{task.domain}\t{page}\t{rows}\t{sql_time(start)}\t"
                   f"{sql_time(start + timedelta(seconds=1))}\thttps://sandbox.invalid/api?page={page}\n")


def task_lines(layout: Layout, clock: Clock, held: dict[int, int]) -> Iterator[str]:
    """The tasks; ``held``: in-progress task id → the account it holds."""
    far = clock.now + timedelta(days=3650)
    for task in layout.tasks:
        first, end = task.logs
        created = clock.at(first, layout.sizes.logs) if end > first else clock.now - timedelta(days=1)
        updated = clock.at(max(first, end - 1), layout.sizes.logs) if end > first else created
        marker = None
        if task.kind == "export":
            marker = f"last_id={task.last_id}" if task.last_id else None
        elif not task.is_parent and end > first:
            marker = f"page={task.page_to}"
        in_progress = task.status == "in_progress" and not task.is_parent
        values = (
            task.id, task.kind, task.domain, task.status, marker, held.get(task.id, task.account), sql_time(created),
            sql_time(updated), task.parent, int(task.is_parent), task.page_from, task.page_to,
            "csv" if task.kind == "export" else None, task.exported,
            WORKERS[task.id % len(WORKERS)] if in_progress else None, f"{task.id:032x}" if in_progress else None,
            sql_time(far) if in_progress else None, sql_time(clock.now) if in_progress else None,
            1 if task.status != "pending" else 0,
            sql_time(far) if task.status == "pending" and not task.is_parent else None,  # held back: never claimed here
            {"failed": "platform answered 500 five times", "paused": "运营暂停"}.get(task.status),
        )
        yield "\t".join(NULL if v is None else str(v).translate(_TSV) for v in values) + "\n"


# -- loading ------------------------------------------------------------------------------------


def load_lines(conn: Any, path: Path, table: str, columns: str, lines: Iterator[str], chunk: int = CHUNK_ROWS,
               progress: str | None = None) -> int:
    """LOAD DATA of ``lines`` in chunks of ``chunk``. A thread writes the next chunk's file while
    the server loads the last (two files in turn), so making the rows in Python and the server's
    work overlap on two cores."""
    files = [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in (0, 1)]
    free: queue.Queue[Path] = queue.Queue()
    ready: queue.Queue[tuple[Path, int] | BaseException] = queue.Queue()
    for file in files:
        free.put(file)
    stop = threading.Event()

    def write() -> None:
        try:
            while not stop.is_set():
                try:
                    file = free.get(timeout=0.5)
                except queue.Empty:
                    continue
                with open(file, "w", encoding="utf-8", newline="\n") as fh:
                    count = 0
                    for line in itertools.islice(lines, chunk):
                        fh.write(line)
                        count += 1
                ready.put((file, count))
                if count < chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the loading thread, which raises it
            ready.put(exc)

    writer = threading.Thread(target=write, name=f"load-{table}", daemon=True)
    writer.start()
    total, started = 0, time.monotonic()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            file, count = item
            if count:
                with conn.cursor() as cursor:
                    cursor.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 {columns}",
                                   (str(file),))
                    if cursor.rowcount != count:
                        raise RuntimeError(f"LOAD DATA into {table} took {cursor.rowcount} of {count} rows")
                conn.commit()
                total += count
            free.put(file)
            if progress and count == chunk and total % (chunk * 8) == 0:
                print(f"  {progress}: {total:,} rows loaded ({total / (time.monotonic() - started):,.0f} rows/s)",
                      flush=True)
            if count < chunk:
                return total
    finally:
        stop.set()
        writer.join(10)
        for file in files:
            file.unlink(missing_ok=True)


@contextlib.contextmanager
def indexes_built_after(conn: Any, table: str) -> Iterator[None]:
    """The (empty) table's secondary indexes that are neither unique nor a foreign key's dropped
    for the block and built afterwards in one ALTER: a sorted build instead of 10M random inserts
    into indexes larger than the buffer pool (bench/README.md, "Search", has the times). The drop
    rebuilds the table (FORCE, instant while it is empty) and the build rebuilds it again: on
    MariaDB 10.11 a FULLTEXT index dropped and added back on a table whose hidden FTS_DOC_ID an
    ALTER added (migration 0009) matches nothing. A load that fails leaves them dropped; its
    database is not marked complete, so it is loaded again."""
    with conn.cursor() as cursor:
        cursor.execute(f"SHOW CREATE TABLE {table}")
        lines = [line.strip().rstrip(",") for line in cursor.fetchone()[1].splitlines()]
    foreign = [line.split("FOREIGN KEY ", 1)[1].split(")", 1)[0] for line in lines if "FOREIGN KEY" in line]
    deferred = [line for line in lines if line.startswith(("KEY ", "FULLTEXT KEY "))
                and not any(line.split(" (", 1)[1].startswith(columns.lstrip("(")) for columns in foreign)]
    names = [line.split("`")[1] for line in deferred]
    if names:
        with conn.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP INDEX `{name}`" for name in names) + ", FORCE")
    yield
    if names:
        started = time.monotonic()
        with conn.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} " + ", ".join(f"ADD {line}" for line in deferred))
        print(f"  {table}: {', '.join(names)} built in {time.monotonic() - started:,.0f} s", flush=True)


def load_history(conn: Any, layout: Layout, clock: Clock, workdir: Path, held: dict[int, int]) -> None:
    """Influencers, logs, batches and tasks of ``layout`` into the connection's database."""
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    batches: list[str] = []
    file = workdir / "growth-load.tsv"
    with indexes_built_after(conn, "influencers"):
        load_lines(conn, file, "influencers", INFLUENCER_COLUMNS, influencer_lines(layout, clock, RowMaker(), batches),
                   progress="influencers")
    load_lines(conn, file, "ingestion_logs", LOG_COLUMNS, log_lines(layout, clock), chunk=CHUNK_ROWS * 2)
    load_lines(conn, file, "export_logs", EXPORT_LOG_COLUMNS, iter(batches))
    load_lines(conn, file, "tasks", TASK_COLUMNS, task_lines(layout, clock, held))
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")


def export_rows_lines(count: int, rows: RowMaker, clock: Clock) -> Iterator[str]:
    """``count`` pending rows of the export domain (the empty database's export)."""
    when = sql_time(clock.now - timedelta(hours=1))
    for number in range(1, count + 1):
        yield rows.line(f"e{number:09d}", EXPORT_DOMAIN, number, f"pending_export\t{when}\t{NULL}\t0")


