"""The ablation summary: t quantiles, per-arm intervals, paired and Welch differences, the table and the plot.

Expected numbers are worked by hand in the comments (t quantiles from a printed table).
"""

import math

import pytest
from PIL import Image

from slime_model.ablation.summary import (
    ArmSummary,
    Claim,
    RunScore,
    difference,
    load_claims,
    markdown_table,
    plot,
    summarize,
    t_critical_95,
)

CLAIM_A = Claim("a", "Global only vs global + local", ("global+local", "global-only"), "local view helps (SliME §3)")
CLAIM_B = Claim("b", "Local top-p", ("top-p 1.0", "top-p 0.5", "top-p 0.75"), "fewer | selected tokens win")
CLAIM_C = Claim("c", "Alternating stages vs end-to-end", ("alternating", "end-to-end"), "alternating wins (Table 4)")
CLAIMS = [CLAIM_A, CLAIM_B, CLAIM_C]


def runs(claim: str, arm: str, seeds: list[int], scores: list[float], chance: float = 25.0) -> list[RunScore]:
    return [RunScore(claim, arm, seed, score, chance) for seed, score in zip(seeds, scores, strict=True)]


def arm(name: str, seeds: list[int], scores: list[float]) -> ArmSummary:
    claim = Claim("x", "x", (name, "other"), "x")
    return summarize(runs("x", name, seeds, scores) + runs("x", "other", [0], [0.0]), [claim])[0]


@pytest.mark.parametrize(
    ("df", "table"), [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)]
)
def test_t_quantiles_match_the_printed_table(df, table):
    assert t_critical_95(df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_tends_to_the_normal_one_and_takes_fractional_df():
    assert t_critical_95(10**6) == pytest.approx(1.960, abs=5e-4)
    assert t_critical_95(10**9) == pytest.approx(1.960, abs=5e-4)
    # Welch's df is fractional: its quantile lies between its integer neighbours'.
    assert t_critical_95(3) < t_critical_95(2.5) < t_critical_95(2)
    with pytest.raises(ValueError, match="> 0"):
        t_critical_95(0)


def test_summarize_computes_mean_and_t_interval_per_arm_in_claim_order():
    given = runs("a", "global-only", [5], [40.0], chance=20.0)
    given += runs("a", "global+local", [2, 0, 1], [80.0, 60.0, 70.0], chance=25.0)
    reference, single = summarize(given, [CLAIM_A])
    # 60, 70, 80: mean 70, sample sd 10, half width t(2) * 10 / sqrt(3) = 4.303 * 5.774 = 24.84.
    assert (reference.claim, reference.arm, reference.n) == ("a", "global+local", 3)
    assert reference.mean == pytest.approx(70.0)
    assert reference.half_width == pytest.approx(4.3027 * 10 / math.sqrt(3), abs=1e-3)
    assert (reference.low, reference.high) == pytest.approx((70.0 - 24.841, 70.0 + 24.841), abs=1e-3)
    assert reference.seeds == (0, 1, 2) and reference.scores == (60.0, 70.0, 80.0)
    assert reference.chance == 25.0
    # One seed: no interval, the bounds are the point.
    assert (single.arm, single.n, single.mean, single.half_width, single.low, single.high) == (
        "global-only",
        1,
        40.0,
        0.0,
        40.0,
        40.0,
    )
    assert single.chance == 20.0


def test_summarize_chance_is_the_mean_of_the_groups_runs():
    given = [RunScore("a", "global+local", 0, 50.0, 20.0), RunScore("a", "global+local", 1, 50.0, 30.0)]
    given += runs("a", "global-only", [0], [40.0])
    assert summarize(given, [CLAIM_A])[0].chance == pytest.approx(25.0)


BOTH_ARMS = runs("a", "global+local", [0], [50.0]) + runs("a", "global-only", [0], [40.0])


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (runs("a", "global-only", [0], [50.0]), "'global\\+local': no runs"),
        (BOTH_ARMS + runs("a", "local-only", [0], [50.0]), "no arm 'local-only'"),
        (BOTH_ARMS + runs("z", "global-only", [0], [50.0]), "unknown claim 'z'"),
        (BOTH_ARMS + runs("a", "global+local", [0], [60.0]), "two runs with seed 0"),
    ],
)
def test_summarize_refuses_missing_unknown_and_duplicate_runs(given, message):
    with pytest.raises(ValueError, match=message):
        summarize(given, [CLAIM_A])


