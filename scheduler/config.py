"""The daemon's TOML config, its keys declared once as data (docs/config.md lists each)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from complaint_core.errors import BadSetting
from complaint_core.safety import real_path

if TYPE_CHECKING:
    from .robots import Robot


@dataclass(frozen=True, slots=True)
class Key:
    section: str
    name: str
    type: type
    default: Any
    help_zh: str


KEYS: tuple[Key, ...] = (
    Key("store", "url", str, "", "存储地址：SQLite 文件路径或 postgresql+psycopg://… 地址"),
    Key("store", "merged", str, "", "汇总工作簿路径（扫描后重写，含 汇总/逾期/处罚 表）"),
    Key("store", "closed_years", int, 2, "汇总工作簿保留几年内（含今年）已结案的投诉；更早结案的按年移到归档工作簿"
        "（<汇总名>-2024.xlsx，只读）"),
    Key("rules", "path", str, "", "规则工作簿路径（complaint-desk rules 生成）；留空用默认规则"),
    Key("scan", "interval_minutes", int, 15, "逾期扫描间隔（分钟）"),
    Key("scan", "misfire_grace_seconds", int, 3600, "错过的任务在多少秒内仍补跑（之后合并为一次）"),
    Key("scan", "timezone", str, "", "提醒时间和“现在”所在的时区，例如 Asia/Shanghai；留空用本机时区"),
    Key("mail", "host", str, "", "SMTP 服务器；留空则把邮件写成 .eml 文件到 outbox_dir"),
    Key("mail", "port", int, 587, "SMTP 端口（STARTTLS 通常 587，SSL 通常 465）"),
    Key("mail", "user", str, "", "SMTP 用户名；密码只从环境变量 COMPLAINT_DESK_SMTP_PASSWORD 读取"),
    Key("mail", "sender", str, "complaint-desk@localhost", "发件人地址"),
    Key("mail", "tls", str, "starttls", "starttls / ssl / none（none 仅限本机中继）"),
    Key("mail", "allow_plain_auth", bool, False, "允许在未加密连接上登录（仅本机中继）"),
    Key("mail", "timeout_seconds", int, 30, "连接和收发超时（秒）；也是判定发送进程已中断的时长"),
    Key("mail", "outbox_dir", str, "outbox", "未配置服务器时 .eml 文件写到此文件夹"),
    Key("mail", "send_interval_minutes", int, 5, "发送待发邮件的间隔（分钟）"),
    Key("sync", "sources", list, [], "要监视的门店文件夹列表；留空则 run 只做扫描和提醒，不合并"),
    Key("sync", "poll", bool, False, "所有文件夹都用轮询代替系统事件（网络共享 SMB/NAS）"),
    Key("sync", "poll_sources", list, [], "用轮询监视的门店文件夹（NAS/SMB 共享）；其余文件夹用系统事件。也算作监视的文件夹"),
    Key("sync", "rescan_minutes", int, 5, "即使没有文件事件，也每隔多少分钟全量重扫一次"),
    Key("sync", "feedback", bool, False, "为每个门店工作簿在其文件夹的 _反馈 子文件夹写一份只读的反馈工作簿（问题和待办）"),
    Key("sync", "empty_folder_hours", int, 24, "门店文件夹突然没有任何工作簿（共享盘未挂载）时，保留其行并标为不可用的小时数；之后才标记为已删除"),
)


class Config(TypedDict):
    """desk.toml as ``load_config`` gives it: every key of ``KEYS`` in its section (the default
    where the file has none; a value's type is the one its ``Key`` declares), paths made
    absolute, and the ``[[bot]]`` sections as checked robots."""

    store: dict[str, Any]
    rules: dict[str, Any]
    scan: dict[str, Any]
    mail: dict[str, Any]
    sync: dict[str, Any]
    bot: list[Robot]


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        # utf-8-sig: Windows Notepad saves UTF-8 with a byte-order mark; its CRLF line ends
        # are plain TOML
        doc = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise BadSetting(str(path), None, f"配置文件不是 UTF-8 编码，请用“UTF-8”另存 (not UTF-8: {e.reason})") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadSetting(str(path), None, f"无法读取配置：{e}") from None
    known = {(k.section, k.name): k for k in KEYS}
    out: dict[str, Any] = {}
    for k in KEYS:
        out.setdefault(k.section, {})[k.name] = k.default
    out["bot"] = robots_from(doc.pop("bot", []), path.name)
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise BadSetting(f"{path.name} [{section}]", body, "应为一个表（[section]）")
        for name, value in body.items():
            key = known.get((section, name))
            if key is None:
                raise BadSetting(f"{path.name} [{section}] {name}", value, "未知配置项")
            if key.type is int and isinstance(value, bool) or not isinstance(value, key.type):
                raise BadSetting(f"{path.name} [{section}] {name}", value, f"应为 {key.type.__name__}")
            out[section][name] = value
    if not out["store"]["url"]:
        raise BadSetting(f"{path.name} [store] url", "", "必须填写")
    if out["mail"]["tls"] not in ("starttls", "ssl", "none"):
        raise BadSetting(f"{path.name} [mail] tls", out["mail"]["tls"], "应为 starttls / ssl / none")
    if out["scan"]["timezone"]:
        _check_zone(f"{path.name} [scan] timezone", out["scan"]["timezone"])
    base = path.parent
    for section, name in (("store", "merged"), ("rules", "path"), ("mail", "outbox_dir")):
        if out[section][name]:
            out[section][name] = str(real_path(base / out[section][name]))
    for name in ("sources", "poll_sources"):
        if not all(isinstance(s, str) and s for s in out["sync"][name]):
            raise BadSetting(f"{path.name} [sync] {name}", out["sync"][name], "应为文件夹路径的列表")
        out["sync"][name] = [str(real_path(base / s)) for s in out["sync"][name]]
    for section, name in (("scan", "interval_minutes"), ("mail", "send_interval_minutes")):
        if out[section][name] < 1:
            # 0 or less would rewrite the merged workbook (or poll the mail server) every second
            raise BadSetting(f"{path.name} [{section}] {name}", out[section][name], "应至少为 1（分钟）")
    if out["sync"]["empty_folder_hours"] < 0:
        raise BadSetting(f"{path.name} [sync] empty_folder_hours", out["sync"]["empty_folder_hours"], "不能为负数")
    if out["store"]["closed_years"] < 1:
        raise BadSetting(f"{path.name} [store] closed_years", out["store"]["closed_years"], "应至少为 1（今年）")
    if out["sync"]["rescan_minutes"] < 1:
        # 0 would rescan every shop file several times a second
        raise BadSetting(f"{path.name} [sync] rescan_minutes", out["sync"]["rescan_minutes"], "应至少为 1")
    if (out["sync"]["sources"] or out["sync"]["poll_sources"]) and not out["store"]["merged"]:
        raise BadSetting(f"{path.name} [store] merged", "", "监视门店文件夹时必须填写汇总工作簿路径")
    url = out["store"]["url"]
    if "://" not in url:
        out["store"]["url"] = str(real_path(base / url))
    return Config(store=out["store"], rules=out["rules"], scan=out["scan"], mail=out["mail"], sync=out["sync"],
                  bot=out["bot"])


BOT_KEYS = {"name": str, "kind": str, "url_env": str, "secret_env": str, "shops": list}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def robots_from(sections: object, file: str) -> list[Robot]:
    """The ``[[bot]]`` sections as Robot objects, each checked; the URL and the secret stay in the
    environment (only the variables' names are here, so desk.toml can be shown to anyone)."""
    from .robots import KINDS, Robot

    if not isinstance(sections, list):
        raise BadSetting(f"{file} [bot]", sections, "机器人应写成 [[bot]]（每个机器人一节）")
    robots: list[Robot] = []
    for n, body in enumerate(sections, start=1):
        where = f"{file} [[bot]] 第 {n} 节"
        if not isinstance(body, dict):
            raise BadSetting(where, body, "机器人应写成 [[bot]] 表")
        for name, value in body.items():
            want = BOT_KEYS.get(name)
            if want is None:
                raise BadSetting(f"{where} {name}", value, "未知配置项（可用：name, kind, url_env, secret_env, shops）")
            if not isinstance(value, want):
                raise BadSetting(f"{where} {name}", value, f"应为 {want.__name__}")
        name = str(body.get("name", "")).strip()
        if not name:
            raise BadSetting(f"{where} name", body.get("name", ""), "必须填写机器人名称")
        where = f"{file} [[bot]] {name}"
        if any(r.name == name for r in robots):
            raise BadSetting(f"{where} name", name, "机器人名称重复")
        kind = body.get("kind", "")
        if kind not in KINDS:
            raise BadSetting(f"{where} kind", kind, "应为 wecom / dingtalk / feishu")
        url_env, secret_env = body.get("url_env", ""), body.get("secret_env", "")
        if not _ENV_NAME.fullmatch(url_env):
            # a pasted URL here would put the key in a file: only the variable's name belongs here
            raise BadSetting(f"{where} url_env", url_env, "应为环境变量名（如 CD_BOT_SH01），Webhook 地址放在该环境变量中")
        if secret_env and not _ENV_NAME.fullmatch(secret_env):
            raise BadSetting(f"{where} secret_env", secret_env, "应为环境变量名（如 CD_BOT_SH01_SECRET）")
        if secret_env and kind == "wecom":
            raise BadSetting(f"{where} secret_env", secret_env, "企业微信群机器人没有签名密钥，请删去此项")
        shops = body.get("shops", [])
        if not all(isinstance(s, str) and s.strip() for s in shops):
            raise BadSetting(f"{where} shops", shops, "应为门店代码的列表，如 [\"SH01\"]；留空 [] 表示主管群（全部门店）")
        robots.append(Robot(name, kind, url_env, secret_env, tuple(s.strip() for s in shops)))
    return robots


def _check_zone(where: str, name: str) -> None:
    # Refused at start, not at the first reminder: a typo would otherwise stop every job run.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadSetting(where, name, "未知时区，应为 IANA 时区名，例如 Asia/Shanghai") from None
