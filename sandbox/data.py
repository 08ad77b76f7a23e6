"""The reference platform's deterministic data set.

Every row is a pure function of ``(seed, domain, index)``: its random generator is seeded from a
SHA-256 of those values, never from ``hash()``, so the same seed yields the same rows in every
process, across restarts and whatever ``PYTHONHASHSEED`` is. Rows do not depend on ``pages`` or
``page_size`` either, so a smaller listing is a prefix of a bigger one.

About 2% of nicknames are hostile on purpose (spreadsheet formulas, quotes, commas, newlines,
zero-width characters, markup, 300+ characters) so that crawlers, storage and exporters are
tested against them; one hostile row sits at index 7 of every block of 50 rows, so page 1 of
every domain carries one.

``expected_rows()`` is the unshifted truth that tests compare a crawl against.

Fans can grow by day (the ``fans_growth`` and ``day`` knobs) so that a test can crawl a domain
twice on different "days" and see counts change: each influencer gets a seeded daily amount
(``daily_fans_growth``) and ``grown()`` applies ``day`` of them to a row.
"""
from __future__ import annotations

import hashlib
import math
import random
from typing import Any

DEFAULT_DOMAINS: tuple[str, ...] = ("美妆", "游戏", "美食", "穿搭", "母婴", "科技")
PROFILE_BASE_URL = "https://sandbox.invalid/u/"
INSERTED_UID_PREFIX = "new-"

_UID_PREFIXES = {"美妆": "mz", "游戏": "yx", "美食": "ms", "穿搭": "cd", "母婴": "my", "科技": "kj"}
_HOSTILE_EVERY = 50
_HOSTILE_AT = 7
_GROWTH_STILL = 0.2  # share of influencers whose fans never change
_GROWTH_LOSING = 0.1  # share losing fans every day
_GROWTH_MAX_SHARE = 0.02  # largest daily amount, as a share of base fans

_DOMAIN_WORDS = {
    "美妆": ["口红", "眼影", "粉底", "美甲", "护肤", "香水", "腮红", "睫毛"],
    "游戏": ["电竞", "王者", "吃鸡", "原神", "开黑", "手游", "主机", "上分"],
    "美食": ["探店", "烘焙", "火锅", "家常菜", "甜品", "烧烤", "小吃", "咖啡"],
    "穿搭": ["通勤", "街头", "复古", "汉服", "小个子", "显瘦", "配饰", "球鞋"],
    "母婴": ["宝妈", "辅食", "育儿", "孕期", "早教", "奶爸", "亲子", "萌娃"],
    "科技": ["数码", "测评", "手机", "电脑", "编程", "AI", "开箱", "极客"],
}
_GENERIC_WORDS = ["日常", "分享", "生活", "记录", "好物", "种草", "干货", "vlog"]
_DOMAIN_TAGS = {
    "美妆": ["彩妆", "护肤", "平价好物", "测评", "仿妆", "成分党", "敏感肌", "国货"],
    "游戏": ["手游", "端游", "电竞", "攻略", "直播", "解说", "二次元", "主机"],
    "美食": ["探店", "家常菜", "烘焙", "减脂餐", "地方美食", "饮品", "夜宵", "预制菜"],
    "穿搭": ["通勤", "街头", "韩系", "法式", "小个子", "大码", "鞋包", "配饰"],
    "母婴": ["育儿", "辅食", "孕期", "早教", "亲子游", "母婴好物", "二胎", "绘本"],
    "科技": ["数码", "手机", "电脑", "智能家居", "开箱", "编程", "AI", "摄影"],
}
_GENERIC_TAGS = ["生活", "分享", "种草", "日常", "知识", "测评"]
_FEMALE_SHARE = {"美妆": 0.85, "游戏": 0.25, "美食": 0.55, "穿搭": 0.75, "母婴": 0.9, "科技": 0.2}
_NAME_PREFIXES = ["小", "阿", "大", "老", "是", "爱吃的", "会", "一只", "今天也要", "超级", ""]
_NAME_CORES = ["鹿", "七", "米粒", "橙子", "糖糖", "阿杰", "胖虎", "桃桃", "可乐", "南风", "团子",
               "北北", "十一", "木木", "安安", "大圣", "咸鱼", "柚子", "星星", "豆豆"]