def test_a_run_score_is_a_percentage():
    with pytest.raises(ValueError, match="accuracy is a percentage"):
        RunScore("a", "global+local", 0, 170.0, 25.0)


def test_difference_pairs_runs_by_seed_when_both_arms_ran_the_same_seeds():
    a = arm("a", [0, 1, 2], [60.0, 70.0, 80.0])
    b = arm("b", [2, 0, 1], [71.0, 55.0, 62.0])
    # Per seed: 5, 8, 9. Mean 22/3 = 7.333; deviations -7/3, 2/3, 5/3, sample variance (78/9) / 2 = 13/3;
    # half width t(2) * sqrt(13/3) / sqrt(3) = 4.3027 * sqrt(13) / 3 = 5.171.
    mean, low, high = difference(a, b)
    assert mean == pytest.approx(22 / 3)
    half_width = 4.3027 * math.sqrt(13) / 3
    assert (low, high) == pytest.approx((22 / 3 - half_width, 22 / 3 + half_width), abs=1e-3)


def test_difference_is_welch_when_the_seeds_differ():
    a = arm("a", [0, 1, 2], [60.0, 70.0, 80.0])
    b = arm("b", [3, 4, 5], [40.0, 50.0, 60.0])
    # Variances 100 and 100 over n = 3: se^2 = 200/3; Welch df = (200/3)^2 / (2 * (100/3)^2 / 2) = 4;
    # half width t(4) * sqrt(200/3) = 2.7764 * 8.165 = 22.67.
    mean, low, high = difference(a, b)
    assert mean == pytest.approx(20.0)
    assert (low, high) == pytest.approx((20.0 - 22.669, 20.0 + 22.669), abs=2e-3)
    # Unequal n: 50, 50 has variance 0, so se^2 = 100/3 and df = (100/3)^2 / ((100/3)^2 / 2) = 2 (a's n - 1);
    # half width t(2) * sqrt(100/3) = 4.3027 * 5.7735 = 24.84.
    mean, low, high = difference(a, arm("b", [3, 4], [50.0, 50.0]))
    assert (mean, low, high) == pytest.approx((20.0, 20.0 - 24.841, 20.0 + 24.841), abs=1e-3)


def test_difference_without_a_second_seed_has_no_interval():
    assert difference(arm("a", [0, 1], [60.0, 70.0]), arm("b", [7], [50.0])) == (15.0, 15.0, 15.0)
    assert difference(arm("a", [3], [60.0]), arm("b", [3], [50.0])) == (10.0, 10.0, 10.0)


def ablation() -> list[ArmSummary]:
    given = runs("a", "global+local", [0, 1, 2], [60.0, 70.0, 80.0])
    given += runs("a", "global-only", [0, 1, 2], [55.0, 62.0, 71.0])
    given += runs("b", "top-p 1.0", [0, 1, 2], [40.0, 50.0, 60.0], chance=10.0)
    given += runs("b", "top-p 0.5", [3, 4, 5], [60.0, 70.0, 80.0], chance=10.0)
    given += runs("b", "top-p 0.75", [9], [52.0], chance=12.0)
    given += runs("c", "alternating", [0], [30.0]) + runs("c", "end-to-end", [0], [20.0])
    return summarize(given, CLAIMS)


