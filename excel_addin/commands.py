"""``complaint-desk addin build|install``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from complaint_core.cli_errors import OneLineGroup
from complaint_core.errors import ComplaintDeskError

# The add-in's own packages: a server that only merges and mails is installed without them.
ADDIN_EXTRA = ("xlwings", "pyopenvba")


class AddinExtraMissing(ComplaintDeskError):
    """This Python was installed without the [addin] extra."""


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):   # a half-removed package counts as missing
        return False


def _need_extra() -> None:
    missing = [name for name in ADDIN_EXTRA if not _installed(name)]
    if missing:
        raise AddinExtraMissing(f"加载项命令需要先安装 [addin] 组件（缺少 {', '.join(missing)}）："
                                f"pip install \"complaint-desk[addin]\" "
                                f"(the add-in commands need the [addin] extra)")


@click.group(cls=OneLineGroup)
def addin() -> None:
    """Excel 加载项：构建和安装 / Build and install the Excel add-in."""


@addin.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="输出文件（默认 dist/ComplaintDesk.xlam） / Output file.")
def build(out: Path | None) -> None:
    """从仓库中的 VBA 和功能区源码构建 .xlam / Build the .xlam from the sources."""
    _need_extra()
    from .build import build_addin

    click.echo(f"已构建 {build_addin(out)}")


@addin.command()
@click.option("--file", "addin_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="安装已构建的 .xlam（默认现场构建） / Install this .xlam instead of building one.")
def install(addin_file: Path | None) -> None:
    """把加载项装进 Excel 启动文件夹并写入用户配置 / Install into Excel's start-up folder."""
    _need_extra()
    from .install import install as do_install

    p = do_install(addin=addin_file)
    click.echo(f"已安装 {p.addin_target}\n配置 {p.config_file}\n请重新启动 Excel，功能区会出现“投诉处理”选项卡。")