_NAME_SUFFIXES = ["酱", "呀", "同学", "本人", "日记", "的小窝", "君", "er", "", "", ""]
_NAME_LINKS = ["的", "爱", "聊", "玩", "说"]
_NAME_TITLES = ["达人", "博主", "研究所", "小能手", "日记"]
_EMOJI = ["🍑", "✨", "🎮", "🍜", "👗", "🍼", "💻", "🌸", "🔥", "🐱", "💄", "😂"]
_REGIONS = ["北京", "上海", "天津", "重庆", "广东·广州", "广东·深圳", "浙江·杭州", "浙江·宁波",
            "江苏·南京", "江苏·苏州", "四川·成都", "湖北·武汉", "湖南·长沙", "福建·厦门",
            "山东·青岛", "陕西·西安", "河南·郑州", "云南·昆明", "辽宁·沈阳", "黑龙江·哈尔滨",
            "广西·南宁", "海南·三亚", "新疆·乌鲁木齐", "安徽·合肥", "江西·南昌"]
_MAIL_HOSTS = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"]
_LETTERS = "abcdefghijkmnpqrstuvwxyz"


def _hostile_nickname(kind: int, rng: random.Random) -> str:
    """Nicknames that break naive CSV/Excel/HTML/SQL handling; never CR, NUL or edge spaces."""
    n = rng.randint(10, 99)
    if kind == 0:
        return f'=HYPERLINK("http://evil.invalid/{n}","点我领奖")'
    if kind == 1:
        return f"+86 138 0013 80{n} 小美"
    if kind == 2:
        return f"-2+3+cmd|' /C calc'!A{n}"
    if kind == 3:
        return f"@SUM(1+{n})*cmd|'/C calc'!A0"
    if kind == 4:
        return f'他说"买买买", 然后\'走了\', 共{n}件,好评'
    if kind == 5:
        return f"第一行{n}\n第二行\n第三行🎉"
    if kind == 6:
        return f"小\u200b美\u200d酱\ufeff{n}\u2060"
    if kind == 7:
        unit = "超长昵称测试🎉"
        return (unit * 60)[: rng.randint(300, 420)] + str(n)
    return f"<script>alert('{n}')</script>&amp;<b>粗体</b>"


_HOSTILE_KINDS = 9


def uid_prefix(domain: str) -> str:
    """Short per-domain uid prefix; unknown domains get a stable hash so uids stay unique."""
    known = _UID_PREFIXES.get(domain)
    if known:
        return known
    return "x" + hashlib.sha256(domain.encode("utf-8")).hexdigest()[:6]


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _domain_offset(domain: str) -> int:
    return int(hashlib.sha256(domain.encode("utf-8")).hexdigest()[:4], 16)


def _nickname(rng: random.Random, domain: str) -> str:
    words = _DOMAIN_WORDS.get(domain, _GENERIC_WORDS)
    style = rng.random()
    if style < 0.4:
        name = rng.choice(_NAME_PREFIXES) + rng.choice(_NAME_CORES) + rng.choice(_NAME_SUFFIXES)
    elif style < 0.8:
        name = rng.choice(_NAME_CORES) + rng.choice(_NAME_LINKS) + rng.choice(words)
    else:
        name = rng.choice(words) + rng.choice(_NAME_TITLES) + str(rng.randint(1, 999))
    if rng.random() < 0.2:
        name += rng.choice(_EMOJI)
    return name