def test_markdown_table_lines():
    # global-only: mean 62.67, sd 8.021, half width 4.3027 * 8.021 / sqrt(3) = 19.92; vs reference paired -7.3 ± 5.2
    # (the paired case above, negated). top-p 0.5 vs top-p 1.0: the Welch case above, +20.0 ± 22.7.
    assert markdown_table(ablation(), CLAIMS).splitlines() == [
        "| claim | arm | accuracy (mean ± 95% CI) | seeds | chance | vs reference arm | paper says |",
        "|---|---|---|---|---|---|---|",
        "| a | global+local | 70.0 ± 24.8 | 3 | 25.0 | reference | local view helps (SliME §3) |",
        "| a | global-only | 62.7 ± 19.9 | 3 | 25.0 | -7.3 ± 5.2 (paired) |  |",
        "| b | top-p 1.0 | 50.0 ± 24.8 | 3 | 10.0 | reference | fewer \\| selected tokens win |",
        "| b | top-p 0.5 | 70.0 ± 24.8 | 3 | 10.0 | +20.0 ± 22.7 (Welch) |  |",
        "| b | top-p 0.75 | 52.0 (n=1) | 1 | 12.0 | +2.0 (n=1) |  |",
        "| c | alternating | 30.0 (n=1) | 1 | 25.0 | reference | alternating wins (Table 4) |",
        "| c | end-to-end | 20.0 (n=1) | 1 | 25.0 | -10.0 (n=1) |  |",
    ]


def test_table_and_plot_refuse_a_claim_arm_without_summary(tmp_path):
    summaries = [s for s in ablation() if s.arm != "top-p 0.5"]
    with pytest.raises(ValueError, match="b/top-p 0.5"):
        markdown_table(summaries, CLAIMS)
    with pytest.raises(ValueError, match="b/top-p 0.5"):
        plot(summaries, CLAIMS, tmp_path / "ablation.png")


def test_plot_writes_one_panel_per_claim(tmp_path):
    path = plot(ablation(), CLAIMS, tmp_path / "figures" / "ablation.png")
    assert path == tmp_path / "figures" / "ablation.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 380)  # 4 x 3.8 inches per panel at 100 dpi, three claims
    with Image.open(plot(ablation()[:2], [CLAIM_A], tmp_path / "one.png")) as image:
        assert image.size == (400, 380)


def test_load_claims_takes_arm_names_from_strings_or_mappings():
    data = {
        "task": {"ignored": "the runner's"},
        "claims": [
            {"key": "a", "title": "Global only vs global + local", "paper": "local helps", "arms": ["g+l", "g"]},
            {"key": "b", "title": "Top-p", "paper": "less is more", "arms": [{"name": "p1", "top_p": 1.0}, "p05"]},
        ],
    }
    assert load_claims(data) == [
        Claim("a", "Global only vs global + local", ("g+l", "g"), "local helps"),
        Claim("b", "Top-p", ("p1", "p05"), "less is more"),
    ]


def claim(**changes) -> dict:
    return {"claims": [{"key": "a", "title": "t", "paper": "p", "arms": ["x", "y"]} | changes]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"claims": [{"key": "a", "paper": "p", "arms": ["x", "y"]}]}, r"claims\.0\.title: Field required"),
        (claim(papers="typo"), r"claims\.0\.papers: Extra inputs"),
        (claim(arms=["x"]), r"claims\.0\.arms: List should have at least 2"),
        (claim(arms=["x", {"name": "x"}]), r"claims\.0\.arms: .*distinct"),
        (claim(arms=["x", {"top_p": 0.5}]), r"claims\.0\.arms\.1\..*name: Field required"),
        ({"claims": claim()["claims"] * 2}, "claims.key must be distinct"),
        ({"seeds": 3}, r"claims: Field required"),
    ],
)
def test_load_claims_names_the_bad_field(data, message):
    with pytest.raises(ValueError, match=f"bad ablation claims: .*{message}"):
        load_claims(data)
