"""One stage: a fresh DeepSpeed engine over the stage's trainable groups, fed by its mix stage.

The loop per micro-batch: forward (loss over answer tokens, normalised by their count; logits are
computed only where the next token is labelled), backward, `engine.step()` (DeepSpeed accumulates,
clips and steps at the boundary). At each optimizer step
the statistics of all micro-batches and ranks are reduced once, written as a metrics line, and
every `checkpoint_every` steps the resumable state is saved. A step whose gradients are not finite
is discarded by ZeRO itself (its overflow check, on every rank alike); the trainer counts those and
stops past `max_bad_steps`. Empty steps, dropped rows and diverging weights: guards.py.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import xxhash

from slime_data.shards import ShardSet
from slime_model.configuration import SliMEConfig
from slime_model.processing import SliMEProcessor
from slime_model.slicing import choose_grid
from slime_model.training import checkpoint as ckpt
from slime_model.training.collate import Collator
from slime_model.training.data import RankSlice, StageStream, estimated_lengths, make_loader
from slime_model.training.distributed import DistInfo, barrier
from slime_model.training.ds_config import batch_layout, deepspeed_config, is_zero3
from slime_model.training.guards import (
    check_bad_steps,
    check_drops,
    check_weight_growth,
    no_samples,
    poisoned_loss,
    weight_rms,
)
from slime_model.training.lora import add_lora, merge_state_dict, restrict_llm_to_adapters, save_adapters
from slime_model.training.model_init import load_stage_model, save_checkpoint_dir
from slime_model.training.recipe import PlannedStage, TrainRecipe
from slime_model.training.stats import StageCounters, StepStats, sum_over_ranks
from slime_model.training.telemetry import METRICS, PLOT, StageTelemetry, peak_flops, plot_metrics, train_flops


@dataclass
class StageResult:
    name: str
    status: str  # "trained", "resumed" or "done before" (skipped)
    steps: int
    samples: int = 0
    tokens: int = 0
    first_loss: float | None = None
    final_loss: float | None = None
    seconds: float = 0.0
    skipped_steps: int = 0
    empty_steps: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)  # by reason, all ranks
    dummy_batches: int = 0
    checkpoint: str = ""
    plot: str = ""


class Callbacks(Protocol):
    """Progress hooks, called on rank 0 only."""

    def stage_started(self, name: str, total_steps: int, done_steps: int) -> None: ...
    def step_done(self, record: dict[str, Any]) -> None: ...
    def stage_finished(self, result: StageResult) -> None: ...
    def run_finished(self, results: list[StageResult]) -> None: ...


# ---- the stage ------------------------------------------------------------------------------------
class StageRunner:
    def __init__(
        self,
        recipe: TrainRecipe,
        planned: PlannedStage,
        index: int,
        data_dir: Path,
        previous: Path,
        stage_dir: Path,
        dist: DistInfo,
        report_to: str,
        callbacks: Callbacks,
        reapply_optimizer_settings: bool = False,
    ) -> None:
        self.recipe, self.planned, self.spec, self.index = recipe, planned, planned.spec, index
        self.data_dir, self.previous, self.stage_dir = data_dir, previous, stage_dir
        self.dist, self.report_to, self.callbacks = dist, report_to, callbacks
        self.reapply_optimizer_settings = reapply_optimizer_settings  # `--override`n: the checkpoint's are stale
        self.layout = batch_layout(planned.name, self.spec.global_batch, self.spec.micro_batch, dist.world_size)
        shards = ShardSet(data_dir)
        self.rank_slice = RankSlice(
            tuple(s["rows"] for s in shards.manifest["shards"]), self.layout.micro_batch, dist.world_size, dist.rank
        )
        self.total_steps = self._total_steps()
        self.processor = self._processor()

    # ---- set-up -----------------------------------------------------------------------------------
    def _total_steps(self) -> int:
        """Optimizer steps of the stage: max_steps, cut to `epochs` of data when both are given."""
        per_epoch, accumulation = self.rank_slice.micro_batches_per_epoch, self.layout.accumulation
        by_epochs = self.spec.epochs * per_epoch // accumulation if self.spec.epochs is not None else None
        steps = min(s for s in (self.spec.max_steps, by_epochs) if s is not None)
        if steps == 0:
            raise ValueError(
                f"stage {self.planned.name}: one epoch of {self.data_dir} gives {per_epoch} "
                f"micro-batches per rank, fewer than the {accumulation} of one optimizer step"
            )
        return steps

    def _processor(self) -> SliMEProcessor:
        saved = SliMEProcessor.from_pretrained(self.previous)
        return SliMEProcessor(
            saved.tokenizer, saved.settings.model_copy(update={"chat_template": self.spec.chat_template})
        )

    def _engine(self):
        """The previous stage's model set up for this stage, inside a fresh DeepSpeed engine."""
        import deepspeed

        spec = self.spec
        hidden = SliMEConfig.from_pretrained(self.previous).text_config.hidden_size
        ds_config = deepspeed_config(self.recipe.deepspeed_config(spec), spec, self.layout, hidden)
        torch.manual_seed(self.recipe.seed + self.index)
        model = load_stage_model(self.previous, spec.precision, ds_config if is_zero3(ds_config) else None)
        model.set_branch(spec.branch)
        model.set_global_expert(spec.global_expert)
        # one top-p for training and for the saved checkpoint's answers, as SliME uses it
        model.set_selector_top_p(train=spec.top_p, eval=spec.top_p)
        if spec.lora is not None:
            add_lora(model, spec.lora)
        model.set_trainable(spec.trainable)
        if spec.lora is not None:
            restrict_llm_to_adapters(model)
        if spec.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        engine, *_ = deepspeed.initialize(
            model=model, model_parameters=self._parameter_groups(model), config=ds_config, lr_scheduler=self._schedule()
        )
        return engine, is_zero3(ds_config)

    def _parameter_groups(self, model) -> list[dict[str, Any]]:
        """Weight decay on matrices only (not on biases, norms, queries), as Hugging Face's Trainer does.
        Under ZeRO-3 a parameter's real shape is in `ds_shape` (its data is a flat partition)."""
        groups = model.parameter_groups()
        params = [p for name in self.spec.trainable for _, p in groups[name] if p.requires_grad]  # LoRA: adapters only
        decay = [p for p in params if len(getattr(p, "ds_shape", p.shape)) >= 2]
        plain = [p for p in params if len(getattr(p, "ds_shape", p.shape)) < 2]
        wanted = [
            {"params": decay, "weight_decay": self.spec.optimizer.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]
        self._decays = [group is wanted[0] for group in wanted if group["params"]]  # per kept group: the decaying one?
        return [group for group in wanted if group["params"]]

    def _reapply_optimizer_settings(self, engine) -> None:
        """After a resume: the recipe's (overridden) optimizer settings replace those the checkpoint
        restored; Adam's moments and the schedule's position stay. The schedule's shape (warm-up,
        cosine) is the recipe's already: its functions are built here, never saved."""
        opt, scheduler = self.spec.optimizer, engine.lr_scheduler
        scheduler.base_lrs = [opt.lr] * len(scheduler.base_lrs)
        groups = engine.optimizer.param_groups
        for group, decays, factor in zip(groups, self._decays, scheduler.lr_lambdas, strict=True):
            group.update(
                initial_lr=opt.lr,
                lr=opt.lr * factor(scheduler.last_epoch),
                betas=opt.betas,
                eps=opt.eps,
                weight_decay=opt.weight_decay if decays else 0.0,
            )
        scheduler._last_lr = [group["lr"] for group in groups]
        engine.optimizer.clip_grad = opt.max_grad_norm

    def _schedule(self):
        from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

        opt, total = self.spec.optimizer, self.total_steps
        warmup = math.ceil(opt.warmup_ratio * total)
        if opt.schedule == "cosine":
            return lambda optimizer: get_cosine_schedule_with_warmup(optimizer, warmup, total)
        return lambda optimizer: get_constant_schedule_with_warmup(optimizer, warmup)

    def _stream(self, position: int) -> StageStream:
        """This rank's micro-batches from `position` (the stage-wide micro-batch counter) to the stage's end."""
        image = self.processor.settings.image

        def visual_tokens(width: int, height: int) -> int:  # the worst case, as the processor budgets it
            grid = choose_grid(
                image.slicing_strategy,
                width,
                height,
                image.crop_size,
                uhd_max_scale=image.uhd_max_scale,
                grid_max_side=image.grid_max_side,
                pinpoints=image.pinpoints,
            )
            return self.processor.visual_budget(grid)

        return StageStream(
            self.data_dir,
            self.rank_slice,
            self.recipe.data,
            (self.recipe.seed, self.planned.round),
            start=position,
            stop=self.total_steps * self.layout.accumulation,
            collate=Collator(self.processor, self.spec.max_length),
            lengths=estimated_lengths(visual_tokens) if self.recipe.data.group_by_length else None,
        )

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, resume: bool) -> StageResult:
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        engine, zero3 = self._engine()
        step, position, counters = 0, 0, StageCounters()
        latest = ckpt.latest_resume_checkpoint(self.stage_dir) if resume else None
        if latest is not None:
            state = ckpt.load_resume_checkpoint(
                engine, self.stage_dir, latest["tag"], self.dist.rank, self.dist.world_size
            )
            step, position, counters = state["step"], state["micro_batches"], StageCounters(**state["counters"])
            if self.reapply_optimizer_settings:
                self._reapply_optimizer_settings(engine)
        if counters.start_weight_rms is None:
            counters.start_weight_rms = weight_rms(engine.module)
        telemetry = StageTelemetry(
            self.stage_dir, self.dist.rank, step, self.report_to, self.planned.name, self.recipe.model_dump(mode="json")
        )
        if self.dist.is_main:
            self.callbacks.stage_started(self.planned.name, self.total_steps, step)

        patches = engine.module.config.num_global_tokens + 1  # CLIP tokens per crop, CLS included
        stats, clock = StepStats(), time.perf_counter()
        engine.train()
        for batch in make_loader(self._stream(position), self.recipe.data.num_workers):
            inputs = batch.to(self.dist.device)
            lr = engine.get_lr()[0]
            boundary = engine.is_gradient_accumulation_boundary()
            empty = boundary and no_samples(stats.values["samples"] + len(batch.ids))
            out = engine(
                **inputs,
                num_items_in_batch=max(batch.label_tokens, 1),
                use_cache=False,
                labelled_logits_only=True,
                output_hidden_states=empty,
            )
            engine.backward(poisoned_loss(out) if empty else out.loss)
            engine.step()
            stats.add(batch, out, float(out.loss.detach()), patches * self._crops_encoded(inputs))
            if not boundary:
                continue
            step += 1
            totals, seconds, applied = stats.reduced(), time.perf_counter() - clock, engine.was_step_applied()
            counters.add(totals, stats, seconds, applied, stats.mean_loss(totals))
            record = self._record(engine, step, totals, stats, lr, seconds, applied)
            telemetry.step(record, stats.dropped)
            if self.dist.is_main:
                self.callbacks.step_done(record)
            planned_rows = self.total_steps * self.layout.global_batch
            check_drops(
                self.planned.name,
                counters.dropped_rows,
                counters.dropped,
                planned_rows,
                self.recipe.max_drop_ratio,
                self.dist.rank,
                self.stage_dir,
            )
            check_bad_steps(self.planned.name, self.spec.name, counters.skipped_steps, self.recipe.max_bad_steps)
            if step % self.recipe.checkpoint_every == 0 and step < self.total_steps:
                self._check_weights(engine, counters, step)
                self._save_resumable(engine, step, counters)
            stats, clock = StepStats(), time.perf_counter()

        telemetry.close()
        self._check_weights(engine, counters, step)
        result = self._finish(engine, zero3, step, counters, resumed=latest is not None)
        engine.destroy()
        del engine
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return result

    def _check_weights(self, engine, counters: StageCounters, step: int) -> None:
        """Collective: stop before a diverged state is saved or passed on."""
        check_weight_growth(
            self.planned.name,
            self.spec.name,
            counters.start_weight_rms,
            weight_rms(engine.module),
            self.recipe.max_weight_growth,
            self.spec.optimizer.lr,
            step,
            self.stage_dir,
        )

    def _record(
        self, engine, step: int, totals: dict[str, float], stats: StepStats, lr: float, seconds: float, applied: bool
    ) -> dict[str, Any]:
        grad_norm = engine.get_global_grad_norm() if applied else None
        return {
            "step": step,
            "epoch": (step * self.layout.accumulation - 1) // self.rank_slice.micro_batches_per_epoch,
            "loss": stats.mean_loss(totals),
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None and math.isfinite(float(grad_norm)) else None,
            "samples": int(totals["samples"]),
            "tokens": int(totals["tokens"]),
            "samples_per_s": totals["samples"] / seconds,
            "tokens_per_s": totals["tokens"] / seconds,
            "visual_tokens_per_sample": totals["visual_tokens"] / max(totals["samples"], 1),
            "local_kept": totals["kept_sum"] / totals["kept_images"] if totals["kept_images"] else None,
            "mfu": self._mfu(engine, totals, seconds),
            "skipped": not applied,
            "empty": totals["samples"] == 0,
            "dropped_rows": int(totals["dropped"]),
            "dummy_batches": int(totals["dummy"]),
            "batch": xxhash.xxh3_64_hexdigest("\n".join(stats.ids).encode()),  # rank 0's rows
        }

    def _save_resumable(self, engine, step: int, counters: StageCounters) -> None:
        state = {
            "step": step,
            "micro_batches": step * self.layout.accumulation,
            "world_size": self.dist.world_size,
            "counters": asdict(counters),
        }
        ckpt.save_resume_checkpoint(engine, self.stage_dir, step, state, self.dist.rank)
        barrier()
        if self.dist.is_main:
            ckpt.commit_resume_checkpoint(self.stage_dir, step, self.recipe.keep_checkpoints)

    def _finish(self, engine, zero3: bool, step: int, counters: StageCounters, resumed: bool) -> StageResult:
        """Collective: the Hugging Face checkpoint, plot and completion marker (written by rank 0)."""
        state_dict = ckpt.full_state_dict(engine, zero3)
        lora = self.spec.lora
        if lora is not None and self.dist.is_main:  # fold the adapters in: the checkpoint loads without peft
            full = state_dict if state_dict is not None else engine.module.state_dict()
            if lora.keep_adapters:
                save_adapters(full, lora, self.stage_dir)
            state_dict = merge_state_dict(full, lora.scaling)
        result = StageResult(
            name=self.planned.name,
            status="resumed" if resumed else "trained",
            steps=step,
            samples=counters.samples,
            tokens=counters.tokens,
            first_loss=counters.first_loss,
            final_loss=counters.final_loss,
            seconds=counters.seconds,
            skipped_steps=counters.skipped_steps,
            empty_steps=counters.empty_steps,
            dropped_rows=sum_over_ranks(counters.dropped),
            dummy_batches=counters.dummy_batches,
            checkpoint=str(self.stage_dir),
            plot=str(self.stage_dir / PLOT),
        )
        if self.dist.is_main:
            save_checkpoint_dir(engine.module, self.processor, self.stage_dir, state_dict)
            plot_metrics(self.stage_dir / METRICS, self.stage_dir / PLOT, f"stage {self.planned.name}")
            ckpt.write_complete(self.stage_dir, asdict(result))
            ckpt.remove_resume_checkpoints(self.stage_dir)
            self.callbacks.stage_finished(result)
        barrier()
        return result

    def _crops_encoded(self, inputs: dict[str, torch.Tensor]) -> int:
        """Crops the vision tower ran on: global views, local crops or both, as the branch says."""
        images, crops = len(inputs["image_grids"]), len(inputs["pixel_values"])
        return {"global": images, "local": crops - images, "both": crops}[self.spec.branch]

    def _mfu(self, engine, totals: dict[str, float], seconds: float) -> float | None:
        peak = peak_flops(self.dist.device)
        if peak is None:
            return None
        module = engine.module
        flops = train_flops(
            _count(module.model.language_model) + _count(module.lm_head),
            _count(module.model.vision_tower),
            int(totals["tokens"]),
            int(totals["vision_tokens"]),
            "llm" in self.spec.trainable,
            "vision" in self.spec.trainable,
        )
        return flops / seconds / (peak * self.dist.world_size)


def _count(module: torch.nn.Module) -> int:
    """Parameters of a module, also when ZeRO-3 has partitioned them (`ds_numel`)."""
    return sum(getattr(p, "ds_numel", p.numel()) for p in module.parameters())
