"""The inference side (`engine`, `tui`) must work where torch cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is blocked: the inference side must not need torch")
            return None

    sys.meta_path.insert(0, BlockTorch())
    """
)


def test_engine_and_tui_import_and_run_without_torch():
    code = BLOCK_TORCH + textwrap.dedent(
        """
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the torch block did not work")

        import numpy as np
        import engine
        import tui  # noqa: F401
        from engine.race.duel import Duel
        from engine.env.vector_env import VecRaceEnv

        for renderer in ("exact", "fast"):
            env = engine.make_env(renderer)
            obs, _ = env.reset(seed=0)
            obs, *_ = env.step(np.array([0.0, 1.0, 0.0]))
            assert obs.shape == (96, 96, 3)
        with Duel(renderer="fast", knobs=None) as duel:  # the shipped models and controllers
            duel.reset(1)
            for _ in range(20):
                telemetry = duel.step()
            assert telemetry[0].step == 20 and 0 <= telemetry[1].risk <= 1
        with VecRaceEnv(2, workers=0, renderer="fast") as vec:
            vec.reset([0, 1])
            vec.step(np.zeros((2, 3)))
        from engine.world_model.runtime import WorldModel  # the shipped world model through onnxruntime
        out = WorldModel(1, device="cpu").step(obs[None])
        assert out["z"].shape == (1, 32)
        assert "torch" not in sys.modules, "torch was imported"
        print("no-torch ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no-torch ok" in result.stdout


def test_cli_lists_every_command_without_torch():
    """Training commands register through entry points without importing torch."""
    code = BLOCK_TORCH + textwrap.dedent(
        """
        import contextlib, io
        from vmc_duel.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main(["--help"])
            except SystemExit as e:
                assert e.code == 0
        text = out.getvalue()
        for command in ("race", "train", "export"):
            assert command in text, command
        assert "torch" not in sys.modules
        print("cli ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cli ok" in result.stdout
