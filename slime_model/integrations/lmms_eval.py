"""lmms-eval 0.7 chat model over `generate_batch`: `--model slime_model --model_args pretrained=DIR`.

lmms-eval finds it through the `lmms_eval.models` entry point (pyproject.toml), which loads `manifest`:
a `ModelManifest` naming the chat class. The id is `slime_model` because lmms-eval's built-in `slime`
is the released LLaVA-code wrapper (it needs the `llava` package and the original checkpoints).

Chat-style: each request carries the task's `doc_to_messages`; the user turns become one LLaVA
conversation (an image placeholder per image, in the order the task gives them) and the task's
`generation_kwargs` become the request's budget, temperature, top-p and stop strings. Requests run in
batches of `batch_size`; greedy answers do not depend on the batch (`generate_batch` guarantees it).

Log-likelihood tasks (multiple choice scored by option likelihood; lmms-eval sends them as
`(context, target, doc_to_visual, doc_id, task, split)`) go through `generation.score_continuation`:
the prompt rendered exactly as for generation, the continuation's tokens after it. Multi-round tasks
run round by round: each round's messages come from the task's `doc_to_messages(doc, round_idx=...,
previous_output=...)`, and every sample still going is answered in one `generate_batch` per round.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from lmms_eval.protocol import ChatMessages
from tqdm import tqdm

from slime_model.generation import GenerationRequest, generate_batch, load_checkpoint, score_continuation

MODEL_ID = "slime_model"
DEFAULT_MAX_NEW_TOKENS = 128  # the released SliME evaluation's default budget


def manifest() -> ModelManifest:
    """The entry point's payload: lmms-eval imports the class only when `--model slime_model` asks for it."""
    return ModelManifest(model_id=MODEL_ID, chat_class_path=f"{__name__}.SliMELmmsEval")


