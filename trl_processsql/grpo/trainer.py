"""GRPO with process supervision: execution accuracy as the outcome, PRM step scores for credit."""

from __future__ import annotations

import itertools

import torch
from accelerate.utils import gather, gather_object
from trl import GRPOTrainer

from ..hub import ModelCardMixin
from ..prm.model import ProcessRewardModel
from ..rewards import bind_reward_func
from ..sql import ExecutionLimits, SQLExecutor
from .advantages import PROCESS_ADVANTAGES, get_process_advantage, process_advantages, step_token_spans, step_weights
from .config import PRMGRPOConfig
from .placement import place_prm, whole_model_loading
from .prm_reward import PRMReward

__all__ = ["PRMGRPOTrainer"]


_WINDOW = 8  # tokens of left context when measuring what one token adds to the text


def token_end_offsets(tokenizer, ids: list[int], text_length: int) -> list[int]:
    """Where each token ends in ``tokenizer.decode(ids)``, measured with a few tokens of left context.

    A token's share is what it adds to the decoded text of the tokens just before it, which is
    right for byte-level BPE (a split character counts where it completes) and for SentencePiece
    (whose pieces decode differently alone than in context). Offsets are clipped to the text.
    """
    starts = [max(0, j - _WINDOW) for j in range(len(ids))]
    with_token = tokenizer.batch_decode([ids[s : j + 1] for j, s in enumerate(starts)], skip_special_tokens=True)
    without = tokenizer.batch_decode([ids[s:j] for j, s in enumerate(starts)], skip_special_tokens=True)
    ends = list(itertools.accumulate(max(0, len(a) - len(b)) for a, b in zip(with_token, without)))
    return [min(end, text_length) for end in ends]


