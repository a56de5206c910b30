"""The sampling benchmark: both settings sample the same prompts, and the ratio is printed and stored."""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_sampling.py"


def test_both_settings_sample_and_the_ratio_is_printed_and_stored(tmp_path):
    """A tiny checkpoint stands in for the policy: the comparison, not the model, is under test."""
    from trl_processsql.small_models import build_tiny_model, build_tokenizer

    tokenizer = build_tokenizer(vocab_size=512)
    build_tiny_model(tokenizer, "causal-lm", hidden_size=32, num_layers=1).save_pretrained(tmp_path / "policy")
    tokenizer.save_pretrained(tmp_path / "policy")
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tmp_path / "policy"), "--questions", "4", "--n", "3",
                           "--batch-size", "2", "--max-new-tokens", "12", "--prompt-style", "compact", "--results-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("one generate call a batch", "pruned every 16 tokens"):
        assert re.search(rf"^{label}\s+\d+\.\d s; \d+\.\d tokens a sample on average, \d+ of 12 at the limit$", done.stdout, re.M)
    ratio = re.search(r"pruned sampling takes (\d+\.\d+)x the time of one generate call a batch \((\d+\.\d+)x as fast\)", done.stdout)
    assert ratio
    figures = json.loads((tmp_path / "bench_sampling.json").read_text())["figures"]
    assert figures["questions"] == 4 and figures["n"] == 3 and set(figures["pruned"]) == {"seconds", "mean_tokens", "at_max_new_tokens"}
    assert figures["speedup"] == round(figures["one_call"]["seconds"] / figures["pruned"]["seconds"], 2)


def test_a_model_that_is_neither_a_folder_nor_a_packaged_name_is_refused(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith(f"--model {tmp_path / 'nowhere'}: ")