def messages_to_request(messages: list[dict], gen_kwargs: dict, image_token: str) -> GenerationRequest:
    """lmms-eval chat messages [{role, content: [{type: text|image, ...}]}] -> one GenerationRequest.

    Raises ValueError for what a LLaVA conversation cannot hold: a system turn (the chat template has its
    own), video or audio.
    """
    conversation: list[dict] = []
    images = []
    for message in ChatMessages(messages=messages).messages:
        if message.role == "system":
            raise ValueError("SliME's chat template has a fixed system prompt; the task sent a system message")
        pieces = []
        for content in message.content:
            if content.type == "text":
                pieces.append(content.text)
            elif content.type == "image":
                images.append(content.url.convert("RGB"))
                pieces.append(image_token)
            else:
                raise ValueError(f"SliME reads images and text only; the task sent {content.type}")
        conversation.append({"from": "human" if message.role == "user" else "gpt", "value": "\n".join(pieces)})
    sampled = gen_kwargs.get("do_sample", False) and float(gen_kwargs.get("temperature") or 0) > 0
    until = gen_kwargs.get("until") or ()
    return GenerationRequest(
        conversation,
        images,
        max_new_tokens=int(gen_kwargs.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
        temperature=float(gen_kwargs["temperature"]) if sampled else 0.0,
        top_p=float(gen_kwargs.get("top_p") or 1.0) if sampled else 1.0,
        stop=(until,) if isinstance(until, str) else tuple(until),
    )


class SliMELmmsEval(lmms):
    is_simple = False  # chat model: requests carry doc_to_messages

    def __init__(self, pretrained: str, batch_size: int | str = 8, device: str | None = None, **kwargs) -> None:
        super().__init__()
        if kwargs:
            raise ValueError(f"unknown model_args for {MODEL_ID}: {', '.join(sorted(kwargs))}")
        if not str(batch_size).isdigit() or int(batch_size) < 1:  # lmms-eval's --batch_size also allows "auto"
            raise ValueError(f"{MODEL_ID} takes a whole number of requests per batch, got --batch_size {batch_size}")
        self.batch_size = int(batch_size)
        self.model, self.processor = load_checkpoint(pretrained)
        if device is not None:
            self.model.to(torch.device(device))

    def _request(self, instance: Instance) -> GenerationRequest:
        _, doc_to_messages, gen_kwargs, doc_id, task, split = instance.args
        messages = doc_to_messages(self.task_dict[task][split][doc_id])
        try:
            return messages_to_request(messages, gen_kwargs, self.processor.settings.image_token)
        except ValueError as error:
            raise ValueError(f"task {task}, doc {doc_id}: {error}") from None

    def generate_until(self, requests: Sequence[Instance]) -> list[str]:
        """One answer per request, in request order; batches of `batch_size` sorted by prompt length."""
        prepared = [self._request(instance) for instance in requests]
        order = sorted(range(len(prepared)), key=lambda i: len(str(prepared[i].conversation)))  # less padding
        answers: list[str] = [""] * len(prepared)
        with tqdm(total=len(prepared), desc=MODEL_ID, disable=self.rank != 0) as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                results = generate_batch(self.model, self.processor, [prepared[i] for i in chunk])
                for index, result in zip(chunk, results, strict=True):
                    answers[index] = result.text
                bar.update(len(chunk))
        return answers

    def loglikelihood(self, requests: Sequence[Instance]) -> list[tuple[float, bool]]:
        """(log-probability of each request's continuation, whether greedy decoding gives exactly it)."""
        image_token = self.processor.settings.image_token
        scores = []
        for instance in tqdm(requests, desc=f"{MODEL_ID} loglikelihood", disable=self.rank != 0):
            context, target, doc_to_visual, doc_id, task, split = instance.args
            doc = self.task_dict[task][split][doc_id]
            continuation = target if isinstance(target, str) else str(target(doc))
            images = [image.convert("RGB") for image in _flat(doc_to_visual(doc) if doc_to_visual else [])]
            prompt = context if image_token in context or not images else image_token * len(images) + "\n" + context
            conversation = [{"from": "human", "value": prompt}]
            scores.append(score_continuation(self.model, self.processor, conversation, images, continuation))
        return scores

    def generate_until_multi_round(self, requests: Sequence[Instance]) -> list[list[str]]:
        """Every round's answer per request. Round 0 asks `doc_to_messages(doc)`; round r asks it again with
        `round_idx`, `previous_output` (the answers so far) and `previous_round_info`, until it answers
        terminal (or not with lmms-eval's 4-tuple). Rounds are serial within a sample, batched across samples."""
        outputs: list[list[str]] = [[] for _ in requests]
        infos: list[object] = [None] * len(requests)
        going = list(range(len(requests)))
        round_idx = 0
        while going:
            asked: list[tuple[int, GenerationRequest]] = []
            for index in going:
                _, doc_to_messages, gen_kwargs, doc_id, task, split = requests[index].args
                doc = self.task_dict[task][split][doc_id]
                if round_idx == 0:
                    messages = doc_to_messages(doc)
                else:
                    payload = doc_to_messages(
                        doc, round_idx=round_idx, previous_output=list(outputs[index]), previous_round_info=infos[index]
                    )
                    if not (isinstance(payload, tuple) and len(payload) == 4) or payload[1]:
                        continue  # the task says this sample is done
                    messages, _, _, infos[index] = payload
                request = messages_to_request(messages, gen_kwargs, self.processor.settings.image_token)
                asked.append((index, request))
            for start in range(0, len(asked), self.batch_size):
                chunk = asked[start : start + self.batch_size]
                results = generate_batch(self.model, self.processor, [request for _, request in chunk])
                for (index, _), result in zip(chunk, results, strict=True):
                    outputs[index].append(result.text)
            going = [index for index, _ in asked]
            round_idx += 1
        return outputs


def _flat(visuals) -> list:
    """doc_to_visual's images, flattened (tasks return an image, a list, or lists of them)."""
    if visuals is None:
        return []
    if not isinstance(visuals, (list, tuple)):
        return [visuals]
    return [image for item in visuals for image in _flat(item)]