class PRMGRPOTrainer(ModelCardMixin, GRPOTrainer):
    """[`~trl.GRPOTrainer`] whose advantages follow the process reward model's verdict on each step.

    Every completion is read as a chain of CTEs, each step's view is executed, and the PRM scores
    each step (a step whose view fails scores 0). A process-advantage rule (`process_advantage`,
    see [`~trl_processsql.grpo.register_process_advantage`]) turns the completion's outcome
    advantage and its step scores into a per-token advantage; with `"none"` the PRM's trajectory
    score is one more reward instead. A rule registered `outcome_gated` (such as `"rewardsql"`)
    leaves completions whose outcome advantage is 0 unscored. Within a generation batch each
    distinct query runs once, shared by the reward functions and the step views. Everything else
    (loss types, PEFT, vLLM, several processes) is GRPO's.

    Args:
        model: as for [`~trl.GRPOTrainer`].
        reward_funcs (*optional*): reward functions or names from `trl_processsql.rewards.REWARD_FUNCS`;
            defaults to execution accuracy. Names and the plain SQL reward functions of `trl_processsql.rewards`
            run in the trainer's executor. The dataset needs `prompt`, `db_path` and `gold_sql`.
        args ([`PRMGRPOConfig`], *optional*): the configuration; the trainer does not change it.
        prm ([`ProcessRewardModel`] or `str`, *optional*): the PRM, or its path or Hub id; defaults to
            `args.prm_model_name_or_path`.
        executor ([`~trl_processsql.sql.SQLExecutor`], *optional*): runs the step views and the SQL rewards;
            defaults to a new one with `args.sql_timeout`.
        process_advantage (`str` or `Callable`, *optional*): the process-advantage rule, overriding
            `args.process_advantage`; a callable goes here, the config holds names.

    The other arguments are [`~trl.GRPOTrainer`]'s, in its order; `prm`, `executor` and `process_advantage`
    are keyword-only.
    """

    _tag_names = ["trl", "grpo", "trl-processsql", "process-supervision", "text-to-sql"]
    _name = "PRM-GRPO"
    card_description = (
        "A text-to-SQL policy that answers with a chain of CTEs, trained with process-supervised GRPO: execution "
        "accuracy as the outcome reward, a process reward model's step scores deciding which tokens get the credit."
    )

    def __init__(
        self,
        model,
        reward_funcs=None,
        args: PRMGRPOConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        reward_processing_classes=None,
        callbacks=None,
        optimizers=(None, None),
        quantization_config=None,
        peft_config=None,
        tools=None,
        rollout_func=None,
        environment_factory=None,
        *,
        prm: ProcessRewardModel | str | None = None,
        executor: SQLExecutor | None = None,
        process_advantage=None,
    ):
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
            args = PRMGRPOConfig(f"{str(name).rstrip('/').split('/')[-1]}-PRM-GRPO")
        self.process_advantage = get_process_advantage(process_advantage if process_advantage is not None else args.process_advantage)
        prm_as_reward = self.process_advantage is PROCESS_ADVANTAGES["none"]
        prm = prm if prm is not None else args.prm_model_name_or_path
        if prm is None:
            raise ValueError("PRMGRPOTrainer needs a process reward model: pass prm= or set prm_model_name_or_path")
        if isinstance(prm, str):
            with whole_model_loading():  # never partitioned by ZeRO-3: the PRM is not wrapped
                prm = ProcessRewardModel.from_pretrained(
                    prm, aggregation=args.prm_aggregation, batch_size=args.prm_batch_size, max_length=args.prm_max_length
                )
        if prm_as_reward and args.step_weighting == "policy_entropy":
            raise ValueError("step_weighting='policy_entropy' needs per-token advantages: use rewardsql or additive")
        self.prm = prm
        self.executor = executor if executor is not None else SQLExecutor(limits=ExecutionLimits(timeout=args.sql_timeout))
        if reward_funcs is None:
            reward_funcs = ["execution_accuracy"]
        reward_funcs = [bind_reward_func(f, self.executor) for f in (reward_funcs if isinstance(reward_funcs, list) else [reward_funcs])]
        self.prm_reward = PRMReward(prm, self.executor, args.prm_aggregation, args.step_weighting)
        if prm_as_reward:
            reward_funcs.append(self.prm_reward)
        super().__init__(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            reward_processing_classes=reward_processing_classes,
            callbacks=callbacks,
            optimizers=optimizers,
            quantization_config=quantization_config,
            peft_config=peft_config,
            tools=tools,
            rollout_func=rollout_func,
            environment_factory=environment_factory,
        )
        self.prm.model = place_prm(self.prm.model, self.accelerator.device, args)

    def _generate_and_score_completions(self, inputs):
        with self.executor.shared_results():
            output = super()._generate_and_score_completions(inputs)
            if self.process_advantage is not PROCESS_ADVANTAGES["none"]:
                self._apply_process_advantages(inputs, output)
        return output

    def _apply_process_advantages(self, inputs, output) -> None:
        """Score the steps of the completions the rule needs and replace GRPO's advantages by the rule's."""
        mode = "train" if self.model.training else "eval"
        advantages, mask = output["advantages"], output["completion_mask"]
        rows = list(range(len(inputs)))
        if getattr(self.process_advantage, "outcome_gated", False):
            rows = (advantages != 0).nonzero().flatten().tolist()  # the others get 0 whatever the PRM says
        texts, token_ends = self._decode_with_offsets(output["completion_ids"][rows], mask[rows])
        coctes, views, scored = self.prm_reward.step_scores(
            [inputs[i]["prompt"] for i in rows], texts, [inputs[i]["db_path"] for i in rows]
        )
        spans, scores = [[] for _ in inputs], [[] for _ in inputs]
        for i, cocte, ends, row in zip(rows, coctes, token_ends, scored):
            spans[i] = step_token_spans(ends, [step.end for step in cocte.steps]) if cocte.steps else []
            scores[i] = row
        entropies = self._policy_entropies(output) if self.args.step_weighting == "policy_entropy" and rows else None
        weights = [
            step_weights(self.args.step_weighting, row, None if entropies is None else entropies[i].tolist(), spans[i])
            for i, row in enumerate(scores)
        ]
        group_ids, group_step_scores = self._groups(scores, mode)
        output["advantages"] = process_advantages(
            self.process_advantage,
            mask,
            advantages=advantages,
            step_spans=spans,
            step_scores=scores,
            step_weights=weights,
            group_ids=group_ids.to(advantages.device),
            group_step_scores=group_step_scores,
            process_coef=self.args.process_coef,
        )
        self._log_process_metrics(mode, views, scored)

    def _decode_with_offsets(self, completion_ids: torch.Tensor, mask: torch.Tensor) -> tuple[list[str], list[list[int]]]:
        """Each completion decoded as GRPO decodes it, and where each of its tokens ends in that text."""
        texts, ends = [], []
        for ids, row_mask in zip(completion_ids.tolist(), mask.tolist()):
            ids = [t for t, m in zip(ids, row_mask) if m]
            texts.append(self.processing_class.decode(ids, skip_special_tokens=True))
            ends.append(token_end_offsets(self.processing_class, ids, len(texts[-1])))
        return texts, ends

    @torch.no_grad()
    def _policy_entropies(self, output) -> torch.Tensor:
        """Per-token entropies of the current policy over the completions (one extra forward pass)."""
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        _, entropies, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention_mask, output["completion_ids"].size(1), compute_entropy=True
        )
        return entropies.float().cpu()

    def _groups(self, scores: list[list[float]], mode: str) -> tuple[torch.Tensor, list[list[list[float]]]]:
        """Each local completion's group number and the step scores of its whole group, groups spanning processes."""
        size = self.num_generations if mode == "train" else self.num_generations_eval
        everyone = gather_object([scores])  # one list per process, in process order
        flat = [row for process_rows in everyone for row in process_rows]
        offset = self.accelerator.process_index * len(scores)
        group_ids = torch.tensor([(offset + i) // size for i in range(len(scores))], dtype=torch.long)
        return group_ids, [flat[g * size : (g + 1) * size] for g in group_ids.tolist()]

    def _log_process_metrics(self, mode: str, views, scores) -> None:
        """Statistics of the scored completions' steps, summed over processes before averaging."""
        device = self.accelerator.device
        steps = sum(len(row) for row in scores)
        local = torch.tensor(
            [
                sum(s for row in scores for s in row),
                steps,
                sum(not v.result.ok for row in views for v in row),
                len(scores),
            ],
            dtype=torch.float64,
            device=device,
        )
        score_sum, step_count, failed, completions = gather(local.unsqueeze(0)).sum(dim=0).tolist()
        metrics = self._metrics[mode]
        metrics["process/step_score_mean"].append(score_sum / step_count if step_count else 0.0)
        metrics["process/steps_per_completion"].append(step_count / completions if completions else 0.0)
        metrics["process/failed_step_share"].append(failed / step_count if step_count else 0.0)
        metrics["process/scored_completions"].append(completions)
