"""Sampling time: finished samples dropped from the batch and one prefill per prompt, against one ``generate`` call.

``model.generate`` decodes a batch until its longest sample ends: where one of a batch's samples
runs to ``max_new_tokens`` (a policy that loops, which a small one often does), every finished
sample of the batch goes on computing padding to the end, and each prompt is prefilled once for
every one of its ``n`` samples. :class:`~trl_processsql.inference.TransformersSampler` generates
``prune_every`` tokens at a time instead, drops the samples that ended in between, and starts the
``n`` samples of a prompt from one prefill (:func:`~trl_processsql.inference.generate_pruned`).

Both settings sample the same prompts (held-out questions of the bundled sample, as the quickstart
holds them out, in the prompt style the checkpoint records unless ``--prompt-style``) with the same seed, one after the
other in this process; they draw different random numbers, so the texts differ, and the mean
completion length of each is printed beside its time to show that they wrote alike.

    python benchmarks/bench_sampling.py --model outputs/quickstart/policy-sft   # after trl-processsql quickstart --base ...
    python benchmarks/bench_sampling.py --model smollm2-135m-instruct --prompt-style tables   # the packaged base model, untuned
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import add_results_argument, base_checkpoint, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="NAME_OR_DIR",
                        help="a policy checkpoint folder (e.g. the quickstart's policy-sft/), or a packaged base model's name")
    parser.add_argument("--questions", type=int, default=40, help="held-out questions of the bundled sample (default: %(default)s)")
    parser.add_argument("--n", type=int, default=8, help="samples per question (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per generate call (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="(default: %(default)s)")
    parser.add_argument("--prune-every", type=int, default=16, help="tokens between drops of the finished samples (default: %(default)s)")
    parser.add_argument("--prompt-style", choices=("full", "tables", "compact"),
                        help="default: the style the checkpoint records (a policy trained here records it), else full")
    parser.add_argument("--seed", type=int, default=0)
    add_results_argument(parser)
    args = parser.parse_args()
    model_dir = base_checkpoint(args.model, "--model")

    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trl_processsql.data import database_path, load_questions, sample_paths
    from trl_processsql.inference import TransformersSampler
    from trl_processsql.precision import cpu_has_bf16
    from trl_processsql.prompts import prompt_messages, saved_prompt_style
    from trl_processsql.small_models import split_by_question

    transformers.logging.set_verbosity_error()
    questions_file, db_dir = sample_paths()
    questions = split_by_question(load_questions(questions_file), [args.questions], args.seed)[0]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    style = args.prompt_style or saved_prompt_style(model.config)
    conversations = [prompt_messages(q["question"], database_path(db_dir, q["db_id"]), style=style) for q in questions]
    print(f"{model_dir.name}: {len(conversations)} questions x {args.n} samples, {args.batch_size} prompts a call, "
          f"up to {args.max_new_tokens} new tokens, bf16 weights: {'yes' if cpu_has_bf16() else 'no (this CPU lacks bf16 units)'}")

    figures: dict = {"model": model_dir.name, "questions": len(conversations), "n": args.n, "batch_size": args.batch_size,
                     "max_new_tokens": args.max_new_tokens, "prune_every": args.prune_every}
    for name, prune_every in (("one_call", None), ("pruned", args.prune_every)):
        sampler = TransformersSampler(model, tokenizer, temperature=0.7, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                      bf16=None, progress=True, prune_every=prune_every)
        sampler.reseed(args.seed)
        start = time.perf_counter()
        samples = sampler.sample(conversations, n=args.n)
        seconds = time.perf_counter() - start
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for row in samples for text in row]
        at_limit = sum(length >= args.max_new_tokens for length in lengths)
        figures[name] = {"seconds": round(seconds, 1), "mean_tokens": round(statistics.mean(lengths), 1), "at_max_new_tokens": at_limit}
        label = "one generate call a batch" if prune_every is None else f"pruned every {prune_every} tokens"
        print(f"{label:<28}{seconds:>8.1f} s; {statistics.mean(lengths):.1f} tokens a sample on average, "
              f"{at_limit} of {len(lengths)} at the limit", flush=True)
    figures["speedup"] = round(figures["one_call"]["seconds"] / figures["pruned"]["seconds"], 2)
    print(f"pruned sampling takes {figures['pruned']['seconds'] / figures['one_call']['seconds']:.2f}x the time of one generate call "
          f"a batch ({figures['speedup']:.2f}x as fast)")
    print(f"results: {write_results('bench_sampling', figures, args.results_dir)}")


if __name__ == "__main__":
    main()
