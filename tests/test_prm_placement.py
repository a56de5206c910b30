"""The PRM under ZeRO-3 and FSDP: whole (not partitioned, not wrapped), in the training dtype, on each process's device.

No multi-GPU machine is needed: each layout is set up on CPU the way ``accelerate launch`` sets it up (its environment
variables, read by the training arguments and the accelerator), with one gloo process, in a fresh interpreter so that
the launcher state does not leak into other tests.
"""

import importlib.util
import json
import socket
import subprocess
import sys

import pytest

from trl_processsql.grpo.placement import training_dtype

SCENARIO = r"""
import json, os, sys
layout, tmp, port = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16"
if layout == "zero3":  # recipes/accelerate_configs/zero3.yaml
    os.environ.update(ACCELERATE_USE_DEEPSPEED="true", ACCELERATE_DEEPSPEED_ZERO_STAGE="3", ACCELERATE_DEEPSPEED_ZERO3_INIT="true")
else:  # recipes/accelerate_configs/fsdp.yaml
    os.environ.update(ACCELERATE_USE_FSDP="true", FSDP_VERSION="2", FSDP_CPU_RAM_EFFICIENT_LOADING="true",
                      FSDP_AUTO_WRAP_POLICY="TRANSFORMER_BASED_WRAP", FSDP_STATE_DICT_TYPE="FULL_STATE_DICT")
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers.integrations import is_deepspeed_zero3_enabled
from trl_processsql.grpo import PRMGRPOConfig, PRMGRPOTrainer
from trl_processsql.prm import ProcessRewardModel
from trl_processsql.small_models import save_tiny_checkpoint

policy = save_tiny_checkpoint(f"{tmp}/policy", hidden_size=32)
prm_path = save_tiny_checkpoint(f"{tmp}/prm", kind="token-classification", hidden_size=32)  # saved in float32
saved = load_file(str(prm_path / "model.safetensors"))
args = PRMGRPOConfig(f"{tmp}/out", bf16=True, use_cpu=True, report_to="none", beta=0.0, num_generations=2,
                     per_device_train_batch_size=2, max_completion_length=8, prm_model_name_or_path=str(prm_path))
data = Dataset.from_list([{"prompt": "q", "db_path": "x", "gold_sql": "SELECT 1"}] * 2)
found = {"zero3_init_active": is_deepspeed_zero3_enabled()}
if layout == "zero3":  # what loading the PRM without care gives: empty placeholders that only an engine can use
    found["plain_load_partitioned"] = all(p.numel() == 0 for p in ProcessRewardModel.from_pretrained(prm_path).model.parameters())
else:  # transformers takes LOCAL_RANK != 0 for a process that is not its machine's first (rank-0-only loading)
    os.environ["LOCAL_RANK"] = "1"
trainer = PRMGRPOTrainer(str(policy), args=args, train_dataset=data)
model = trainer.prm.model
state = model.state_dict()
found.update(
    distributed_type=str(trainer.accelerator.distributed_type),
    dtypes=sorted({str(p.dtype) for p in model.parameters()}),
    on_process_device=all(p.device == torch.empty(0, device=trainer.accelerator.device).device for p in model.parameters()),
    whole=all(p.numel() > 0 and not hasattr(p, "ds_id") for p in model.parameters()),
    wrapped=type(model).__name__ != "Qwen2ForTokenClassification",
    real_weights=all(torch.equal(state[k], v.to(torch.bfloat16)) for k, v in saved.items()),
    zero3_init_restored=is_deepspeed_zero3_enabled() == found["zero3_init_active"],
    scores=trainer.prm.score_steps(["a prompt"], [["SELECT 1", "SELECT 2"]])[0],
)
print("RESULT " + json.dumps(found))
"""


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _run(layout: str, tmp_path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, layout, str(tmp_path), _free_port()], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("deepspeed"), reason="ZeRO-3 needs deepspeed (pip install deepspeed)")
def test_under_zero3_the_prm_is_whole_in_bf16_on_the_process_device(tmp_path):
    found = _run("zero3", tmp_path)
    assert found["distributed_type"] == "DistributedType.DEEPSPEED" and found["zero3_init_active"]
    assert found["plain_load_partitioned"]  # the hazard is real in this setup...
    assert found["whole"] and not found["wrapped"] and found["real_weights"]  # ...and the trainer avoids it
    assert found["dtypes"] == ["torch.bfloat16"] and found["on_process_device"]
    assert found["zero3_init_restored"]  # the policy still gets ZeRO-3
    assert len(found["scores"]) == 2 and all(0 < s < 1 for s in found["scores"])


@pytest.mark.slow
def test_under_fsdp_the_prm_is_whole_in_bf16_on_the_process_device(tmp_path):
    """On CPU accelerate runs the FSDP settings as plain multi-CPU data parallelism; what the PRM sees is the same:
    cpu-ram-efficient loading on a process that is not its machine's first, and bf16 mixed precision."""
    found = _run("fsdp", tmp_path)
    assert found["whole"] and not found["wrapped"] and found["real_weights"]
    assert found["dtypes"] == ["torch.bfloat16"] and found["on_process_device"]
    assert len(found["scores"]) == 2 and all(0 < s < 1 for s in found["scores"])


def test_training_dtype_follows_mixed_precision():
    import torch
    from types import SimpleNamespace

    assert training_dtype(SimpleNamespace(bf16=False, fp16=True)) is torch.float16
    assert training_dtype(SimpleNamespace(bf16=True, fp16=False)) is torch.bfloat16
    assert training_dtype(SimpleNamespace(bf16=False, fp16=False)) is None
