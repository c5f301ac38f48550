"""The lmms-eval bridge against the real lmms-eval 0.7 (the `lmms-eval` extra): found through the entry
point pyproject.toml declares, run by lmms-eval's own `simple_evaluate` on a local POPE-format task that
uses lmms-eval's own POPE prompt, scorer and aggregations, over a tiny checkpoint saved to disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
from datasets import Dataset, Features, Image, Value
from lmms_eval.api.instance import Instance
from lmms_eval.models.registry_v2 import ModelRegistryV2
from PIL import ImageFile

from slime_model.generation import GenerationRequest, generate_batch, load_checkpoint, score_continuation
from slime_model.integrations.lmms_eval import MODEL_ID, SliMELmmsEval, messages_to_request
from tests.slime_model.serving.serving_helpers import save_tiny_checkpoint
from tests.slime_model.slime_model_helpers import noise_image

ROOT = Path(__file__).resolve().parents[3]
POPE_SUFFIX = "\nAnswer the question using a single word or phrase."  # lmms-eval's pope.yaml post_prompt
# Real POPE rows (adversarial split layout: question_id, question, answer, image_source, category).
POPE_ROWS = [
    ("1", "Is there a snowboard in the image?", "yes", "COCO_val2014_000000310196", "adversarial"),
    ("2", "Is there a person in the image?", "no", "COCO_val2014_000000310196", "adversarial"),
    ("3", "Is there a dining table in the image?", "yes", "COCO_val2014_000000210789", "adversarial"),
    ("4", "Is there a car in the image?", "no", "COCO_val2014_000000429109", "adversarial"),
    ("5", "Is there a bottle in the image?", "no", "COCO_val2014_000000429109", "adversarial"),
]
TASK_YAML = """task: slime_pope_excerpt
dataset_path: parquet
dataset_kwargs:
  cache_dir: {cache}
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.pope_doc_to_visual
doc_to_text: !function utils.pope_doc_to_text
doc_to_target: "answer"
generation_kwargs:
  max_new_tokens: 6
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function utils.pope_process_results
metric_list:
  - metric: pope_accuracy
    aggregation: !function utils.pope_aggregate_accuracy
    higher_is_better: true
  - metric: pope_yes_ratio
    aggregation: !function utils.pope_aggregate_yes_ratio
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "{suffix}"
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-slime"))


@pytest.fixture
def bridge(checkpoint, tmp_path_factory, monkeypatch) -> SliMELmmsEval:
    """Found as `lmms-eval --model slime_model` finds it: lmms-eval's registry reads the `lmms_eval.models`
    entry points of the installed distributions; here one whose entry points are pyproject.toml's table."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["lmms_eval.models"]
    site = tmp_path_factory.mktemp("site")
    dist_info = site / "slime_bridge_probe-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: slime-bridge-probe\nVersion: 0\n")
    lines = [f"{name} = {value}" for name, value in declared.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(["[lmms_eval.models]", *lines, ""]))
    monkeypatch.syspath_prepend(str(site))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()
    model_class = registry.get_model_class(MODEL_ID)  # also checks it is a chat lmms (is_simple False)
    return model_class.create_from_arg_string(f"pretrained={checkpoint},batch_size=3")


@pytest.fixture
def pope_task(tmp_path) -> Path:
    """A POPE-format parquet (the image column as datasets stores it) and a task over lmms-eval's POPE utils."""
    images = [noise_image(160 + 40 * i, 120, seed=i) for i in range(len(POPE_ROWS))]
    columns = list(zip(*POPE_ROWS, strict=True))
    names = ["question_id", "question", "answer", "image_source", "category"]
    features = Features({**{name: Value("string") for name in names}, "image": Image()})
    rows = {**dict(zip(names, map(list, columns), strict=True)), "image": images}
    Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "test.parquet")
    (tmp_path / "utils.py").write_text("from lmms_eval.tasks.pope.utils import *  # noqa: F403\n")
    suffix = POPE_SUFFIX.replace("\n", "\\n")
    yaml = TASK_YAML.format(data=tmp_path / "test.parquet", cache=tmp_path / "hf-datasets", suffix=suffix)
    (tmp_path / "slime_pope_excerpt.yaml").write_text(yaml)
    return tmp_path


