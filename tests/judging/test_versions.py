"""Judge configuration versions and model families."""

from __future__ import annotations

from collections.abc import Callable

from judging.models import JudgeConfig, ModelFamily
from judging.versions import config_version, family_of, judge_family

MakeJudge = Callable[..., JudgeConfig]


def test_version_changes_with_request_settings_not_with_limits_prices_or_name(make_judge: MakeJudge) -> None:
    judge = make_judge("versioned")
    before = config_version(judge)
    assert len(before) == 12
    for field, value in [("max_concurrency", 3), ("requests_per_minute", 7), ("timeout_seconds", 9.0)]:
        setattr(judge, field, value)
    judge.name = "renamed"
    assert config_version(judge) == before
    judge.template = "arena_hard"
    assert config_version(judge) != before
    judge.template = "mt_bench"
    judge.temperature = 0.5
    assert config_version(judge) != before


def test_families_match_model_names_by_wildcard_case_insensitive_first_by_name(db: None) -> None:
    families = [
        ModelFamily.objects.create(name="gpt", patterns="gpt-4*\n  chatgpt-*  \n"),
        ModelFamily.objects.create(name="claude", patterns="claude-*"),
        ModelFamily.objects.create(name="all-4", patterns="*-4*"),
    ]
    assert family_of("GPT-4o-mini", families) == "all-4"  # both match: the first by name
    assert family_of("chatgpt-4o-latest", families) == "all-4"
    assert family_of("claude-v1", families) == "claude"
    assert family_of("llama-13b", families) is None
    assert family_of(None, families) is None


def test_a_judge_family_is_its_own_else_its_model_names(make_judge: MakeJudge) -> None:
    gpt = ModelFamily.objects.create(name="gpt", patterns="gpt-*")
    other = ModelFamily.objects.create(name="local", patterns="local-*")
    by_name = make_judge("by-name", model="gpt-4:position=0.2")  # the local server's options are not the name
    assert judge_family(by_name, [gpt, other]) == "gpt"
    own = make_judge("own", model="gpt-4", family=other)
    assert judge_family(own, [gpt, other]) == "local"
