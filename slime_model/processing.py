"""`SliMEProcessor`: images -> crops, conversations -> token ids, labels and the selector mask.

One call prepares a batch for `SliMEForConditionalGeneration` (the trainer's collator calls it):

- input_ids [B, L], attention_mask [B, L]: the rendered chat template, one `<image>` placeholder per
  image (the model replaces it by a variable number of visual tokens), padded left or right.
- labels [B, L]: token ids on assistant content and end-of-turn tokens, -100 elsewhere (training
  only; absent with `add_generation_prompt`).
- selector_text_mask [B, L]: the user-turn text tokens the selector compares local tokens with
  (whitespace-only tokens excluded: a prompt that is only `<image>` has none).
- pixel_values [T, 3, S, S]: every crop of the batch, per image its global view then rows·cols
  crops, with no padding crops; text-only samples contribute none.
- image_grids [I, 2]: (rows, cols) of each image, in placeholder order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from slime_model.configuration import SliMEConfig
from slime_model.merging import IGNORE_INDEX
from slime_model.slicing import Grid, choose_grid, slice_image
from slime_model.templates import SegmentKind, get_chat_template, render_conversation

SETTINGS_NAME = "slime_processor.json"
Conversation = Sequence[Mapping[str, str]]
ImagesOfSample = Image.Image | Sequence[Image.Image] | None


class ImageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crop_size: int
    slicing_strategy: Literal["uhd", "anyres", "grid"] = "uhd"
    uhd_max_scale: int = 6
    grid_max_side: int = 6
    pinpoints: list[tuple[int, int]] = []
    image_mean: tuple[float, float, float] = tuple(OPENAI_CLIP_MEAN)
    image_std: tuple[float, float, float] = tuple(OPENAI_CLIP_STD)


class ProcessorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: ImageSettings
    chat_template: str
    image_token: str = "<image>"
    # For truncation, an image may become num_global_tokens + 1 + local_num_queries × crops tokens
    # (every local token kept: the worst case).
    num_global_tokens: int
    local_num_queries: int


class SliMEProcessor:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, settings: ProcessorSettings) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"SliMEProcessor needs a fast tokenizer (offset mappings); got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.settings = settings
        self.template = get_chat_template(settings.chat_template)
        self.image_token_id = tokenizer.convert_tokens_to_ids(settings.image_token)
        if tokenizer.convert_ids_to_tokens(self.image_token_id) != settings.image_token:
            raise ValueError(
                f"the tokenizer has no {settings.image_token!r} token; use SliMEProcessor.from_config to add it"
            )
        fallback = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else fallback

    @classmethod
    def from_config(
        cls, config: SliMEConfig, tokenizer: PreTrainedTokenizerBase, chat_template: str | None = None
    ) -> SliMEProcessor:
        """The processor matching a model config; adds the image placeholder to the tokenizer if missing."""
        if config.image_token not in tokenizer.get_vocab():
            tokenizer.add_tokens([config.image_token], special_tokens=True)
        image_token_id = tokenizer.convert_tokens_to_ids(config.image_token)
        if image_token_id != config.image_token_id:
            raise ValueError(
                f"SliMEConfig.image_token_id is {config.image_token_id} but "
                f"the tokenizer maps {config.image_token!r} to {image_token_id}"
            )
        settings = ProcessorSettings(
            image=ImageSettings(
                crop_size=config.crop_size,
                slicing_strategy=config.slicing_strategy,
                uhd_max_scale=config.uhd_max_scale,
                grid_max_side=config.grid_max_side,
                pinpoints=[tuple(p) for p in config.image_grid_pinpoints],
            ),
            chat_template=chat_template or config.chat_template,
            image_token=config.image_token,
            num_global_tokens=config.num_global_tokens,
            local_num_queries=config.local_num_queries,
        )
        return cls(tokenizer, settings)

    # ---- images ---------------------------------------------------------------------------------
    def image_grid(self, image: Image.Image) -> Grid:
        s = self.settings.image
        return choose_grid(
            s.slicing_strategy,
            image.width,
            image.height,
            s.crop_size,
            uhd_max_scale=s.uhd_max_scale,
            grid_max_side=s.grid_max_side,
            pinpoints=s.pinpoints,
        )

    def process_images(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, list[Grid]]:
        """Images -> (pixel_values [T, 3, S, S] float32 CLIP-normalised, grid of each image)."""
        s = self.settings.image
        grids = [self.image_grid(image) for image in images]
        if not images:
            return torch.zeros(0, 3, s.crop_size, s.crop_size), grids
        crops = np.concatenate([slice_image(image, grid, s.crop_size) for image, grid in zip(images, grids)])
        pixels = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)  # [T, 3, S, S]
        mean = torch.tensor(s.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(s.image_std).view(1, 3, 1, 1)
        return (pixels - mean) / std, grids

    def visual_budget(self, grid: Grid) -> int:
        """Most visual tokens an image with this grid can become: global + separator + every local token."""
        return self.settings.num_global_tokens + 1 + self.settings.local_num_queries * grid.num_crops

    # ---- text -----------------------------------------------------------------------------------
    def encode_segments(self, segments: list[tuple[str, SegmentKind]]) -> tuple[list[int], np.ndarray]:
        """Tokenize the rendered prompt once; each token takes the kind of the segment holding its last character."""
        text = "".join(piece for piece, _ in segments)
        encoded = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
        segment_ends = np.cumsum([len(piece) for piece, _ in segments])
        kinds = np.array([kind for _, kind in segments] + [SegmentKind.FRAME])
        offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        token_kinds = kinds[np.searchsorted(segment_ends, offsets[:, 1] - 1, side="right")]
        token_kinds[offsets[:, 1] <= offsets[:, 0]] = SegmentKind.FRAME  # added specials such as BOS
        # Whitespace guides no selection (the "\n" after `<image>` would otherwise be a prompt's whole
        # selector text): blank user-turn tokens count as template text, so `<image>` alone has none.
        blank = np.array([not text[start:end].strip() for start, end in offsets.tolist()], dtype=bool)
        token_kinds[blank & (token_kinds == SegmentKind.USER)] = SegmentKind.FRAME
        return list(encoded["input_ids"]), token_kinds

    def _truncate(
        self, sample: int, ids: list[int], kinds: np.ndarray, grids: list[Grid], max_length: int
    ) -> tuple[list[int], np.ndarray]:
        visual = sum(self.visual_budget(grid) for grid in grids)
        text_budget = max_length - visual + len(grids)  # each placeholder's own position is reused
        if len(ids) <= text_budget:
            return ids, kinds
        last_image = max((i for i, token in enumerate(ids) if token == self.image_token_id), default=-1)
        if last_image >= text_budget:
            raise ValueError(
                f"sample {sample}: truncation to max_length={max_length} would cut an image: {visual} visual token(s) "
                f"of {len(grids)} image(s) leave {text_budget} text position(s), "
                f"but the last image placeholder is token {last_image + 1}"
            )
        return ids[:text_budget], kinds[:text_budget]

    # ---- batch ------------------------------------------------------------------------------------
    def __call__(
        self,
        conversations: Sequence[Conversation] | None = None,
        images: Sequence[ImagesOfSample] | None = None,
        *,
        text: Sequence[str] | None = None,
        add_generation_prompt: bool = False,
        padding_side: Literal["left", "right"] | None = None,
        max_length: int | None = None,
    ) -> BatchFeature:
        """Prepare a batch: `conversations` (Record layout, templated) or `text` (prompts used as is).

        images[i] is sample i's image, list of images or None. Padding goes left for generation
        and right for training unless `padding_side` says otherwise. `max_length` bounds the merged
        sequence (text + worst-case visual tokens); text after the last image is cut to fit, and a
        cut that would reach an image raises a ValueError.
        """
        if (conversations is None) == (text is None):
            raise ValueError("pass exactly one of conversations or text")
        if text is not None:
            rendered = [[(prompt, SegmentKind.USER)] for prompt in text]
        else:
            rendered = [
                render_conversation(self.template, c, self.settings.image_token, add_generation_prompt)
                for c in conversations
            ]
        per_sample = [_as_list(entry) for entry in (images if images is not None else [None] * len(rendered))]
        if len(per_sample) != len(rendered):
            raise ValueError(f"got {len(rendered)} samples but {len(per_sample)} image entries")

        pixel_values, grids = self.process_images([image for sample in per_sample for image in sample])
        sample_grids, start = [], 0
        for sample in per_sample:
            sample_grids.append(grids[start : start + len(sample)])
            start += len(sample)

        encoded = []
        for index, (segments, sample_images) in enumerate(zip(rendered, sample_grids)):
            ids, kinds = self.encode_segments(segments)
            placeholders = sum(token == self.image_token_id for token in ids)
            if placeholders != len(sample_images):
                raise ValueError(
                    f"sample {index} has {placeholders} {self.settings.image_token} "
                    f"placeholder(s) but {len(sample_images)} image(s)"
                )
            if max_length is not None:
                ids, kinds = self._truncate(index, ids, kinds, sample_images, max_length)
            encoded.append((ids, kinds))

        side = padding_side or ("left" if add_generation_prompt else "right")
        length = max(len(ids) for ids, _ in encoded)
        input_ids = torch.full((len(encoded), length), self.pad_token_id, dtype=torch.long)
        kinds_batch = torch.full((len(encoded), length), -1, dtype=torch.long)  # -1 marks padding
        for row, (ids, kinds) in enumerate(encoded):
            cols = slice(length - len(ids), length) if side == "left" else slice(0, len(ids))
            input_ids[row, cols] = torch.tensor(ids, dtype=torch.long)
            kinds_batch[row, cols] = torch.from_numpy(kinds.astype(np.int64))
        data = {
            "input_ids": input_ids,
            "attention_mask": (kinds_batch >= 0).long(),
            "selector_text_mask": (kinds_batch == SegmentKind.USER) & (input_ids != self.image_token_id),
            "pixel_values": pixel_values,
            "image_grids": torch.tensor([[g.rows, g.cols] for g in grids], dtype=torch.long).reshape(-1, 2),
        }
        if not add_generation_prompt:
            data["labels"] = input_ids.masked_fill(kinds_batch != SegmentKind.ANSWER, IGNORE_INDEX)
        return BatchFeature(data=data)

    def batch_decode(self, token_ids, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(token_ids, **kwargs)

    # ---- persistence ------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        (directory / SETTINGS_NAME).write_text(self.settings.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> SliMEProcessor:
        directory = Path(directory)
        settings_path = directory / SETTINGS_NAME
        if not settings_path.is_file():
            raise FileNotFoundError(
                f"{settings_path} not found: not a directory written by SliMEProcessor.save_pretrained"
            )
        settings = ProcessorSettings.model_validate(json.loads(settings_path.read_text(encoding="utf-8")))
        return cls(AutoTokenizer.from_pretrained(directory), settings)


def _as_list(entry: ImagesOfSample) -> list[Image.Image]:
    if entry is None:
        return []
    if isinstance(entry, Image.Image):
        return [entry]
    return list(entry)