def test_lmms_eval_scores_the_answers_generate_batch_gives(bridge, checkpoint, pope_task, monkeypatch):
    # Importing lmms_eval.api.task sets PIL's ImageFile.LOAD_TRUNCATED_IMAGES = True for the whole process: imported
    # here, and the flag restored after the test, so the tests that reject truncated images still see PIL's default.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    results = simple_evaluate(
        model=bridge,
        tasks=["slime_pope_excerpt"],
        task_manager=TaskManager(include_path=str(pope_task)),
        log_samples=True,
        bootstrap_iters=0,
    )
    samples = sorted(results["samples"]["slime_pope_excerpt"], key=lambda s: s["doc_id"])
    dataset = Dataset.from_parquet(str(pope_task / "test.parquet"), cache_dir=str(pope_task / "hf-datasets"))
    model, processor = load_checkpoint(checkpoint)  # simple_evaluate ends with lm.clean(), which frees the model
    expected = generate_batch(
        model,
        processor,
        [
            GenerationRequest(
                [{"from": "human", "value": f"<image>\n{row['question']}{POPE_SUFFIX}"}],
                [row["image"].convert("RGB")],
                max_new_tokens=6,
            )
            for row in dataset
        ],
    )
    assert [s["resps"][0][0] for s in samples] == [r.text for r in expected]
    assert all(r.text for r in expected)
    scores = results["results"]["slime_pope_excerpt"]
    matches = [r.text.lower().strip() == row["answer"] for r, row in zip(expected, dataset, strict=True)]
    assert scores["pope_accuracy,none"] == sum(matches) / len(matches)


def test_generate_until_answers_in_request_order_whatever_the_batch(bridge):
    images = [noise_image(112, 112, seed=7), noise_image(300, 90, seed=8)]
    docs = {
        0: [{"role": "user", "content": [{"type": "image", "url": images[0]}, {"type": "text", "text": "Colour?"}]}],
        1: [{"role": "user", "content": [{"type": "text", "text": "Count the bars in the chart on the left."}]}],
        2: [
            {
                "role": "user",
                "content": [
                    {"type": "image", "url": images[0]},
                    {"type": "text", "text": "And here?"},
                    {"type": "image", "url": images[1]},
                ],
            },
        ],
    }
    bridge.task_dict = {"excerpt": {"test": docs}}
    gen_kwargs = {"max_new_tokens": 7, "temperature": 0, "do_sample": False, "until": ["\n\n"]}
    instances = [
        Instance(
            "generate_until",
            ("", lambda doc: doc, dict(gen_kwargs), doc_id, "excerpt", "test"),
            doc_id,
            {"task": "excerpt", "doc_id": doc_id, "repeats": 1},
        )
        for doc_id in docs
    ]
    answers = bridge.generate_until(instances)
    alone = [generate_batch(bridge.model, bridge.processor, [bridge._request(i)])[0].text for i in instances]
    assert answers == alone and all(answers)
    (request,) = [bridge._request(instances[2])]
    assert request.conversation == [{"from": "human", "value": "<image>\nAnd here?\n<image>"}]
    assert request.stop == ("\n\n",) and request.max_new_tokens == 7 and request.temperature == 0.0


def test_sampling_settings_and_what_a_llava_conversation_cannot_hold():
    user = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    sampled = messages_to_request([user], {"do_sample": True, "temperature": 0.7, "top_p": 0.9}, "<image>")
    assert (sampled.temperature, sampled.top_p, sampled.max_new_tokens) == (0.7, 0.9, 128)
    greedy = messages_to_request([user], {"do_sample": False, "temperature": 0.7, "until": "###"}, "<image>")
    assert (greedy.temperature, greedy.stop) == (0.0, ("###",))
    with pytest.raises(ValueError, match="fixed system prompt"):
        messages_to_request([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, user], {}, "<")
    with pytest.raises(ValueError, match="images and text only; the task sent video"):
        messages_to_request([{"role": "user", "content": [{"type": "video", "url": "a.mp4"}]}], {}, "<image>")


def meta(task: str, doc_id: int) -> dict:
    return {"task": task, "doc_id": doc_id, "repeats": 1}


