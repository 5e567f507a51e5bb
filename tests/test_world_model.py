"""The world-model pipeline end to end on tiny data: collect -> VAE -> MDN-RNN -> ONNX.

Training here is a smoke run (a few steps on a few hundred frames); what is asserted is
behaviour: shards, resume, refusals, parity between torch and onnxruntime, the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import emulated_cpu
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from engine import make_env  # noqa: E402
from engine.world_model.manifest import WeightsError, load_manifest  # noqa: E402
from export.onnx_export import export_all  # noqa: E402
from export.variants import MAX_Z_ERR_OVER_SPREAD, VariantError, check_error  # noqa: E402
from train.collect import CollectConfig, collect, collect_episode  # noqa: E402
from train.config import TrainMDNRNNConfig, TrainVAEConfig  # noqa: E402
from train.mdnrnn import roc_auc, train_mdnrnn  # noqa: E402
from train.models import MDNRNN, VAE, MDNRNNConfig, VAEConfig, vae_loss  # noqa: E402
from train.preprocess import COLS, ROWS, model_input, to_model_frames  # noqa: E402
from train.shards import ShardError, episode_path, list_episodes, load_episode, save_episode  # noqa: E402
from train.vae import train_vae  # noqa: E402

STEPS = 25


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("wm")
    cfg = CollectConfig(episodes=10, out=root / "rollouts", workers=2, max_steps=STEPS)
    summary = collect(cfg)
    vae_cfg = TrainVAEConfig(data=cfg.out, out=root / "vae", epochs=1, batch_size=50)
    train_vae(vae_cfg)
    mdn_cfg = TrainMDNRNNConfig(data=cfg.out, vae=root / "vae" / "vae.pth", out=root / "mdn", epochs=1,
                                batch_size=4, seq_len=10)  # fmt: skip
    mdn = train_mdnrnn(mdn_cfg)
    return {"root": root, "collect": cfg, "summary": summary, "vae": vae_cfg, "mdn": mdn_cfg, "mdn_result": mdn}


def real_observations(n: int = 64) -> np.ndarray:
    env = make_env("exact")
    obs, _ = env.reset(seed=2)
    frames = [obs]
    for t in range(n - 1):
        obs, *_ = env.step(np.array([0.6 * np.sin(t / 8), 1.0, 0.0]))
        frames.append(obs)
    return np.stack(frames)


def test_collect_writes_valid_seeded_shards(run):
    cfg = run["collect"]
    assert run["summary"]["collected"] == 10
    paths = list_episodes(cfg.out)
    assert [p.name for p in paths] == [episode_path(cfg.out, i).name for i in range(10)]
    ep = load_episode(paths[3])
    assert ep["frames"].shape == (STEPS + 1, 64, 64, 3) and ep["actions"].shape == (STEPS, 3)
    assert int(ep["seed"]) == cfg.seed + 3 and ep["done"][-1] and not ep["done"][:-1].any()
    # resumable: nothing left to do
    assert collect(cfg)["collected"] == 0
    # seeded: the same episode collected again is the same, byte for byte
    again = CollectConfig(**{**cfg.__dict__, "out": run["root"] / "again"})
    collect_episode(again, 3)
    redo = load_episode(episode_path(again.out, 3))
    for k in ep:
        assert np.array_equal(ep[k], redo[k]), k


def test_bad_shards_are_named(tmp_path):
    good = tmp_path / "episode_00000.npz"
    save_episode(good, frames=np.zeros((3, 64, 64, 3)), actions=np.zeros((2, 3)), rewards=np.zeros(2),
                 off_track=np.zeros(2), done=np.array([0, 1]), seed=4)  # fmt: skip
    assert load_episode(good)["seed"] == 4
    truncated = tmp_path / "episode_00001.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ShardError, match="episode_00001.npz"):
        load_episode(truncated)
    wrong = tmp_path / "episode_00002.npz"
    np.savez(
        wrong, frames=np.zeros((3, 32, 32, 3), np.uint8), actions=np.zeros((2, 3), np.float32),
        rewards=np.zeros(2, np.float32), off_track=np.zeros(2, bool), done=np.zeros(2, bool), seed=np.int64(1),
    )  # fmt: skip
    with pytest.raises(ShardError, match=r"episode_00002.npz: frames"):
        load_episode(wrong)


def test_vae_is_world_models_size_and_loss_has_free_bits():
    vae = VAE(VAEConfig())
    assert sum(p.numel() for p in vae.parameters()) == 4_348_547
    x = torch.rand(4, 3, 64, 64)
    mu = torch.zeros(4, 32)
    logvar = torch.zeros(4, 32)  # KL exactly 0: held at 0.5 * 32 = 16 nats
    loss, r, kl = vae_loss(x, x, mu, logvar)
    assert float(r) == 0.0 and float(kl) == pytest.approx(16.0)


def test_vae_run_checkpoints_pngs_and_refuses_to_redo(run):
    out = run["vae"].out
    for f in ("checkpoint.pt", "vae.pth", "history.json", "vae_reconstructions.png", "vae_loss.png"):
        assert (out / f).stat().st_size > 0, f
    hist = json.loads((out / "history.json").read_text())["history"]
    assert hist[0]["epoch"] == 1 and np.isfinite(hist[0]["val"]["loss"])
    with pytest.raises(ValueError, match="already has 1 epochs"):
        train_vae(run["vae"])
    torch.save({"model": {"nope": torch.zeros(1)}}, out.parent / "bad.pt")
    bad = TrainVAEConfig(data=run["vae"].data, out=out.parent / "badrun", epochs=1)
    bad.out.mkdir()
    (out.parent / "bad.pt").rename(bad.out / "checkpoint.pt")
    with pytest.raises(ValueError, match="not a checkpoint of this VAE"):
        train_vae(bad)


def test_mdnrnn_reports_held_out_metrics(run):
    val = run["mdn_result"]["history"][-1]["val"]
    assert set(val) >= {"nll_per_dim", "reward_rmse", "off_track_auc"}
    assert np.isfinite(val["nll_per_dim"]) and val["reward_rmse"] >= 0
    assert (run["mdn"].out / "latents.npz").exists() and (run["mdn"].out / "mdnrnn_metrics.png").exists()


def test_roc_auc():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5


def test_model_frames_are_the_dense_area_resize_and_do_not_depend_on_the_batch():
    """The numba kernel against the definition: crop, ROWS @ x @ COLS.T per channel, round half
    up, clip, / 255 (what the exported graph computed in MatMuls before the kernel took over),
    on real observations and on noise."""
    rng = np.random.default_rng(0)
    obs = np.concatenate([real_observations(24), rng.integers(0, 256, (8, 96, 96, 3), dtype=np.uint8)])
    x = np.moveaxis(obs[:, :84], -1, 1).astype(np.float32)  # (B, 3, 84, 96)
    dense = np.clip(np.floor(ROWS @ x @ COLS.T + np.float32(0.5)), 0, 255)  # (B, 3, 64, 64) levels
    got = model_input(obs)
    assert got.shape == (32, 3, 64, 64) and got.dtype == np.float32
    assert np.abs(got * 255.0 - dense).max() < 1e-3 and (np.rint(got * 255.0) != dense).mean() < 1e-5
    assert np.array_equal(to_model_frames(obs), np.rint(np.moveaxis(got, 1, -1) * 255).astype(np.uint8))
    assert np.array_equal(model_input(obs[5:6]), got[5:6])  # alone or in a batch: the same frame
    assert np.allclose(ROWS.sum(axis=1), 1.0) and np.allclose(COLS.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"obs must be \(B, 96, 96, 3\) uint8, got float32\(2, 96, 96, 3\)"):
        model_input(obs[:2].astype(np.float32))


def test_export_random_models_parity_manifest_and_refusals(tmp_path):
    torch.manual_seed(0)
    torch.save(VAE(VAEConfig()).state_dict(), tmp_path / "v.pth")
    torch.save(MDNRNN(MDNRNNConfig()).state_dict(), tmp_path / "m.pth")
    out = tmp_path / "weights"
    manifest = export_all(tmp_path / "v.pth", tmp_path / "m.pth", out, obs=real_observations(64), calibration_steps=10,
                          risk_steps=10)
    for name in ("world_model.onnx", "dream.onnx"):
        assert manifest["files"][name]["parity_max_abs_diff"] < 1e-3  # batches 1, 2, 64
    assert manifest["files"]["decoder.onnx"]["parity_max_abs_diff"] <= 1.0  # uint8 rounding
    assert load_manifest(out)["sizes"]["z"] == 32
    assert 0 < manifest["risk"]["spread_lo"] < manifest["risk"]["spread_hi"] and manifest["risk"]["steps"] == 40
    wm = manifest["files"]["world_model.onnx"]
    assert [i["name"] for i in wm["inputs"]] == ["frame", "prev_action", "h", "c"]
    assert wm["inputs"][0]["shape"] == ["batch", 3, 64, 64]
    for precision in ("int8", "fp16"):  # variants: same interface, z close to fp32
        meta = manifest["files"][f"world_model.{precision}.onnx"]
        assert meta["precision"] == precision and meta["inputs"] == wm["inputs"]
        # export_all refuses a variant over MAX_Z_ERR_OVER_SPREAD (20%). Measured on this
        # random model, int8 convolutions with 7-bit weights: 11.1% with AVX-512 VNNI and with
        # AVX2 alike (an emulated Haswell: qemu-x86_64 -cpu Haswell; the integer sums do not
        # saturate, so they are the same); every op int8 with full 8-bit weights: 78% on AVX2,
        # whose VPMADDUBSW saturates. fp16: 0.3%. ARM's int8 kernels (NEON, SDOT) accumulate
        # in 32 bits and do not saturate, so the bound holds there too.
        assert meta["z_err_over_spread"] <= MAX_Z_ERR_OVER_SPREAD
    if emulated_cpu.AVAILABLE:  # the int8 kernels of a CPU without VNNI, too
        from test_cpu_portability import int8_error_on

        err = int8_error_on(emulated_cpu.AVX2_CPU, out, real_observations(64), tmp_path)
        assert err <= MAX_Z_ERR_OVER_SPREAD, f"int8 z error {err:.3f} of z's spread on an AVX2 CPU"
    with pytest.raises(ValueError, match="pass --force"):
        export_all(tmp_path / "v.pth", tmp_path / "m.pth", out)
    data = bytearray((out / "dream.onnx").read_bytes())
    data[-10] ^= 0xFF
    (out / "dream.onnx").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="dream.onnx: sha256 does not match"):
        load_manifest(out)
    with pytest.raises(ValueError, match="not weights of this MDN-RNN"):
        export_all(tmp_path / "v.pth", tmp_path / "v.pth", tmp_path / "other", variants=False)


def test_a_variant_over_its_error_bound_is_refused_with_the_numbers():
    check_error(Path("ok.onnx"), {"z_err_over_spread": 0.05})
    for bad in (0.78, float("nan")):
        with pytest.raises(VariantError, match=r"int8\.onnx: z error against fp32 is .* over the 20% bound"):
            check_error(Path("world_model.int8.onnx"), {"z_err_over_spread": bad})


def test_export_of_the_trained_run(run, tmp_path):
    manifest = export_all(run["vae"].out / "vae.pth", run["mdn"].out / "mdnrnn.pth", tmp_path / "w", variants=False,
                          risk_steps=10)
    sess = ort.InferenceSession(str(tmp_path / "w" / "world_model.onnx"), providers=["CPUExecutionProvider"])
    obs = real_observations(4)
    z, h, c, log_pi, mu, sigma, reward, off = sess.run(None, {
        "frame": model_input(obs), "prev_action": np.zeros((4, 3), np.float32),
        "h": np.zeros((4, 256), np.float32), "c": np.zeros((4, 256), np.float32),
    })  # fmt: skip
    assert z.shape == (4, 32) and h.shape == (4, 256) and mu.shape == (4, 32, 5)
    assert np.allclose(np.exp(log_pi).sum(-1), 1.0, atol=1e-5) and (sigma > 0).all()
    assert ((off >= 0) & (off <= 1)).all() and reward.shape == (4,)
    assert manifest["files"]["vae.pth"]["sha256"] == load_manifest(tmp_path / "w")["files"]["vae.pth"]["sha256"]


SHIPPED = Path(__file__).resolve().parents[1] / "weights"


@pytest.mark.skipif(not (SHIPPED / "manifest.json").exists(), reason="no world model shipped in weights/")
def test_shipped_onnx_matches_shipped_torch_on_real_frames():
    from export.graphs import WorldModelStep
    from export.onnx_export import load_state

    load_manifest(SHIPPED)  # every sha256 checked
    vae = load_state(VAE(VAEConfig()), SHIPPED / "vae.pth", "VAE")
    rnn = load_state(MDNRNN(MDNRNNConfig()), SHIPPED / "mdnrnn.pth", "MDN-RNN")
    obs = real_observations(64)
    sess = ort.InferenceSession(str(SHIPPED / "world_model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 2, 64):
        feed = {"frame": model_input(obs[:batch]), "prev_action": np.zeros((batch, 3), np.float32),
                "h": np.zeros((batch, 256), np.float32), "c": np.zeros((batch, 256), np.float32)}  # fmt: skip
        got = sess.run(None, feed)
        with torch.no_grad():
            ref = WorldModelStep(vae, rnn)(*(torch.from_numpy(v) for v in feed.values()))
        for r, g in zip(ref, got):
            assert np.abs(r.numpy() - g).max() < 1e-3


def test_renderer_gap_is_measured(run):
    from train.renderer_gap import renderer_gap

    r = renderer_gap(run["vae"].out / "vae.pth", tracks=1, steps=12)
    assert r["states"] == 12 and r["z_spread"] > 0
    assert 0 <= r["gap_over_spread"] < 1 and r["pixel_mean_abs_diff_96"] < 2.0
