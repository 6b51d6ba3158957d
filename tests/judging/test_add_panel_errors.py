"""manage.py add_panel names the option at fault when the panel service refuses (``--members: ...``)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command

from judging.models import JudgeConfig, JudgePanel

MakeJudge = Callable[..., JudgeConfig]


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("add_panel", *args, stdout=io.StringIO())
    return str(refused.value)


def test_add_panel_refusals_from_the_service_name_the_options(make_judge: MakeJudge) -> None:
    for name in ("j1", "j2"):
        make_judge(name)

    assert refusal("solo", "--members", "j1") == "--members: a panel has 2 to 15 judges, not 1"
    assert refusal("twice", "--members", "j1,j1").startswith("--members: a judge is listed twice")
    assert refusal("p", "--members", "j1,j2", "--aggregation", "median").startswith("--aggregation: must be one of")
    assert refusal("p", "--members", "j1,j2", "--aggregation", "mean_probability").startswith(
        "--aggregation: mean_probability needs a probability from every member's template"
    )
    assert not JudgePanel.objects.exists()