def _build_row(rng: random.Random, uid: str, domain: str, nickname: str | None) -> dict[str, Any]:
    if nickname is None:
        nickname = _nickname(rng, domain)
    fans = int(min(50_000_000, max(300, math.exp(rng.gauss(11.2, 1.5)))))
    avg_likes = int(fans * rng.uniform(0.004, 0.08))
    female = _FEMALE_SHARE.get(domain, 0.5)
    g = rng.random()
    gender = "unknown" if g < 0.08 else ("female" if g < 0.08 + 0.92 * female else "male")
    pool = _DOMAIN_TAGS.get(domain, _GENERIC_TAGS)
    tags = rng.sample(pool, rng.randint(1, min(4, len(pool))))
    handle = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(4, 8)))
    wechat = f"{handle}_{rng.randint(100, 99999)}" if rng.random() < 0.6 else None
    email = f"{handle}{rng.randint(1, 9999)}@{rng.choice(_MAIL_HOSTS)}"
    if rng.random() >= 0.5:
        email = None
    price = round(max(99.0, fans * rng.uniform(0.008, 0.05)) + rng.randint(0, 99) / 100, 2)
    return {
        "uid": uid,
        "nickname": nickname,
        "domain": domain,
        "fans": fans,
        "avg_likes": avg_likes,
        "region": rng.choice(_REGIONS),
        "gender": gender,
        "tags": tags,
        "contact": {"wechat": wechat, "email": email},
        "profile_url": PROFILE_BASE_URL + uid,
        "price": price,
    }


def make_row(seed: int, domain: str, index: int) -> dict[str, Any]:
    """Row ``index`` (0-based, listing order) of ``domain``'s original listing."""
    rng = _rng("row", seed, domain, index)
    nickname = None
    if index % _HOSTILE_EVERY == _HOSTILE_AT:
        kind = (index // _HOSTILE_EVERY + _domain_offset(domain)) % _HOSTILE_KINDS
        nickname = _hostile_nickname(kind, rng)
    return _build_row(rng, f"{uid_prefix(domain)}-{index + 1:06d}", domain, nickname)


def inserted_row(seed: int, domain: str, number: int) -> dict[str, Any]:
    """The ``number``-th (1-based) influencer inserted into ``domain`` by a listing shift."""
    rng = _rng("inserted", seed, domain, number)
    uid = f"{INSERTED_UID_PREFIX}{uid_prefix(domain)}-{number:06d}"
    return _build_row(rng, uid, domain, None)


def daily_fans_growth(seed: int, uid: str, fans: int) -> int:
    """Fans that influencer ``uid`` (with ``fans`` base fans) gains per day; negative: loses.

    About 20% never change (0), about 10% lose, the rest gain; a non-zero amount is 1 up to
    about 2% of the base fans. Seeded by ``(seed, uid)`` alone, so every row served with that
    uid (whatever its page or shift) grows alike.
    """
    rng = _rng("growth", seed, uid)
    kind = rng.random()
    amount = rng.randint(1, max(1, int(fans * _GROWTH_MAX_SHARE)))
    if kind < _GROWTH_STILL:
        return 0
    return -amount if kind < _GROWTH_STILL + _GROWTH_LOSING else amount


def grown(row: dict[str, Any], seed: int, day: int) -> dict[str, Any]:
    """A copy of ``row`` as it is on ``day``: fans plus ``day`` daily amounts, never below 0.

    ``row`` holds the base fans (day 0); day 0 leaves the copy equal to it.
    """
    fans = row["fans"] + day * daily_fans_growth(seed, row["uid"], row["fans"])
    return {**row, "fans": max(0, fans)}


def expected_rows(
    domain: str,
    page_from: int = 1,
    page_to: int | None = None,
    *,
    seed: int = 42,
    pages: int = 50,
    page_size: int = 20,
    fans_growth: bool = False,
    day: int = 0,
) -> list[dict[str, Any]]:
    """Exact rows of pages ``page_from..page_to`` (inclusive) in listing order, without shifts.

    Pages past ``pages`` are empty, as they are on the platform. With ``fans_growth`` the fans
    are those of ``day`` (``grown()``), as the platform serves them with the same knobs.
    """
    if page_from < 1:
        raise ValueError(f"page_from must be >= 1, got {page_from}")
    if day < 0:
        raise ValueError(f"day must be >= 0, got {day}")
    last = pages if page_to is None else min(page_to, pages)
    if last < page_from:
        return []
    rows = [make_row(seed, domain, i) for i in range((page_from - 1) * page_size, last * page_size)]
    if fans_growth and day:
        rows = [grown(row, seed, day) for row in rows]
    return rows