def test_loglikelihood_scores_each_continuation_as_score_continuation_does(bridge):
    """lmms-eval's log-likelihood requests (context, target, doc_to_visual, doc_id, task, split): the image
    placeholders go before the context, the target may be text or a function of the doc."""
    images = [noise_image(160, 120, seed=3), noise_image(90, 200, seed=4)]
    docs = {0: {"images": images[:1], "answer": " B"}, 1: {"images": images, "answer": " A"}, 2: {"images": []}}
    bridge.task_dict = {"mc": {"test": docs}}
    visuals = lambda doc: doc["images"]  # noqa: E731
    instances = [
        Instance(
            "loglikelihood",
            ("Which one? A or B", lambda doc: doc["answer"], visuals, 0, "mc", "test"),
            0,
            meta("mc", 0),
        ),
        Instance("loglikelihood", ("Which one? A or B", " A", visuals, 1, "mc", "test"), 1, meta("mc", 1)),
        Instance("loglikelihood", ("2 + 2 =", " 4", visuals, 2, "mc", "test"), 2, meta("mc", 2)),
    ]
    scores = bridge.loglikelihood(instances)
    expected = [
        score_continuation(bridge.model, bridge.processor, [{"from": "human", "value": value}], pictures, target)
        for value, pictures, target in [
            ("<image>\nWhich one? A or B", images[:1], " B"),
            ("<image><image>\nWhich one? A or B", images, " A"),
            ("2 + 2 =", [], " 4"),
        ]
    ]
    assert scores == expected
    assert all(logprob < 0 and isinstance(greedy, bool) for logprob, greedy in scores)


def test_multi_round_tasks_run_round_by_round_with_the_previous_answers(bridge):
    """Round 0 asks doc_to_messages(doc); later rounds pass the answers so far, until the task says done."""
    image = noise_image(140, 140, seed=9)
    seen: list[tuple[int, int, list[str]]] = []

    def doc_to_messages(doc, round_idx=None, previous_output=None, previous_round_info=None):
        if round_idx is None:
            return [{"role": "user", "content": [{"type": "image", "url": image}, {"type": "text", "text": doc["q"]}]}]
        seen.append((doc["id"], round_idx, list(previous_output)))
        if round_idx >= doc["rounds"]:
            return (None, True, previous_output, previous_round_info)
        text = f"You said {previous_output[-1]!r}. Say it again."
        return ([{"role": "user", "content": [{"type": "text", "text": text}]}], False, previous_output, round_idx)

    docs = {0: {"id": 0, "q": "Colour?", "rounds": 2}, 1: {"id": 1, "q": "Shape?", "rounds": 1}}
    bridge.task_dict = {"chat": {"test": docs}}
    gen_kwargs = {"max_new_tokens": 4, "do_sample": False}
    instances = [
        Instance(
            "generate_until_multi_round", ("", doc_to_messages, dict(gen_kwargs), i, "chat", "test"), i, meta("chat", i)
        )
        for i in docs
    ]
    outputs = bridge.generate_until_multi_round(instances)
    assert [len(rounds) for rounds in outputs] == [2, 1]

    def alone(messages) -> str:
        request = messages_to_request(messages, gen_kwargs, bridge.processor.settings.image_token)
        return generate_batch(bridge.model, bridge.processor, [request])[0].text

    assert outputs[0][0] == alone(doc_to_messages(docs[0])) and outputs[1][0] == alone(doc_to_messages(docs[1]))
    second = [{"role": "user", "content": [{"type": "text", "text": f"You said {outputs[0][0]!r}. Say it again."}]}]
    assert outputs[0][1] == alone(second)
    assert sorted(seen) == [(0, 1, outputs[0][:1]), (0, 2, outputs[0]), (1, 1, outputs[1])]


@pytest.mark.parametrize("batch_size", ["auto", "0"])
def test_batch_size_must_be_a_whole_number(checkpoint, batch_size):
    with pytest.raises(ValueError, match=f"whole number of requests per batch, got --batch_size {batch_size}"):
        SliMELmmsEval.create_from_arg_string(f"pretrained={checkpoint}", {"batch_size": batch_size})
